"""A run tells the truth: each range's verdict, and every output saying it first (core/verdict.py).

Embedded source (NDJSON) and store (SQLite); the Elasticsearch cases are in
tests/integration/test_verdicts_elasticsearch.py.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from core import demo
from core.cli import backfill_command, main, regular_phase_command
from core.fetch import NdjsonSource
from core.model import InputStats, Verdict
from core.publish import trend_chart_png
from core.store import Store
from core.verdict import VerdictConfig, read_verdict, volume_verdict

DAY = date(2026, 2, 9)


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "logs.ndjson"
    demo.generate(path, DAY, days=3, seed=11, scale=0.2)
    return path


def environment(tmp: Path, log_file: Path, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{tmp / 'state.db'}",
        "LOG_FILE": str(log_file),
        "REGISTRY_DIR": str(tmp / "registry"),
        "EXPORT_DIR": str(tmp / "exports"),
        "BASELINE_DAYS": "0",
        "LOG_FORMAT": "json",
        **extra,
    }


def backfill(env: dict[str, str], output: Path, day: date = DAY):
    now = f"{day + timedelta(days=1)}T09:15:00"
    args = ["--from", day.isoformat(), "--to", day.isoformat(), "--output", str(output), "--now", now]
    return CliRunner().invoke(backfill_command, args, env=env)


def stdout_lines(output: str) -> list[str]:
    """What a person reads on the terminal: the run's lines, not the JSON log lines."""
    return [line for line in output.splitlines() if line and not line.startswith("{")]


def outputs(folder: Path) -> dict[str, str]:
    """The first line of the TXT and CSV reports, the start of the Confluence body, the first text of
    the Teams card, and the JSON report's verdict."""
    (txt,) = folder.glob("problem_report_*.txt")
    (csv,) = folder.glob("problem_report_*.csv")
    (report,) = folder.glob("problem_report_*.json")
    (page,) = folder.glob("publish/confluence_daily_*.xhtml")
    (card,) = folder.glob("publish/teams_summary_*.json")
    content = json.loads(card.read_text())["attachments"][0]["content"]
    first_block = content["body"][0]
    return {
        "txt": txt.read_text().splitlines()[0],
        "txt_all": txt.read_text(),
        "csv": csv.read_text().splitlines()[0],
        "page": page.read_text(),
        "card": first_block["inlines"][0]["text"] if "inlines" in first_block else first_block["text"],
        "verdict": json.loads(report.read_text())["verdict"],
    }


def test_an_empty_log_file_fails_the_day_everywhere(tmp_path):
    empty = tmp_path / "empty.ndjson"
    empty.write_bytes(b"")
    result = backfill(environment(tmp_path, empty), tmp_path / "reports")
    assert result.exit_code == 1, result.output
    headline = f"Analysis FAILED for {DAY}: no logs: no documents of any level in file {empty}"
    assert stdout_lines(result.output)[1] == f"❌ {headline}, nor in the 1 days before"
    seen = outputs(tmp_path / "reports")
    assert seen["txt"].startswith(headline)
    assert seen["csv"].startswith(f"# {headline}")
    assert seen["card"].startswith(headline)
    assert seen["page"].startswith('<ac:structured-macro ac:name="warning">')
    assert headline in seen["page"].split("<h1>")[0]
    assert "No problems in this range" not in seen["txt_all"] + seen["page"]
    for what in ("problems", "peaks", "chains"):  # no section says there are none: none could be read
        assert f"No {what}." not in seen["txt_all"] + seen["page"]
        assert f"No {what} can be reported: the analysis failed (see above)." in seen["txt_all"]
        assert f"<p>No {what} can be reported: the analysis failed (see above).</p>" in seen["page"]
    assert seen["verdict"]["status"] == "failed"
    assert seen["verdict"]["ranges"] == [
        {"label": str(DAY), "status": "failed", "reasons": [seen["verdict"]["reasons"][0]]}
    ]
    # The chart attached to the page says so too, not "No errors in this range".
    (chart,) = (tmp_path / "reports").glob("publish/trend_*.png")
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    failed, quiet = "No errors can be reported: the analysis failed (see above).", "No errors in this range."
    drawn = {
        text: trend_chart_png([], start=start, end=start + timedelta(days=1), empty=text)
        for text in (failed, quiet)
    }
    assert chart.read_bytes() == drawn[failed]
    assert chart.read_bytes() != drawn[quiet]


def test_a_file_of_random_bytes_fails_the_day_naming_why(tmp_path):
    noise = tmp_path / "noise.ndjson"
    noise.write_bytes(bytes(range(256)) * 40 + b"\n" + os.urandom(4000))
    result = backfill(environment(tmp_path, noise), tmp_path / "reports")
    assert result.exit_code == 1, result.output
    seen = outputs(tmp_path / "reports")
    assert seen["txt"].startswith(f"Analysis FAILED for {DAY}: none of the ")
    assert "documents read could be used (not_utf8: " in seen["txt"]


