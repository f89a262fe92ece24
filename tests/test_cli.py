"""Tests of core/cli.py: what the entrypoints cost before they do any work, what they wire, and
what the read-only commands (`status`, `publish --dry-run`) say and leave behind."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_publish import stored_report_file, verdict
from test_store import recorded_run

from core import demo, publish
from core.cli import backfill_command, main, regular_phase_command
from core.store import Store

# Client libraries used only on some paths: a chart drawn, a channel configured, a migration, PostgreSQL.
ON_SOME_PATHS = ("matplotlib", "atlassian", "pymsteams", "requests", "alembic", "psycopg")


def test_the_entrypoints_import_no_library_only_some_paths_need() -> None:
    probe = f"import sys, core.cli; print(' '.join(m for m in {ON_SOME_PATHS!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []


def test_the_channels_are_still_reachable_from_the_package() -> None:
    assert publish.ConfluenceChannel.__module__ == "core.publish.confluence"
    assert publish.TeamsChannel.__module__ == "core.publish.teams"
    with pytest.raises(AttributeError):
        _ = publish.SlackChannel


def command_env(tmp: Path) -> dict[str, str]:
    """Settings for the commands below: a SQLite file that no test creates, nothing to publish to."""
    return {
        "DATABASE_URL": f"sqlite:///{tmp / 'var' / 'ai-log-analyzer.db'}",
        "REGISTRY_DIR": str(tmp / "registry"),
        "LOG_FORMAT": "json",
    }


def test_publish_refuses_a_failed_report_unless_it_is_named(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    failed = stored_report_file(reports, 8, verdict("failed"))
    env = command_env(tmp_path)

    refused = CliRunner().invoke(main, ["publish", "--output", str(reports), "--dry-run"], env=env)
    assert refused.exit_code == 1
    assert refused.output.splitlines() == [
        f"❌ nothing published: every report in {reports} is of a failed analysis (newest {failed}); "
        f"name it to publish it anyway: log-analyzer publish {failed}"
    ]
    assert not (reports / "publish").exists()

    named = CliRunner().invoke(main, ["publish", str(failed), "--output", str(reports), "--dry-run"], env=env)
    assert named.exit_code == 0, named.output
    assert named.stdout.splitlines()[0] == f"publishing {failed} (Backfill Analysis: 2026-02-09)"
    assert "is the report of a failed analysis; publishing it as named" in named.stderr
    assert any(p.name.startswith("teams_summary_") for p in (reports / "publish").iterdir())
    assert not (tmp_path / "var").exists()  # a dry run creates no database


def test_publish_says_which_report_it_publishes_and_skips_newer_failed_ones(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    complete = stored_report_file(reports, 7, verdict("degraded", "62 % of the documents skipped"))
    stored_report_file(reports, 8, verdict("failed"))
    result = CliRunner().invoke(
        main, ["publish", "--output", str(reports), "--dry-run"], env=command_env(tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        f"publishing {complete} (Backfill Analysis: 2026-02-09); "
        "skipped 1 newer failed report(s), newest problem_report_2026-02-10T080000.json"
    )
    assert not (tmp_path / "var").exists()


def test_status_never_creates_the_database(tmp_path: Path) -> None:
    env = command_env(tmp_path)
    database = tmp_path / "var" / "ai-log-analyzer.db"
    for args in (["status"], ["status", "3f2a9c10"]):
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == 1
        assert (
            result.output == f"Error: no runs recorded yet: {database} does not exist (run backfill first)\n"
        )
    assert not (tmp_path / "var").exists()

    Store.from_url(env["DATABASE_URL"]).close()  # a database without runs
    result = CliRunner().invoke(main, ["status"], env=env)
    assert result.exit_code == 1
    assert result.output == f"Error: no runs recorded yet in sqlite:///{database} (run backfill first)\n"


def test_status_finds_a_run_by_the_start_of_its_id_and_lists_an_ambiguous_one(tmp_path: Path) -> None:
    env = command_env(tmp_path)
    with Store.from_url(env["DATABASE_URL"]) as store:
        recorded_run(store, "3f2a9c10-5d1e-4c7b-9a8f-0e1d2c3b4a59", datetime(2026, 2, 10, 9, tzinfo=UTC))
        recorded_run(store, "3f2a77b1-0c4d-4e5f-8a9b-1c2d3e4f5a6b", datetime(2026, 2, 10, 10, tzinfo=UTC))

    found = CliRunner().invoke(main, ["status", "3f2a9c10"], env=env)
    assert found.exit_code == 0, found.output
    assert found.output.startswith("3f2a9c10-5d1e-4c7b-9a8f-0e1d2c3b4a59  regular_phase succeeded")

    ambiguous = CliRunner().invoke(main, ["status", "3f2a"], env=env)
    assert ambiguous.exit_code == 1
    lines = ambiguous.output.splitlines()
    assert lines[0] == "'3f2a' is the start of several run ids; give more of one (newest first):"
    assert [line.split()[0] for line in lines[1:]] == [
        "3f2a77b1-0c4d-4e5f-8a9b-1c2d3e4f5a6b",
        "3f2a9c10-5d1e-4c7b-9a8f-0e1d2c3b4a59",
    ]

    unknown = CliRunner().invoke(main, ["status", "backfill-29511360"], env=env)
    assert unknown.exit_code == 1
    assert unknown.output == (
        "Error: no run matches 'backfill-29511360'; `log-analyzer status` lists recent runs\n"
    )


@pytest.mark.parametrize(("raw", "kept"), [("false", False), ("true", True)])
def test_the_database_keeps_the_demo_cards_ibans_and_e_mails_only_with_store_raw_samples(
    tmp_path: Path, raw: str, kept: bool
) -> None:
    day = date(2026, 2, 9)
    log_file = tmp_path / "logs.ndjson"
    demo.generate(log_file, day, days=1, seed=7, scale=0.2)
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "LOG_FILE": str(log_file),
        "REGISTRY_DIR": str(tmp_path / "registry"),
        "EXPORT_DIR": str(tmp_path / "exports"),
        "BASELINE_DAYS": "0",
        "STORE_RAW_SAMPLES": raw,
    }
    args = ["--days", "1", "--output", str(tmp_path / "reports"), "--now", "2026-02-10T09:15:00"]
    result = CliRunner().invoke(backfill_command, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with sqlite3.connect(tmp_path / "state.db") as db:
        stored = repr(db.execute("SELECT samples, fingerprints FROM incidents").fetchall())
        stored += repr(db.execute("SELECT sample, templates FROM problems").fetchall())
    personal = [value for value in (*demo._CARDS, *demo._IBANS, "@example.com") if value in stored]
    assert bool(personal) == kept, personal


# --- every setting checked before any work ------------------------------------------------------

FAKE_PASSWORD = "fake-pass-123"


def run_env(tmp_path: Path, **settings: str) -> dict[str, str | None]:
    """A run's environment in `tmp_path` over a shell whose own analyzer settings are removed."""
    log_file = tmp_path / "logs.ndjson"
    log_file.touch()
    shell = {name: None for name in os.environ if name.startswith(SETTING_PREFIXES)}
    return {
        **shell,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "LOG_FILE": str(log_file),
        "REGISTRY_DIR": str(tmp_path / "registry"),
        "EXPORT_DIR": str(tmp_path / "exports"),
        "LOG_FORMAT": "json",
        **settings,
    }


