"""End to end on the embedded defaults: demo NDJSON → backfill / regular_phase → SQLite, registry, reports.

Every planted incident of the demo day must be found; running a day twice must leave the same
database; bad input is counted, reported and skipped.
"""

from __future__ import annotations

import gc
import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from embedded import components

from core import demo
from core.analysis import STAGE_BATCH
from core.cli import backfill_command, main, regular_phase_command
from core.fetch import NdjsonSource
from core.model import Finding
from core.pipeline import GC_THRESHOLDS, Schedule, Thresholds, analyse, backfill, regular_phase
from core.store import Store
from core.verdict import VerdictConfig

DAY = date(2026, 2, 9)  # the incident day
NOW = "2026-02-10T09:15:00"  # the morning after, when the backfill CronJob runs


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory) -> tuple[Path, demo.DemoManifest]:
    path = tmp_path_factory.mktemp("demo") / "logs.ndjson"
    manifest = demo.generate(path, DAY, days=4, seed=7, scale=0.4)
    return path, manifest


def environment(tmp: Path, log_file: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{tmp / 'state.db'}",
        "LOG_FILE": str(log_file),
        "REGISTRY_DIR": str(tmp / "registry"),
        "EXPORT_DIR": str(tmp / "exports"),
        "BASELINE_DAYS": "3",
        "LOG_FORMAT": "json",
    }


def run(command, args: list[str], env: dict[str, str]):
    result = CliRunner().invoke(command, args, env=env, catch_exceptions=False)
    return result


@pytest.fixture(scope="module")
def backfilled(demo_file, tmp_path_factory):
    """One backfill of the incident day (which first learns the 3 baseline days)."""
    path, manifest = demo_file
    tmp = tmp_path_factory.mktemp("backfill")
    env = environment(tmp, path)
    result = run(backfill_command, ["--days", "1", "--output", str(tmp / "reports"), "--now", NOW], env)
    assert result.exit_code == 0, result.output
    report_json = next((tmp / "reports").glob("problem_report_*.json"))
    report = json.loads(report_json.read_text())
    return tmp, env, manifest, report, result.output


def overlaps(start: str, end: str, planted) -> bool:
    s = datetime.fromisoformat(start.replace("Z", "+00:00"))
    e = datetime.fromisoformat(end.replace("Z", "+00:00"))
    return s < planted.end and planted.start < e


def test_backfill_prints_the_run_summary(backfilled):
    tmp, _, _, _, output = backfilled
    assert "✅ Backfill processing finished for 1 days (1 succeeded, 0 failed)" in output
    assert "EXECUTIVE SUMMARY" in output
    assert len(list((tmp / "reports").glob("problem_report_*"))) == 3
    assert (tmp / "exports" / "errors_table_latest.csv").is_file()
    assert (tmp / "registry" / "problems.yaml").is_file()


def test_the_spike_is_found(backfilled):
    _, _, manifest, report, _ = backfilled
    spike = manifest.incident("spike")
    peaks = [
        p
        for p in report["peaks"]
        if p["kind"] == "spike"
        and p["scope"] == "problem"
        and p["scope_id"].startswith("BUSINESS:card_servicing:validation_error")
        and overlaps(p["window_start"], p["window_end"], spike)
    ]
    assert peaks, "the planted validation-error spike was not recorded as a peak"


