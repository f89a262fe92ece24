"""Tests of core/cli.py: what the entrypoints cost before they do any work, and what the read-only
commands (`status`, `publish --dry-run`) say and leave behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_publish import stored_report_file, verdict

from core import publish
from core.cli import main

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