def test_a_field_map_that_reads_no_message_fails_the_day(demo_file, tmp_path):
    env = environment(
        tmp_path, demo_file, ES_FIELD_PRESET="ecs", ES_FIELD_MAP='{"message": "does.not.exist"}'
    )
    result = backfill(env, tmp_path / "reports")
    assert result.exit_code == 1, result.output
    seen = outputs(tmp_path / "reports")
    assert seen["txt"].startswith(f"Analysis FAILED for {DAY}: none of the ")
    assert "missing_message" in seen["txt"]


def test_logs_that_stop_arriving_fail_the_day_and_keep_what_was_stored(demo_file, tmp_path):
    env = environment(tmp_path, demo_file)
    first = backfill(env, tmp_path / "r1")
    assert first.exit_code == 0, first.output
    stored = Store.from_url(env["DATABASE_URL"]).snapshot()
    assert stored["incidents"]
    # The day after the demo ends has no logs at all, where the day before had.
    later = backfill(env, tmp_path / "r2", DAY + timedelta(days=1))
    assert later.exit_code == 1, later.output
    seen = outputs(tmp_path / "r2")
    assert seen["txt"].startswith(f"Analysis FAILED for {DAY + timedelta(days=1)}: logs stopped arriving")
    after = Store.from_url(env["DATABASE_URL"]).snapshot()
    assert after["incidents"] == stored["incidents"]


def test_a_regular_window_without_logs_fails_but_the_catch_up_moves_on(demo_file, tmp_path):
    # The demo ends with DAY: its last windows hold logs, the windows after it none.
    env = environment(tmp_path, demo_file)
    end = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC) + timedelta(days=1)
    now = (end + timedelta(minutes=35)).strftime("%Y-%m-%dT%H:%M:%S")
    result = CliRunner().invoke(regular_phase_command, ["--window", "60", "--now", now], env=env)
    assert result.exit_code == 1, result.output
    assert stdout_lines(result.output)[0].startswith("❌ Analysis FAILED for ")
    assert "logs stopped arriving" in stdout_lines(result.output)[0]
    windows = Store.from_url(env["DATABASE_URL"]).processed_windows(
        end - timedelta(hours=2), end + timedelta(hours=1)
    )
    # the windows with logs and the empty ones are all recorded: the next run does not repeat them
    assert max(windows) == end + timedelta(minutes=15)
    assert min(windows) == end - timedelta(minutes=30)


def test_a_quiet_day_without_errors_is_not_a_failure(tmp_path):
    quiet = tmp_path / "quiet.ndjson"
    lines = [
        {
            "@timestamp": f"2026-02-09T{hour:02d}:00:00Z",
            "message": "GET /health 200",
            "log": {"level": "info"},
            "kubernetes": {"namespace": "payments", "pod": {"name": "api-7d4b9c-x2x2x"}},
        }
        for hour in range(24)
    ]
    quiet.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = backfill(environment(tmp_path, quiet), tmp_path / "reports")
    assert result.exit_code == 0, result.output
    seen = outputs(tmp_path / "reports")
    assert seen["txt"] == "PROBLEM_ANALYSIS_REPORT"
    assert "No problems in this range." in seen["txt_all"]
    for what in ("problems", "peaks", "chains"):
        assert f"No {what}." in seen["txt_all"] and f"<p>No {what}.</p>" in seen["page"]
    assert seen["verdict"]["status"] == "ok"


def test_a_high_share_of_unusable_documents_is_degraded_with_a_warning(tmp_path):
    mixed = tmp_path / "mixed.ndjson"
    good = {
        "@timestamp": "2026-02-09T10:00:00Z",
        "message": "java.net.ConnectException: Connection refused",
        "log": {"level": "error"},
        "kubernetes": {"namespace": "payments", "pod": {"name": "api-7d4b9c-x2x2x"}},
    }
    unnamed = {k: v for k, v in good.items() if k != "kubernetes"}
    mixed.write_text(json.dumps(good) + "\n" + (json.dumps(unnamed) + "\n") * 3)
    result = backfill(environment(tmp_path, mixed), tmp_path / "reports")
    assert result.exit_code == 0, result.output  # analysed: a warning, not a failure
    assert stdout_lines(result.output)[1].startswith(f"⚠️ Analysis DEGRADED for {DAY}: 75% of the 4 documents")
    seen = outputs(tmp_path / "reports")
    assert seen["txt"].startswith(
        f"Analysis DEGRADED for {DAY}: 75% of the 4 documents read could not be used"
    )
    assert "missing_namespace: 3" in seen["txt"]
    assert seen["page"].startswith('<ac:structured-macro ac:name="note">')
    for what in ("peaks", "chains"):  # of a quarter of the documents: none found, not none
        assert f"No {what}." not in seen["txt_all"] + seen["page"]
        assert f"No {what} found in what could be read; the analysis is degraded (see above)." in seen["page"]
    assert seen["verdict"]["status"] == "degraded"


