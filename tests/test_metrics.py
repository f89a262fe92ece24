"""Tests for core/metrics.py against a fake Pushgateway served on 127.0.0.1."""

from __future__ import annotations

import json
import re
import socket
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from core.metrics import RunMetrics, push_run_metrics, run_registry

ROOT = Path(__file__).resolve().parent.parent
STARTED = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
FINISHED = datetime(2026, 1, 1, 9, 4, 30, tzinfo=UTC)  # 1767258270 in Unix time


def a_run(**changes: object) -> RunMetrics:
    run = RunMetrics(
        phase="backfill",
        success=True,
        started_at=STARTED,
        finished_at=FINISHED,
        events_read=120_000,
        events_skipped=3,
        incidents=42,
        incidents_by_category={"DATABASE": 30, "AUTH": 12},
        problems_new=2,
        problems_known=17,
        peaks=1,
        publish_status={"confluence": "failed", "teams": "ok"},
        db_write_seconds=1.25,
        db_up=True,
    )
    return replace(run, **changes)


def test_duration_is_finished_minus_started() -> None:
    assert a_run().duration_s == 270.0


def test_push_sends_exact_metric_lines_to_the_phase_group(gateway) -> None:
    assert push_run_metrics(a_run(), gateway.url) is True

    [(method, path, body)] = gateway.requests
    assert method == "POST"
    assert path == "/metrics/job/ai_log_analyzer/phase/backfill"
    samples = {line for line in body.splitlines() if not line.startswith("#")}
    assert samples == {
        "ai_log_analyzer_run_success 1.0",
        "ai_log_analyzer_run_duration_seconds 270.0",
        "ai_log_analyzer_last_run_timestamp_seconds 1.76725827e+09",
        "ai_log_analyzer_last_success_timestamp_seconds 1.76725827e+09",
        "ai_log_analyzer_run_events_read 120000.0",
        "ai_log_analyzer_run_events_skipped 3.0",
        "ai_log_analyzer_run_incidents 42.0",
        "ai_log_analyzer_run_problems_new 2.0",
        "ai_log_analyzer_run_problems_known 17.0",
        "ai_log_analyzer_run_peaks 1.0",
        "ai_log_analyzer_run_db_write_seconds 1.25",
        "ai_log_analyzer_db_up 1.0",
        'ai_log_analyzer_run_incidents_by_category{category="DATABASE"} 30.0',
        'ai_log_analyzer_run_incidents_by_category{category="AUTH"} 12.0',
        'ai_log_analyzer_publish_status{channel="confluence",status="ok"} 0.0',
        'ai_log_analyzer_publish_status{channel="confluence",status="failed"} 1.0',
        'ai_log_analyzer_publish_status{channel="confluence",status="skipped"} 0.0',
        'ai_log_analyzer_publish_status{channel="teams",status="ok"} 1.0',
        'ai_log_analyzer_publish_status{channel="teams",status="failed"} 0.0',
        'ai_log_analyzer_publish_status{channel="teams",status="skipped"} 0.0',
    }
    assert "# TYPE ai_log_analyzer_run_success gauge" in body


def test_custom_job_name_is_part_of_the_grouping_path(gateway) -> None:
    assert push_run_metrics(a_run(phase="regular"), gateway.url, job="log_analyzer_dev") is True
    assert gateway.requests[0][1] == "/metrics/job/log_analyzer_dev/phase/regular"


def test_failed_run_keeps_the_last_success_time_in_the_gateway(gateway) -> None:
    later = datetime(2026, 1, 2, 9, 3, tzinfo=UTC)
    failure = a_run(success=False, started_at=later, finished_at=later, db_up=False, publish_status={})

    assert push_run_metrics(a_run(), gateway.url)
    assert push_run_metrics(failure, gateway.url)

    failure_body = gateway.requests[1][2]
    assert "last_success_timestamp_seconds" not in failure_body
    assert "publish_status" not in failure_body
    group = gateway.lines("/metrics/job/ai_log_analyzer/phase/backfill")
    assert "ai_log_analyzer_last_success_timestamp_seconds 1.76725827e+09" in group
    assert "ai_log_analyzer_run_success 0.0" in group
    assert "ai_log_analyzer_db_up 0.0" in group
    # the last Confluence outcome survives a run that never reached publishing
    assert 'ai_log_analyzer_publish_status{channel="confluence",status="failed"} 1.0' in group


def test_db_up_is_left_out_when_the_run_never_reached_the_database() -> None:
    body = generate_latest(run_registry(a_run(db_up=None))).decode()
    assert "ai_log_analyzer_db_up" not in body


def test_gateway_error_status_is_a_warning_not_an_exception(gateway) -> None:
    gateway.status = 500
    with capture_logs() as logs:
        assert push_run_metrics(a_run(), gateway.url) is False
    assert [entry["event"] for entry in logs] == ["metrics_push_failed"]
    assert logs[0]["log_level"] == "warning"


def test_unreachable_gateway_returns_false_without_raising() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with capture_logs() as logs:
        assert push_run_metrics(a_run(), f"http://user:s3cret@127.0.0.1:{port}") is False
    assert logs[0]["event"] == "metrics_push_failed"
    assert logs[0]["gateway"] == f"127.0.0.1:{port}"
    assert "s3cret" not in json.dumps(logs)


def test_no_gateway_configured_pushes_nothing() -> None:
    assert push_run_metrics(a_run(), None) is False
    assert push_run_metrics(a_run(), "") is False


def _metric_names_of_a_full_run() -> set[str]:
    families = text_string_to_metric_families(generate_latest(run_registry(a_run())).decode())
    return {family.name for family in families}


def test_alerts_and_dashboard_use_only_metrics_that_are_pushed() -> None:
    # Pushgateway adds push_time_seconds itself; everything else must come from run_registry.
    known = _metric_names_of_a_full_run() | {"push_time_seconds"}
    rule = yaml.safe_load((ROOT / "k8s/monitoring/prometheusrule.yaml").read_text())
    expressions = [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]
    dashboard = json.loads((ROOT / "k8s/monitoring/grafana-dashboard.json").read_text())
    expressions += [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]

    used = {name for expr in expressions for name in re.findall(r"\bai_log_analyzer_\w+", expr)}
    assert used, "no ai_log_analyzer metric found in the rules or the dashboard"
    assert used <= known


def test_every_metric_is_documented() -> None:
    documented = (ROOT / "docs/metrics.md").read_text()
    missing = {name for name in _metric_names_of_a_full_run() if f"`{name}`" not in documented}
    assert not missing
