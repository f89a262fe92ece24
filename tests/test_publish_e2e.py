"""End to end through the command line: a backfill over demo data publishes to fake Confluence and Teams
servers; a Confluence failure leaves the analysis green and is delivered by the next run of the other
phase; `log-analyzer publish` re-renders the same page from the report JSON; no planted secret leaves."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_services import FakeConfluence, FakeTeams, running
from test_pipeline import NOW, demo_file, environment  # noqa: F401  (demo_file is a fixture)
from test_publish_channels import LEAKS, planted

from core.cli import backfill_command, main, regular_phase_command

PAGES = {"CONFLUENCE_DAILY_REPORT_PAGE_ID": "1001", "CONFLUENCE_KNOWN_ERRORS_PAGE_ID": "1002"}
PAGES |= {"CONFLUENCE_KNOWN_PEAKS_PAGE_ID": "1003"}


@pytest.fixture
def services() -> Iterator[tuple[FakeConfluence, FakeTeams]]:
    confluence = FakeConfluence()
    for page_id, title in zip(
        PAGES.values(), ("Daily problem report", "Known errors", "Known peaks"), strict=True
    ):
        confluence.add_page(page_id, title)
    with running(confluence), running(FakeTeams()) as teams:
        yield confluence, teams


def with_planted_secrets(demo: Path, tmp: Path) -> Path:
    logs = tmp / "logs.ndjson"
    shutil.copy(demo, logs)
    document = {
        "@timestamp": "2026-02-09T08:00:00Z",
        "log.level": "error",
        "kubernetes": {"namespace": "payments", "pod": {"name": "payment-api-7d9f8-abcde"}},
        "message": f"ERROR payment declined {planted()}",
    }
    with logs.open("a", encoding="utf-8") as out:
        for _ in range(5):
            out.write(json.dumps(document) + "\n")
    return logs


def test_backfill_publishes_and_the_next_run_delivers_what_failed(demo_file, services, tmp_path, gateway):  # noqa: F811
    confluence, teams = services
    env = environment(tmp_path, with_planted_secrets(demo_file[0], tmp_path)) | PAGES
    env |= {
        "BASELINE_DAYS": "0",  # publishing is under test here, not detection: one day is enough
        "CONFLUENCE_URL": confluence.url,
        "CONFLUENCE_USERNAME": "analyzer",
        "CONFLUENCE_PASSWORD": "wrong-fake-pw",
        "TEAMS_ENABLED": "true",
        "TEAMS_WEBHOOK_URL": f"{teams.url}/workflows/run?sig=FakeSignature0123",
        "PUSHGATEWAY_URL": gateway.url,
        "PUBLISH_MAX_ATTEMPTS": "2",
    }
    reports = tmp_path / "reports"
    runner = CliRunner()
    result = runner.invoke(backfill_command, ["--days", "1", "--output", str(reports), "--now", NOW], env=env)
    assert result.exit_code == 0, result.output  # a failed publish never fails the analysis
    assert "HTTP 401 (check CONFLUENCE_USERNAME / CONFLUENCE_PASSWORD)" in result.output
    assert "wrong-fake-pw" not in result.output and "FakeSignature" not in result.output
    metrics = gateway.lines("/metrics/job/ai_log_analyzer/phase/backfill")
    assert 'ai_log_analyzer_publish_status{channel="confluence",status="failed"} 1.0' in metrics
    assert 'ai_log_analyzer_publish_status{channel="teams",status="ok"} 1.0' in metrics
    (summary,) = teams.posted()
    content = summary["attachments"][0]["content"]
    assert content["body"][0]["text"].startswith("Log analysis 2026-02-09: ")
    assert content["actions"][0]["url"] == f"{confluence.url}/pages/viewpage.action?pageId=1001"
    assert {page.version for page in confluence.pages.values()} == {1}

    # The next run of the other phase, with the password fixed, delivers the three pages, even though
    # its own window fails: the demo file ends with 2026-02-09, so that window's logs never arrived.
    fixed = env | {"CONFLUENCE_PASSWORD": "fake-password", "MAX_CATCHUP_WINDOWS": "1"}
    result = runner.invoke(regular_phase_command, ["--now", "2026-02-10T09:30:00"], env=fixed)
    assert result.exit_code == 1, result.output
    headline = "❌ Analysis FAILED for 2026-02-10T00:00:00Z to 2026-02-10T00:15:00Z: logs stopped arriving"
    assert [line for line in result.output.splitlines() if not line.startswith("{")][0].startswith(headline)
    assert {page_id: page.version for page_id, page in confluence.pages.items()} == {
        "1001": 2,
        "1002": 2,
        "1003": 2,
    }
    # The pending page, taken from the outbox, carries its title: the analysed day and its status.
    assert confluence.pages["1001"].title.startswith("Log analysis 2026-02-09: ")
    daily = confluence.pages["1001"].body
    assert "Backfill Analysis: 2026-02-09" in daily
    assert list(confluence.attachments["1001"]) == ["trend.png", "problem_report.csv"]
    assert len(teams.posted()) == 1  # the summary was delivered once, and only once

    # By hand: the report JSON renders the very same page, so the page is not written again.
    result = runner.invoke(main, ["publish", "--output", str(reports), "--channel", "confluence"], env=fixed)
    assert result.exit_code == 0, result.output
    assert confluence.pages["1001"].version == 2 and confluence.pages["1001"].body == daily
    assert len(confluence.attachments["1001"]["trend.png"]) == 2  # the attachments are uploaded again

    sent = b"".join(confluence.bodies() + teams.bodies())
    for leak in LEAKS:
        assert leak.encode() not in sent, leak
    assert b"[CARD]" in sent


def test_publish_dry_run_writes_the_payloads_and_sends_nothing(demo_file, services, tmp_path):  # noqa: F811
    confluence, teams = services
    env = environment(tmp_path, demo_file[0]) | PAGES
    env |= {
        "CONFLUENCE_URL": confluence.url,
        "CONFLUENCE_USERNAME": "analyzer",
        "CONFLUENCE_PASSWORD": "fake-password",
        "TEAMS_ENABLED": "true",
        "TEAMS_WEBHOOK_URL": f"{teams.url}/workflows/run?sig=FakeSignature0123",
    }
    reports = tmp_path / "reports"
    args = ["--days", "1", "--output", str(reports), "--dry-run", "--now", NOW]
    result = CliRunner().invoke(backfill_command, args, env=env)
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(
        main, ["publish", "--output", str(reports), "--dry-run", "--now", NOW], env=env
    )
    assert result.exit_code == 0, result.output
    assert confluence.requests == [] and teams.requests == []
    written = sorted(p.name for p in (reports / "publish").iterdir())
    assert written == [
        "confluence_daily_2026-02-10T091500.xhtml",
        "confluence_known_errors_2026-02-10T091500.xhtml",
        "confluence_known_peaks_2026-02-10T091500.xhtml",
        "problem_report_2026-02-10T091500.csv",
        "teams_summary_2026-02-10T091500.json",
        "trend_2026-02-10T091500.png",
    ]
    card = json.loads((reports / "publish" / "teams_summary_2026-02-10T091500.json").read_text())
    # the exact payload, with the link it would carry
    assert card["attachments"][0]["content"]["actions"][0]["url"].endswith("pageId=1001")


def test_a_republish_after_a_failed_delivery_sends_each_message_once(demo_file, services, tmp_path):  # noqa: F811
    confluence, teams = services
    env = environment(tmp_path, demo_file[0]) | PAGES
    env |= {
        "BASELINE_DAYS": "0",
        "CONFLUENCE_URL": confluence.url,
        "CONFLUENCE_USERNAME": "analyzer",
        "CONFLUENCE_PASSWORD": "fake-password",
        "TEAMS_ENABLED": "true",
        "TEAMS_WEBHOOK_URL": f"{teams.url}/workflows/run?sig=FakeSignature0123",
        "PUBLISH_MAX_ATTEMPTS": "1",
    }
    confluence.fail("PUT", "/rest/api/content/", 500, times=3)
    teams.fail("POST", "/workflows/", 429, Retry_After="1")
    reports = tmp_path / "reports"
    runner = CliRunner()
    result = runner.invoke(backfill_command, ["--days", "1", "--output", str(reports), "--now", NOW], env=env)
    assert result.exit_code == 0, result.output
    assert len(teams.posted()) == 1 and {page.version for page in confluence.pages.values()} == {1}
    teams.requests.clear()
    confluence.requests.clear()

    # The pending summary and pages of that run and the new ones of the republish are the same
    # messages: each goes out once.
    args = ["publish", "--output", str(reports), "--now", "2026-02-10T10:00:00"]
    result = runner.invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    (summary,) = teams.posted()
    assert summary["attachments"][0]["content"]["body"][0]["text"].startswith("Log analysis 2026-02-09: ")
    assert len(confluence.puts("1001")) == 1 and confluence.pages["1001"].version == 2