def test_publish_republishes_the_last_complete_report_not_the_failed_one(demo_file, tmp_path):
    env = environment(tmp_path, demo_file)
    reports = tmp_path / "reports"
    assert backfill(env, reports).exit_code == 0
    (complete,) = reports.glob("problem_report_*.json")
    failed = CliRunner().invoke(
        backfill_command,
        ["--days", "1", "--output", str(reports), "--now", "2026-02-11T09:15:00"],
        env=env | {"LOG_FILE": str(tmp_path / "gone.ndjson")},
    )
    assert failed.exit_code == 2  # a missing LOG_FILE is a setting error: nothing done
    empty = tmp_path / "empty.ndjson"
    empty.write_bytes(b"")
    failed = CliRunner().invoke(
        backfill_command,
        ["--days", "1", "--output", str(reports), "--now", "2026-02-11T09:15:00"],
        env=env | {"LOG_FILE": str(empty)},
    )
    assert failed.exit_code == 1
    result = CliRunner().invoke(main, ["publish", "--output", str(reports), "--dry-run"], env=env)
    assert result.exit_code == 0, result.output
    assert stdout_lines(result.output)[0].startswith(f"publishing {complete}")


# --- the verdict functions ------------------------------------------------------------------------


class CountingSource:
    """A source that only answers `volume`: documents per range, as a map of range start → count."""

    def __init__(self, counts: dict[datetime, int]) -> None:
        self.counts = counts

    def volume(self, start: datetime, end: datetime, *, enough: int) -> int:
        return sum(n for at, n in self.counts.items() if start <= at < end)

    def describe(self) -> str:
        return "test source"


T0 = datetime(2026, 2, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("counts", "minimum", "status", "words"),
    [
        ({T0: 5}, 1, "ok", None),
        # 7 days × 20 documents a day on average make an empty day certain to be a loss of logs
        ({T0 - timedelta(days=2): 140}, 1, "failed", "logs stopped arriving: no documents of any level"),
        ({T0 - timedelta(days=2): 500, T0: 2}, 3, "failed", "logs stopped arriving: only 2 documents"),
        ({T0 - timedelta(days=2): 139}, 1, "ok", None),  # a sparse source: an empty day is no sign
        ({}, 1, "failed", "no logs: no documents of any level in test source, nor in the 7 days before"),
        ({}, 0, "ok", None),  # the check is off
    ],
)
def test_the_volume_verdict(counts, minimum, status, words):
    config = VerdictConfig(min_documents=minimum)
    verdict = volume_verdict(CountingSource(counts), T0, T0 + timedelta(days=1), "2026-02-09", config)
    assert verdict.status == status
    assert (words is None and not verdict.reasons) or words in verdict.reasons[0]


def test_the_read_verdict_leaves_the_level_filter_out():
    config = VerdictConfig(max_unreadable_share=0.5)
    levels_only = InputStats(fetched=10, accepted=1, skipped={"not_error_level": 9})
    assert read_verdict(levels_only, "d", config).ok
    half = InputStats(fetched=10, accepted=5, skipped={"missing_message": 5})
    assert read_verdict(half, "d", config).ok  # 50 % is allowed, more is not
    most = InputStats(fetched=10, accepted=4, skipped={"missing_message": 6})
    assert read_verdict(most, "d", config).status == "degraded"
    nothing = InputStats(fetched=3, accepted=0, skipped={"malformed_json": 2, "not_utf8": 1})
    verdict = read_verdict(nothing, "d", config)
    assert verdict.status == "failed"
    assert verdict.reasons == ("none of the 3 documents read could be used (malformed_json: 2, not_utf8: 1)",)


def test_one_verdict_for_several_ranges_names_each_reason_once():
    ranges = [
        Verdict("ok", (), "2026-02-07"),
        Verdict("failed", ("source down",), "2026-02-08"),
        Verdict("failed", ("source down",), "2026-02-09"),
        Verdict("degraded", ("many unreadable",), "2026-02-10"),
    ]
    run = Verdict.worst(ranges, "2026-02-07 to 2026-02-10")
    assert run.status == "failed"
    assert run.headline() == (
        "Analysis FAILED for 2026-02-07 to 2026-02-10: 2026-02-08, 2026-02-09: source down; "
        "2026-02-10: many unreadable"
    )
    assert Verdict.worst([Verdict("ok", (), "a")], "a").headline() == "Analysis complete for a."
    assert Verdict.worst([]).ok


def test_the_file_volume_stops_at_enough(tmp_path):
    path = tmp_path / "logs.ndjson"
    path.write_text(
        "".join(json.dumps({"@timestamp": f"2026-02-09T10:{m:02d}:00Z"}) + "\n" for m in range(30))
    )
    source = NdjsonSource(path)
    day = (T0, T0 + timedelta(days=1))
    assert source.volume(*day, enough=1) == 1
    assert source.volume(*day, enough=100) == 30
    assert (
        source.volume(T0 + timedelta(hours=10, minutes=15), T0 + timedelta(hours=10, minutes=30), enough=100)
        == 15
    )
    assert source.volume(T0 - timedelta(days=1), T0, enough=100) == 0
