"""Settings checked before any work, on the real PostgreSQL (needs PostgreSQL): a database where
`log-analyzer migrate` never ran stops the phases in one line that says to run it, with nothing
written to the database or beside it."""

from __future__ import annotations

import os
from pathlib import Path

import click
import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from core.cli import backfill_command, main, regular_phase_command

from .conftest import PostgresUrls, libpq_url

SETTING_PREFIXES = ("DB_", "DATABASE_", "ES_", "DETECT_", "PROPAGATE_", "TEAMS_", "CONFLUENCE_")


def run_env(tmp_path: Path, database_url: str) -> dict[str, str | None]:
    log_file = tmp_path / "logs.ndjson"
    log_file.touch()
    return {
        **{name: None for name in os.environ if name.startswith(SETTING_PREFIXES)},
        "DATABASE_URL": database_url,
        "LOG_FILE": str(log_file),
        "REGISTRY_DIR": str(tmp_path / "registry"),
        "EXPORT_DIR": str(tmp_path / "exports"),
        "LOG_FORMAT": "json",
    }


def tables(url: str) -> list[str]:
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    return [row[0] for row in rows]


@pytest.mark.parametrize("dry_run", [False, True], ids=["stored", "dry-run"])
@pytest.mark.parametrize("command", [backfill_command, regular_phase_command], ids=["backfill", "regular"])
def test_a_database_never_migrated_stops_the_phase_saying_to_migrate(
    tmp_path: Path, postgres_urls: PostgresUrls, command: click.Command, dry_run: bool
) -> None:
    args = ["--dry-run"] if dry_run else []
    if command is backfill_command:
        args += ["--days", "1", "--output", str(tmp_path / "reports")]
    env = run_env(tmp_path, postgres_urls.app_url)
    before = set(tmp_path.rglob("*"))
    result = CliRunner().invoke(command, args, env=env)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and "has no schema" in lines[0] and "run `log-analyzer migrate`" in lines[0]
    assert str(make_url(postgres_urls.app_url).password) not in result.output
    assert "Traceback" not in result.output
    assert tables(postgres_urls.app_url) == []
    assert set(tmp_path.rglob("*")) == before


def test_once_migrated_the_phase_passes_the_check(tmp_path: Path, postgres_urls: PostgresUrls) -> None:
    migrate = CliRunner().invoke(main, ["migrate"], env=run_env(tmp_path, postgres_urls.ddl_url))
    assert migrate.exit_code == 0, migrate.output
    result = CliRunner().invoke(
        regular_phase_command, ["--dry-run"], env=run_env(tmp_path, postgres_urls.app_url)
    )
    assert "configuration error" not in result.output and result.exit_code != 2, result.output


def test_status_on_a_database_never_migrated_says_to_migrate(
    tmp_path: Path, postgres_urls: PostgresUrls
) -> None:
    result = CliRunner().invoke(main, ["status"], env=run_env(tmp_path, postgres_urls.app_url))
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and "run `log-analyzer migrate`" in lines[0]
    assert tables(postgres_urls.app_url) == []