SETTING_PREFIXES = ("DB_", "DATABASE_", "ES_", "DETECT_", "PROPAGATE_", "TEAMS_", "CONFLUENCE_")


def assert_stopped_before_any_work(result: Result, tmp_path: Path, before: set[Path], named: str) -> None:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and named in lines[0], result.output
    assert "Traceback" not in result.output and FAKE_PASSWORD not in result.output
    assert set(tmp_path.rglob("*")) == before  # no database, no folder, no report


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"DATABASE_URL": f"postgresql://app:{FAKE_PASSWORD}@db:port/ailog"}, "DATABASE_URL"),
        ({"ES_URL": f"ftp://app:{FAKE_PASSWORD}@es.example.com"}, "ES_URL"),
        ({"ES_FIELD_PRESET": "ecs", "ES_FIELD_MAP": "{message: msg}"}, "ES_FIELD_MAP"),
        ({"REDACT_PATTERNS": '["[0-9]{16}"'}, "REDACT_PATTERNS"),
        ({"ES_INDEX": "logs-*"}, "ES_INDEX: unknown setting (did you mean ES_INDEX_PATTERN?)"),
        (
            {"DETECT_SPIKE_RATOI": "4"},
            "DETECT_SPIKE_RATOI: unknown setting (did you mean DETECT_SPIKE_RATIO?)",
        ),
        ({"PROPAGATE_MIN_CONFIDENCE": "40"}, "PROPAGATE_MIN_CONFIDENCE"),
        ({"DETECT_SPIKE_BASELINE_QUANTILE": "95"}, "DETECT_SPIKE_BASELINE_QUANTILE"),
        (
            {"DETECT_CRITICAL_CATEGORIES": '["DATABSE"]'},
            "DETECT_CRITICAL_CATEGORIES: unknown category 'DATABSE'",
        ),
        (
            {"PROPAGATE_CATEGORY_PRIOR": '{"NETWRK": 0.5}'},
            "PROPAGATE_CATEGORY_PRIOR: unknown category 'NETWRK'",
        ),
    ],
)
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_bad_setting_stops_both_phases_in_one_line(tmp_path, settings, named, dry_run) -> None:
    env = run_env(tmp_path, **settings)
    before = set(tmp_path.rglob("*"))
    dry = ["--dry-run"] if dry_run else []
    backfill = ["--days", "1", "--output", str(tmp_path / "reports"), *dry]
    assert_stopped_before_any_work(
        CliRunner().invoke(backfill_command, backfill, env=env), tmp_path, before, named
    )
    assert_stopped_before_any_work(
        CliRunner().invoke(regular_phase_command, dry, env=env), tmp_path, before, named
    )


