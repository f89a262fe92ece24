"""Tests of core/cli.py: what the entrypoints cost before they do any work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from core import publish
from core.cli import backfill_command, regular_phase_command

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
