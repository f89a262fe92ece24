"""Tests of core/cli.py: what the entrypoints cost before they do any work, and what they wire."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from core import demo, publish
from core.cli import backfill_command

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