@pytest.mark.parametrize(
    ("command", "args", "folder", "named"),
    [
        (backfill_command, [], "reports", "--output"),
        (backfill_command, [], "registry", "REGISTRY_DIR"),
        (backfill_command, [], "exports", "EXPORT_DIR"),
        (backfill_command, ["--dry-run"], "reports", "--output"),
        (backfill_command, ["--dry-run"], "registry", "REGISTRY_DIR"),  # read by every run
        (regular_phase_command, [], "registry", "REGISTRY_DIR"),
        (regular_phase_command, [], "exports", "EXPORT_DIR"),
        (regular_phase_command, ["--dry-run"], "exports", "EXPORT_DIR"),
    ],
)
@pytest.mark.parametrize("where", ["is a file", "is under a file"])
def test_a_folder_the_run_writes_must_be_one(tmp_path, command, args, folder, named, where) -> None:
    (tmp_path / "taken").write_text("not a folder\n")
    path = tmp_path / "taken" if where == "is a file" else tmp_path / "taken" / folder
    env = run_env(tmp_path)
    env.update(REGISTRY_DIR=str(tmp_path / "registry"), EXPORT_DIR=str(tmp_path / "exports"))
    output = tmp_path / "reports"
    if named == "--output":
        output = path
    else:
        env[named] = str(path)
    if command is backfill_command:
        args = ["--days", "1", "--output", str(output), *args]
    before = set(tmp_path.rglob("*"))
    assert_stopped_before_any_work(CliRunner().invoke(command, args, env=env), tmp_path, before, named)


def test_a_dry_run_does_not_need_the_folders_it_does_not_write(tmp_path) -> None:
    (tmp_path / "taken").write_text("not a folder\n")
    env = run_env(tmp_path, EXPORT_DIR=str(tmp_path / "taken"))
    args = ["--days", "1", "--output", str(tmp_path / "reports"), "--dry-run"]
    result = CliRunner().invoke(backfill_command, args, env=env)
    assert "EXPORT_DIR" not in result.output and result.exit_code != 2, result.output
    assert not (tmp_path / "state.db").exists() and not (tmp_path / "registry").exists()


def test_a_folder_the_run_cannot_write_stops_it(tmp_path, monkeypatch) -> None:
    env = run_env(tmp_path)
    exports = tmp_path / "exports"
    exports.mkdir()
    before = set(tmp_path.rglob("*"))
    # os.access, not chmod: the tests may run as root, whom no mode stops.
    monkeypatch.setattr("core.cli.os.access", lambda path, mode: Path(path) != exports)
    result = CliRunner().invoke(regular_phase_command, [], env=env)
    assert_stopped_before_any_work(result, tmp_path, before, f"EXPORT_DIR: {exports} is not writable")