def test_the_burst_is_found(backfilled):
    _, _, manifest, report, _ = backfilled
    burst = manifest.incident("burst")
    peaks = [
        p
        for p in report["peaks"]
        if p["kind"] == "burst"
        and p["namespace"] in burst.namespaces
        and overlaps(p["window_start"], p["window_end"], burst)
    ]
    assert peaks, "the planted burst was not recorded as a peak"
    # a burst is short: the peak is minutes long, not the whole day
    for p in peaks:
        start = datetime.fromisoformat(p["window_start"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(p["window_end"].replace("Z", "+00:00"))
        assert end - start <= timedelta(minutes=15)


def test_the_database_outage_is_a_cross_namespace_chain_rooted_in_the_database(backfilled):
    _, _, manifest, report, _ = backfilled
    outage = manifest.incident("db_outage")
    db_namespace = outage.namespaces[0]
    chains = [c for c in report["chains"] if c["root"]["namespace"] == db_namespace]
    assert chains, f"no propagation chain rooted in {db_namespace}: {report['chains']}"
    chain = chains[0]
    assert chain["root"]["problem_id"].startswith("DATABASE:")
    member_namespaces = {m["namespace"] for m in chain["members"]}
    assert set(outage.namespaces) <= member_namespaces
    assert chain["members"][0]["namespace"] == db_namespace  # in order of first occurrence
    assert any("shared trace ids" in line for line in chain["evidence"])
    assert chain["confidence"] >= 0.5
    cross = [f for p in report["problems"] for f in p["findings"] if f["kind"] == "cross_namespace"]
    assert any(len(f["namespaces"]) >= 3 for f in cross)


def test_the_demo_outage_is_rooted_in_the_database_statefulset_not_its_busier_client(demo_file, tmp_path):
    # postgres refuses connections from the planted start; core-data-api beside it logs the same
    # problem id with more events, and it and the services elsewhere fail six minutes later.
    path, manifest = demo_file
    outage = manifest.incident("db_outage")
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    result = analyse(components(tmp_path, NdjsonSource(path)), start, start + timedelta(days=1))

    api = "Deployment/core-db/core-data-api"
    chains = [c for c in result.chains if any(m.workload == api for m in c.members)]
    assert len(chains) == 1, result.chains
    (chain,) = chains
    kind, namespace, name = chain.root.workload.split("/")
    assert (kind, namespace, name) == ("StatefulSet", "core-db", "postgres")
    assert chain.root.namespace == "core-db"
    assert chain.root.first_seen == outage.start
    assert chain.root.problem_id == "DATABASE:core_db:too_many_connections"
    (client,) = [m for m in chain.members if m.workload == api]
    assert client.problem_id == chain.root.problem_id and client.count > chain.root.count
    assert {m.workload for m in chain.members} == set(outage.workloads)


def test_the_new_error_is_new_and_the_usual_ones_are_not(backfilled):
    _, _, manifest, report, _ = backfilled
    new_error = manifest.incident("new_error")
    by_id = {p["id"]: p for p in report["problems"]}
    npe = [p for p in report["problems"] if p["error_class"].startswith("null_pointer")]
    assert npe and (npe[0]["fact"], npe[0]["triage"]) == ("new", "open")
    assert new_error.namespaces[0] in npe[0]["namespaces"]
    # The new ReplicaSet started two minutes before it, with the next patch release.
    tag = new_error.detail.rpartition(" running ")[2]
    assert npe[0]["change"] == f"first seen 2 min after card-opening-api rolled out {tag}"
    assert [p["id"] for p in report["problems"] if p["change"]] == [npe[0]["id"]]
    validation = by_id["BUSINESS:card_servicing:validation_error"]
    assert validation["fact"] == "recurring", "a problem seen on every baseline day must not be new"


def test_the_failed_job_is_attributed_to_its_job_not_the_scraper(backfilled):
    _, _, manifest, report, _ = backfilled
    failed = manifest.incident("failed_job")
    job_name = failed.markers[0]
    job_problems = [p for p in report["problems"] if p["error_class"] == "job_failed"]
    assert job_problems
    workloads = {(w["kind"], w["namespace"], w["name"]) for p in job_problems for w in p["workloads"]}
    assert ("Job", "batch-processing", job_name) in workloads
    assert not any("kube-state-metrics" in name for _, _, name in workloads)


def test_published_payloads_are_written_and_redacted(backfilled):
    tmp, _, _, _, _ = backfilled
    publish = tmp / "reports" / "publish"
    page = next(publish.glob("confluence_daily_*.xhtml")).read_text()
    card = next(publish.glob("teams_summary_*.json")).read_text()
    for text in (page, card):
        assert "4111111111111111" not in text and "4111 1111 1111 1111" not in text
    assert f"Log analysis {DAY:%Y-%m-%d}: " in card  # the analysed day, not when it ran
    assert next(publish.glob("trend_*.png")).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_running_the_same_day_again_leaves_the_same_database(backfilled):
    tmp, env, _, _, _ = backfilled
    url = env["DATABASE_URL"]
    before = Store.from_url(url).snapshot()
    registry_before = (tmp / "registry" / "problems.yaml").read_bytes()
    result = run(backfill_command, ["--days", "1", "--output", str(tmp / "again"), "--now", NOW], env)
    assert result.exit_code == 0, result.output
    after = Store.from_url(url).snapshot()
    assert after == before
    assert (tmp / "registry" / "problems.yaml").read_bytes() == registry_before
    assert sum(len(rows) for rows in after.values()) > 0


def test_bad_input_is_counted_reported_and_skipped(demo_file, tmp_path):
    path, _ = demo_file
    bad = tmp_path / "bad.ndjson"
    shutil.copy(path, bad)
    ts = "2026-02-09T08:00:00Z"
    with bad.open("ab") as out:
        out.write(b'{"@timestamp": "' + ts.encode() + b'", "message": "ERROR broken\n')  # malformed JSON
        out.write(
            json.dumps({"@timestamp": ts, "log.level": "error", "message": "no namespace"}).encode() + b"\n"
        )
        big = {
            "@timestamp": ts,
            "log.level": "error",
            "kubernetes": {"namespace": "payments"},
            "message": "ERROR " + "x" * 1_048_576,
        }
        out.write(json.dumps(big).encode() + b"\n")
        out.write(b'{"@timestamp": "' + ts.encode() + b'", "message": "ERROR \xff\xfe bytes"}\n')  # not UTF-8
    env = environment(tmp_path, bad)
    result = run(backfill_command, ["--days", "1", "--output", str(tmp_path / "reports"), "--now", NOW], env)
    assert result.exit_code == 0, result.output
    report = json.loads(next((tmp_path / "reports").glob("problem_report_*.json")).read_text())
    skipped = report["stats"]["skipped"]
    assert skipped.get("malformed_json") == 1
    assert skipped.get("missing_namespace") == 1
    assert skipped.get("message_too_large") == 1
    assert skipped.get("not_utf8") == 1
    assert "malformed_json" in result.output  # reported in the run summary too


def test_dry_run_writes_nothing_outside_its_output_folder(demo_file, tmp_path):
    path, _ = demo_file
    env = environment(tmp_path, path)
    out = tmp_path / "out"
    result = run(backfill_command, ["--days", "1", "--output", str(out), "--dry-run", "--now", NOW], env)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert list((out / "publish").glob("confluence_daily_*.xhtml"))
    assert list((out / "publish").glob("teams_summary_*.json"))


def verdicts(outcome) -> list[tuple[list, list]]:
    return [(r.detection.findings, r.detection.peaks) for r in outcome.results]


def test_a_dry_run_over_several_days_finds_what_the_real_run_finds(demo_file, tmp_path):
    # Each day is compared with the days before it: a dry run, which stores nothing, must still
    # see them, or every problem of the second day is "new" again.
    path, _ = demo_file
    seed = tmp_path / "seed"
    now = datetime.fromisoformat(NOW).replace(tzinfo=UTC)
    with_baseline = components(seed, NdjsonSource(path), schedule=Schedule(baseline_days=2))
    backfill(with_baseline, [DAY - timedelta(days=3)], seed / "reports", dry_run=False, now=now)
    days = [DAY - timedelta(days=n) for n in (2, 1, 0)]
    found = {}
    for dry_run in (False, True):
        shutil.copytree(seed, tmp_path / str(dry_run))
        c = components(tmp_path / str(dry_run), NdjsonSource(path), schedule=Schedule(baseline_days=2))
        found[dry_run] = verdicts(backfill(c, days, tmp_path / "reports", dry_run=dry_run, now=now))

    assert [len(findings) for findings, _ in found[False]] == [len(findings) for findings, _ in found[True]]
    assert found[True] == found[False]
    assert any(peaks for _, peaks in found[True]) and any(findings for findings, _ in found[True])


def test_a_dry_run_over_several_windows_finds_what_the_real_run_finds(demo_file, tmp_path):
    path, manifest = demo_file
    now = manifest.incident("db_outage").start + timedelta(minutes=50)
    found = {}
    for dry_run in (False, True):
        c = components(tmp_path / str(dry_run), NdjsonSource(path), schedule=Schedule(baseline_days=1))
        found[dry_run] = verdicts(regular_phase(c, timedelta(hours=3), dry_run=dry_run, now=now))

    assert len(found[True]) == 12 and found[True] == found[False]
    assert sum(f.kind == "new" for findings, _ in found[True] for f in findings) > 0


def test_peaks_yaml_keeps_registry_peak_days_of_untouched_peaks(demo_file, tmp_path):
    path, _ = demo_file
    env = {**environment(tmp_path, path), "REGISTRY_PEAK_DAYS": "30"}
    old = """spike:namespace:{ns}@2025-06-01T10:00:00Z:
  status: {status}
  notes: {notes}
  kind: spike
  scope: namespace
  scope_id: {ns}
  window_start: '2025-06-01T10:00:00Z'
  window_end: '2025-06-01T10:15:00Z'
"""
    (tmp_path / "registry").mkdir()
    (tmp_path / "registry" / "peaks.yaml").write_text(
        old.format(ns="payments", status="new", notes="")
        + old.format(ns="cards", status="known", notes="capacity ticket OPS-1")
    )
    result = run(backfill_command, ["--days", "1", "--output", str(tmp_path / "reports"), "--now", NOW], env)
    assert result.exit_code == 0, result.output

    peaks = (tmp_path / "registry" / "peaks.yaml").read_text()
    assert "spike:namespace:payments@2025-06-01" not in peaks
    assert (
        "spike:namespace:cards@2025-06-01T10:00:00Z:\n  status: known\n  notes: capacity ticket OPS-1"
        in peaks
    )
    assert "@2026-02-09T" in peaks  # the run's own peaks


def test_regular_phase_catches_up_every_window_and_alerts_on_the_outage(demo_file, tmp_path):
    path, manifest = demo_file
    outage = manifest.incident("db_outage")
    env = environment(tmp_path, path)
    store_url = env["DATABASE_URL"]
    # 20 minutes into the outage, with the 5-minute ingest lag: windows up to the one holding its start
    first_now = outage.start + timedelta(minutes=20)
    result = run(
        regular_phase_command, ["--window", "60", "--now", first_now.strftime("%Y-%m-%dT%H:%M:%S")], env
    )
    assert result.exit_code == 0, result.output
    alerts = list((tmp_path / "exports" / "publish").glob("teams_alert_*.json"))
    assert alerts, result.output
    card = alerts[0].read_text()
    assert "DATABASE" in card
    # an hour later: every window since the last processed one is caught up, none skipped
    later = first_now + timedelta(hours=1)
    result = run(regular_phase_command, ["--now", later.strftime("%Y-%m-%dT%H:%M:%S")], env)
    assert result.exit_code == 0, result.output
    store = Store.from_url(store_url)
    windows = sorted(store.processed_windows(first_now - timedelta(hours=2), later))
    assert windows, "no window recorded"
    steps = {b - a for a, b in zip(windows, windows[1:], strict=False)}
    assert steps == {timedelta(minutes=15)}
    assert windows[-1] + timedelta(minutes=15) <= later - timedelta(minutes=5)
    assert windows[-1] >= later - timedelta(minutes=35)


def test_the_demo_outage_is_one_critical_incident_naming_every_namespace(demo_file, tmp_path):
    path, manifest = demo_file
    outage = manifest.incident("db_outage")
    env = environment(tmp_path, path)
    now = outage.start + timedelta(minutes=50)
    result = run(regular_phase_command, ["--window", "90", "--now", now.strftime("%Y-%m-%dT%H:%M:%S")], env)
    assert result.exit_code == 0, result.output
    (alert,) = (tmp_path / "exports" / "publish").glob("teams_alert_*.json")
    texts = [
        inline["text"]
        for block in json.loads(alert.read_text())["attachments"][0]["content"]["body"]
        for inline in block.get("inlines", [])
    ]
    headlines = [t for t in texts if t.startswith(("CRITICAL", "HIGH"))]
    assert len(headlines) == 1, headlines
    assert headlines[0].startswith("CRITICAL DATABASE:core_db:too_many_connections")
    assert "in StatefulSet/core-db/postgres" in headlines[0]
    # batch-processing fails with another error class (connection_pool), linked only by the chain's
    # trace ids: the chain stored with the pending alerts brings it into the one incident.
    assert "affects 4 namespaces (batch-processing, card-servicing, core-db, payments)" in headlines[0]
    assert "namespace(s)" not in alert.read_text() and "baseline of 0.0" not in alert.read_text()


def test_quiet_windows_send_no_alert(demo_file, tmp_path):
    path, _ = demo_file
    env = environment(tmp_path, path)
    result = run(regular_phase_command, ["--now", "2026-02-09T04:10:00"], env)
    assert result.exit_code == 0, result.output
    assert "[No Teams message: nothing critical]" in result.output
    assert not list((tmp_path / "exports").glob("publish/teams_alert_*.json"))


def test_a_bad_setting_is_one_line_naming_it(demo_file, tmp_path):
    path, _ = demo_file
    env = environment(tmp_path, path) | {"DB_PORT": "not-a-port", "DATABASE_URL": ""}
    result = CliRunner().invoke(backfill_command, ["--days", "1", "--now", NOW], env=env)
    assert result.exit_code == 2
    assert "DB_PORT" in result.output
    assert not (tmp_path / "state.db").exists()


def test_a_missing_log_file_names_log_file(tmp_path):
    env = environment(tmp_path, tmp_path / "nope.ndjson")
    result = CliRunner().invoke(backfill_command, ["--days", "1", "--now", NOW], env=env)
    assert result.exit_code == 2
    assert "LOG_FILE" in result.output


def test_a_second_run_of_the_same_phase_exits_cleanly_while_the_first_holds_the_lock(demo_file, tmp_path):
    path, _ = demo_file
    env = environment(tmp_path, path)
    store = Store.from_url(env["DATABASE_URL"])
    with store.phase_lock("backfill"):
        result = CliRunner().invoke(backfill_command, ["--days", "1", "--now", NOW], env=env)
    assert result.exit_code == 0
    assert "another run holds the lock" in result.output
    assert store.recent_runs() == []


def test_status_finds_a_run_by_its_kubernetes_job_name(demo_file, tmp_path):
    path, _ = demo_file
    env = environment(tmp_path, path) | {
        "K8S_JOB_NAME": "log-analyzer-backfill-29511360",
        "K8S_POD_NAME": "log-analyzer-backfill-29511360-abcde",
    }
    result = run(backfill_command, ["--days", "1", "--output", str(tmp_path / "r"), "--now", NOW], env)
    assert result.exit_code == 0, result.output
    status = CliRunner().invoke(main, ["status", "log-analyzer-backfill-29511360"], env=env)
    assert status.exit_code == 0, status.output
    assert "succeeded" in status.output and "log-analyzer-backfill-29511360-abcde" in status.output
    assert "day 2026-02-09" in status.output


def test_fingerprint_command_prints_one_key_per_line():
    lines = [
        "Connection to db-1.example.com:5432 refused after 3000 ms",
        "Connection to db-7.example.com:5432 refused after 12 ms",
        "User jane@example.com not found",
        "",
    ]
    result = CliRunner().invoke(main, ["fingerprint"], input="\n".join(lines) + "\n")
    assert result.exit_code == 0
    keys = result.output.splitlines()
    assert len(keys) == len(lines)
    assert keys[0] == keys[1] and keys[0] != keys[2]


def test_utc_everywhere(backfilled):
    _, _, _, report, _ = backfilled
    assert report["generated_at"].endswith("Z")
    assert datetime.fromisoformat(report["generated_at"].replace("Z", "+00:00")).tzinfo == UTC


def test_each_run_pushes_its_metrics_to_the_pushgateway(demo_file, tmp_path, gateway):
    path, _ = demo_file
    env = environment(tmp_path, path) | {"PUSHGATEWAY_URL": gateway.url}
    result = run(backfill_command, ["--days", "1", "--output", str(tmp_path / "r"), "--now", NOW], env)
    assert result.exit_code == 0, result.output
    lines = gateway.lines("/metrics/job/ai_log_analyzer/phase/backfill")
    assert "ai_log_analyzer_run_success 1.0" in lines
    fetched = int(result.output.split("Events fetched: ")[1].split()[0])
    assert f"ai_log_analyzer_run_events_read {float(fetched)}" in lines
    assert "ai_log_analyzer_db_up 1.0" in lines
    assert any(line.startswith("ai_log_analyzer_last_success_timestamp_seconds ") for line in lines)


def test_an_unreachable_database_is_a_clear_error_and_tells_monitoring(demo_file, tmp_path, gateway):
    path, _ = demo_file
    env = environment(tmp_path, path) | {
        "DATABASE_URL": "postgresql+psycopg://analyzer:fake-password@127.0.0.1:9/ailog",
        "PUSHGATEWAY_URL": gateway.url,
    }
    result = CliRunner().invoke(backfill_command, ["--days", "1", "--now", NOW], env=env)
    assert result.exit_code == 1
    assert "127.0.0.1" in result.output and "fake-password" not in result.output
    lines = gateway.lines("/metrics/job/ai_log_analyzer/phase/backfill")
    assert "ai_log_analyzer_db_up 0.0" in lines and "ai_log_analyzer_run_success 0.0" in lines


def test_field_paths_are_configurable_over_a_preset(tmp_path):
    log_file = tmp_path / "custom.ndjson"
    doc = {
        "@timestamp": "2026-02-09T08:00:00Z",
        "msg": "ERROR settlement 42 failed for merchant 7",
        "kubernetes": {"namespace": "batch-processing", "pod": {"name": "settlement-7d9fbc5d8b-x2k4q"}},
    }
    log_file.write_text(json.dumps(doc) + "\n")
    env = environment(tmp_path, log_file) | {"ES_FIELD_PRESET": "ecs", "ES_FIELD_MAP": '{"message": "msg"}'}
    result = run(backfill_command, ["--days", "1", "--output", str(tmp_path / "r"), "--now", NOW], env)
    assert result.exit_code == 0, result.output
    assert (
        "Events fetched: 1" in result.output
        and "skipped" not in result.output.split("Events fetched")[1].split("\n")[0]
    )


def test_a_field_map_with_auto_applies_over_every_detected_preset(tmp_path):
    # One index pattern, two shippers, the application's message in `msg` under both.
    log_file = tmp_path / "mixed.ndjson"
    ecs = {
        "@timestamp": "2026-02-09T08:00:00Z",
        "msg": "ERROR settlement 42 failed for merchant 7",
        "kubernetes": {"namespace": "batch-processing", "pod": {"name": "settlement-7d9fbc5d8b-x2k4q"}},
    }
    vector = {
        "timestamp": "2026-02-09T08:01:00Z",
        "msg": "ERROR statement 9 export failed",
        "kubernetes": {
            "pod_namespace": "cards",
            "pod_name": "api-7d4b9c6f5-q8w2e",
            "pod_owner": "ReplicaSet/api-7d4b9c6f5",
        },
    }
    log_file.write_text(json.dumps(ecs) + "\n" + json.dumps(vector) + "\n")
    env = environment(tmp_path, log_file) | {"ES_FIELD_MAP": '{"message": "msg"}'}
    result = run(backfill_command, ["--days", "1", "--output", str(tmp_path / "r"), "--now", NOW], env)
    assert result.exit_code == 0, result.output
    assert "Events fetched: 2" in result.output
    assert "skipped" not in result.output.split("Events fetched")[1].split("\n")[0]


def test_a_field_map_naming_no_field_names_the_setting(demo_file, tmp_path):
    path, _ = demo_file
    env = environment(tmp_path, path) | {"ES_FIELD_MAP": '{"mesage": "msg"}'}
    result = CliRunner().invoke(backfill_command, ["--days", "1", "--now", NOW], env=env)
    assert result.exit_code == 2
    assert "ES_FIELD_MAP" in result.output and "mesage" in result.output


def test_a_backfill_stores_the_trace_ids_and_then_lets_them_go(demo_file, tmp_path):
    # A backfill keeps each day's result until its report; the trace ids (up to 50 per incident) are
    # read only by propagate and the store, so holding them made memory grow with each day's volume.
    path, _ = demo_file
    c = components(tmp_path, NdjsonSource(path))
    now = datetime(2026, 2, 10, 9, 15, tzinfo=UTC)
    outcome = backfill(c, [DAY], tmp_path / "reports", dry_run=False, now=now)
    assert outcome.ok, outcome.failed
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    stored = c.store.incidents_between(start, start + timedelta(days=1))
    assert sum(len(i.trace_ids) for i in stored) > 100
    held = [i for r in outcome.results for i in r.analysis.incidents]
    assert len(held) == len(stored)
    assert all(i.trace_ids == [] for i in held)


def test_a_run_wakes_the_garbage_collector_rarely_and_then_restores_it(demo_file, tmp_path):
    path, _ = demo_file
    seen: list[tuple[int, int, int]] = []

    class Watched(NdjsonSource):
        def fetch(self, start, end, stats):
            seen.append(gc.get_threshold())
            yield from super().fetch(start, end, stats)

    before = gc.get_threshold()
    assert before != GC_THRESHOLDS
    now = datetime(2026, 2, 10, 9, 15, tzinfo=UTC)
    outcome = backfill(
        components(tmp_path, Watched(path)), [DAY], tmp_path / "reports", dry_run=True, now=now
    )
    assert outcome.ok, outcome.failed
    assert seen == [GC_THRESHOLDS]
    assert gc.get_threshold() == before


def test_a_problem_people_resolved_is_stamped_with_the_runs_now(demo_file, tmp_path):
    # The run's `--now`, not the wall clock: a replayed run writes the same registry.
    path, _ = demo_file
    c = components(tmp_path, NdjsonSource(path))
    backfill(c, [DAY], tmp_path / "reports", dry_run=False, now=datetime(2026, 2, 10, 9, 15, tzinfo=UTC))
    problems = c.registry.problems_path
    text = problems.read_text()
    problems.write_text(text.replace("triage: open", "triage: resolved", 1))
    (resolved,) = [pid for pid, entry in c.registry.triages().items() if entry.triage == "resolved"]
    empty = tmp_path / "nothing.ndjson"
    empty.write_bytes(b"")
    later = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    # a source where no logs are a quiet day, not a failure
    quiet = components(
        tmp_path, NdjsonSource(empty), thresholds=Thresholds(verdict=VerdictConfig(min_documents=0))
    )
    outcome = backfill(quiet, [date(2026, 2, 28)], tmp_path / "r2", dry_run=False, now=later)
    assert outcome.ok, outcome.failed
    entry = c.registry.triages()[resolved]
    assert (entry.triage, entry.resolved_at) == ("resolved", later)


def test_every_accepted_event_is_counted_once_whatever_the_batch_boundaries(tmp_path):
    # The hot loop takes events through its stages in batches of STAGE_BATCH: the last, partial
    # batch and the events on either side of a boundary are counted like any other.
    total = 2 * STAGE_BATCH + 345
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    lines = []
    for n in range(total):
        stamp = (start + timedelta(seconds=30 * n)).isoformat().replace("+00:00", "Z")
        kind = ("timed out after 3000 ms", "refused: connection reset", "disk full on /var/lib/data")[n % 3]
        doc = {"@timestamp": stamp, "kubernetes": {"namespace": f"ns-{n % 4}"}, "message": f"ERROR {kind}"}
        lines.append(json.dumps(doc))
    lines.append(json.dumps({"@timestamp": start.isoformat(), "message": "ERROR no namespace"}))
    path = tmp_path / "logs.ndjson"
    path.write_text("\n".join(lines) + "\n")

    result = analyse(components(tmp_path, NdjsonSource(path)), start, start + timedelta(days=1))

    stats = result.analysis.stats
    assert (stats.fetched, stats.accepted, stats.skipped) == (total + 1, total, {"missing_namespace": 1})
    assert sum(incident.count for incident in result.analysis.incidents) == total
    per_namespace = {}
    for incident in result.analysis.incidents:
        per_namespace[incident.namespace] = per_namespace.get(incident.namespace, 0) + incident.count
    assert per_namespace == {f"ns-{i}": len(range(i, total, 4)) for i in range(4)}


def test_critical_findings_stored_by_a_run_that_dies_are_alerted_by_the_next(
    demo_file, tmp_path, monkeypatch
):
    # The outage's windows are stored, then the run dies before alerting (here: the registry export
    # fails). Their critical findings were stored with the windows, so the next run alerts them.
    path, manifest = demo_file
    outage = manifest.incident("db_outage")
    env = environment(tmp_path, path)
    first_now = (outage.start + timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%S")

    def broken_export(self, export_dir):
        raise RuntimeError("export folder gone")

    with monkeypatch.context() as patched:
        patched.setattr("core.registry.Registry.export_csv", broken_export)
        died = CliRunner().invoke(regular_phase_command, ["--window", "60", "--now", first_now], env=env)
    assert died.exit_code != 0 and isinstance(died.exception, RuntimeError)
    assert not list((tmp_path / "exports").glob("publish/teams_alert_*.json"))
    store = Store.from_url(env["DATABASE_URL"])
    pending = store.pending_alerts()
    assert pending and {f.severity for _, f in pending} == {"critical"}
    assert any(f.problem_id.startswith("DATABASE:") for _, f in pending)

    # The next run has no new window to analyse (nothing is due yet), and alerts what the dead run stored.
    result = run(regular_phase_command, ["--now", first_now], env)
    assert result.exit_code == 0, result.output
    (alert,) = (tmp_path / "exports").glob("publish/teams_alert_*.json")
    card = alert.read_text()
    assert all(f.problem_id in card for _, f in pending)
    assert store.pending_alerts() == []
    # ... once: a third run finds nothing pending and sends nothing more.
    run(regular_phase_command, ["--now", first_now], env)
    assert len(list((tmp_path / "exports").glob("publish/teams_alert_*.json"))) == 1


def test_a_rewritten_window_replaces_its_pending_alerts(tmp_path):
    store = Store.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    start = datetime(2026, 2, 9, 3, 0, tzinfo=UTC)
    finding = Finding("spike", "DATABASE:core_db:too_many_connections", start, "critical", "x", ("core-db",))
    store.replace_range(start, start + timedelta(minutes=15), [], [], None, "regular", [finding])
    ((first_id, stored),) = store.pending_alerts()
    assert stored == finding
    store.replace_range(start, start + timedelta(minutes=15), [], [], None, "regular", [])
    assert store.pending_alerts() == []
    store.replace_range(start, start + timedelta(minutes=15), [], [], None, "regular", [finding])
    ((again_id, _),) = store.pending_alerts()
    store.alerts_handed_over([again_id])
    assert store.pending_alerts() == []
    with pytest.raises(ValueError, match="outside"):
        store.replace_range(
            start + timedelta(hours=1), start + timedelta(hours=2), [], [], None, "regular", [finding]
        )


def test_a_run_removes_what_is_older_than_the_retention_and_keeps_the_problems(demo_file, tmp_path):
    path, _ = demo_file
    c = components(tmp_path, NdjsonSource(path), schedule=Schedule(baseline_days=0, retention_days=30))
    backfill(c, [DAY], tmp_path / "r1", dry_run=False, now=datetime(2026, 2, 10, 9, 15, tzinfo=UTC))
    before = c.store.snapshot()
    assert before["incidents"] and before["problems"]
    # Forty days later the incident day is past the 30 days kept.
    later = datetime(2026, 3, 21, 9, 15, tzinfo=UTC)
    backfill(c, [date(2026, 3, 20)], tmp_path / "r2", dry_run=False, now=later)
    after = c.store.snapshot()
    assert after["incidents"] == []
    assert min(w["window_start"] for w in after["windows"]) == "2026-03-20T00:00:00+00:00"
    assert [p["problem_id"] for p in after["problems"]] == [p["problem_id"] for p in before["problems"]]
    assert [r.status for r in c.store.recent_runs(10)] == ["failed", "succeeded"]  # newest first


def test_an_ignore_until_a_date_silences_a_problem_until_then(demo_file, tmp_path):
    # People's triage, not the pipeline's fact: ignored until a date, a problem gets no finding (so
    # no alert) and the report says until when; once the date has passed it is found again.
    path, _ = demo_file
    now = datetime.fromisoformat(NOW).replace(tzinfo=UTC)
    c = components(tmp_path, NdjsonSource(path))
    first = backfill(c, [DAY], tmp_path / "r1", dry_run=False, now=now)
    found = {f.problem_id for f in first.results[0].detection.findings if ":" in f.problem_id}
    silenced = sorted(pid for pid in found if not pid.startswith("namespace:"))[0]

    def ignore(until: str) -> None:
        doc = c.registry.problems_path.read_text()
        head, entry = doc.split(f"{silenced}:\n", 1)
        entry = entry.replace("  triage: open\n  until:\n  reason:\n", "", 1)
        triage = f"  triage: ignored\n  until: {until}\n  reason: fixed in the next release\n"
        c.registry.problems_path.write_text(f"{head}{silenced}:\n{triage}{entry}")

    ignore(f"{DAY + timedelta(days=3)}")
    second = backfill(c, [DAY], tmp_path / "r2", dry_run=False, now=now)
    assert silenced not in {f.problem_id for f in second.results[0].detection.findings}
    report = json.loads(second.report_files["json"].read_text())
    (problem,) = [p for p in report["problems"] if p["id"] == silenced]
    assert (problem["triage"], problem["silenced_until"]) == ("ignored", "2026-02-12T00:00:00Z")
    assert problem["reason"] == "fixed in the next release"
    assert not any(line.startswith(f"{silenced} ") for line in report["executive_summary"])
    assert report["problems"][-1]["triage"] == "ignored"  # ranked last

    ignore(f"{DAY}")  # the ignore ended at the start of the day
    third = backfill(c, [DAY], tmp_path / "r3", dry_run=False, now=now)
    assert silenced in {f.problem_id for f in third.results[0].detection.findings}
    report = json.loads(third.report_files["json"].read_text())
    (problem,) = [p for p in report["problems"] if p["id"] == silenced]
    assert (problem["triage"], problem["silenced_until"]) == ("open", None)
