"""The production paths against the real servers (needs Elasticsearch and PostgreSQL): the demo days
indexed into Elasticsearch and analysed into PostgreSQL must give exactly what the embedded path
(NDJSON file + SQLite) gives on the same documents, and faults of either server must be clear errors
that leave nothing half-written."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk
from sqlalchemy.engine import make_url

from core import demo
from core.cli import backfill_command, main, regular_phase_command
from core.fetch import ElasticsearchSource, NdjsonSource
from core.layout import ERROR_LEVELS
from core.model import InputStats
from core.normalize import normalize
from core.store import Store

from .conftest import DDL_ROLE, REPO_ROOT, TEST_INDEX_PREFIX, FreshDatabase, PostgresUrls
from .faulty_proxy import FaultyProxy

DAY = date(2026, 2, 9)  # the demo's incident day
NOW = "2026-02-10T09:15:00"  # the morning after, when the backfill CronJob runs
ONE_DAY = timedelta(days=1)
# Settings a developer's shell may carry; each run states its own source and store.
_CLEARED = (
    "DATABASE_URL",
    "DB_HOST",
    "DB_PORT",
    "DB_NAME",
    "DB_USER",
    "DB_PASSWORD",
    "DB_DDL_USER",
    "DB_DDL_PASSWORD",
    "DB_DDL_ROLE",
    "ES_URL",
    "ES_HOST",
    "ES_PORT",
    "ES_INDEX_PATTERN",
    "ES_USERNAME",
    "ES_PASSWORD",
    "ES_API_KEY",
    "ES_PAGE_SIZE",
    "ES_SLICES",
    "LOG_FILE",
    "PUSHGATEWAY_URL",
    "TEAMS_ENABLED",
    "TEAMS_WEBHOOK_URL",
    "CONFLUENCE_URL",
)
Env = dict[str, str | None]  # None removes a variable for the run
# Report keys that describe the run rather than the findings.
_RUN_KEYS = {"generated_at", "run"}


@dataclass(frozen=True)
class DemoLogs:
    path: Path
    manifest: demo.DemoManifest
    documents: list[dict[str, Any]]


@pytest.fixture(scope="module")
def demo_logs(tmp_path_factory: pytest.TempPathFactory) -> DemoLogs:
    path = tmp_path_factory.mktemp("demo") / "logs.ndjson"
    manifest = demo.generate(path, DAY, days=4, seed=7, scale=0.4)
    with path.open(encoding="utf-8") as lines:
        documents = [json.loads(line) for line in lines if line.strip()]
    return DemoLogs(path, manifest, documents)


@pytest.fixture(scope="module")
def demo_index(es_client: Elasticsearch, demo_logs: DemoLogs) -> Iterator[str]:
    """The demo days in one fresh `logs-k8s-test-*` index, shared by the tests of this module."""
    name = f"{TEST_INDEX_PREFIX}demo-{uuid.uuid4().hex[:12]}"
    es_client.indices.create(index=name)
    try:
        indexed, errors = bulk(
            es_client, ({"_index": name, "_source": d} for d in demo_logs.documents), chunk_size=5000
        )
        assert (indexed, errors) == (len(demo_logs.documents), [])
        es_client.indices.refresh(index=name)
        yield name
    finally:
        es_client.indices.delete(index=name, ignore_unavailable=True)


def cleared() -> Env:
    return dict.fromkeys(_CLEARED)


def embedded_env(tmp: Path, log_file: Path) -> Env:
    return {
        **cleared(),
        "DATABASE_URL": f"sqlite:///{tmp / 'state.db'}",
        "LOG_FILE": str(log_file),
        "REGISTRY_DIR": str(tmp / "registry"),
        "EXPORT_DIR": str(tmp / "exports"),
        "BASELINE_DAYS": "3",
        "LOG_FORMAT": "json",
    }


def production_env(tmp: Path, es_url: str, index: str, app_url: str) -> Env:
    return {
        **cleared(),
        "DATABASE_URL": app_url,
        "ES_URL": es_url,
        "ES_INDEX_PATTERN": index,
        "REGISTRY_DIR": str(tmp / "registry"),
        "EXPORT_DIR": str(tmp / "exports"),
        "BASELINE_DAYS": "3",
        "LOG_FORMAT": "json",
    }


def invoke(command: Any, args: list[str], env: Env) -> Result:
    return CliRunner().invoke(command, args, env=env)


def migrate(ddl_url: str) -> None:
    result = invoke(main, ["migrate"], {**cleared(), "DATABASE_URL": ddl_url, "LOG_FORMAT": "json"})
    assert result.exit_code == 0, result.output


def backfill(env: Env, output: Path) -> Result:
    return invoke(backfill_command, ["--days", "1", "--output", str(output), "--now", NOW], env)


def findings(report_dir: Path) -> dict[str, Any]:
    """The report JSON without what only describes the run (when, how long, run figures)."""
    (path,) = report_dir.glob("problem_report_*.json")
    return {k: v for k, v in json.loads(path.read_text()).items() if k not in _RUN_KEYS}


def snapshot(url: str) -> dict[str, list[dict[str, Any]]]:
    with Store.from_url(url, migrate=False) as store:
        return store.snapshot()


def _as_text(rows: list[Any]) -> Counter[str]:
    return Counter(json.dumps(row, sort_keys=True, default=str) for row in rows)


def assert_same(embedded: dict[str, Any], production: dict[str, Any]) -> None:
    """Equal, or a failure that names the table/key and shows one differing row, not a wall of rows."""
    assert embedded.keys() == production.keys()
    for key in embedded:
        left, right = embedded[key], production[key]
        if left == right:
            continue
        if isinstance(left, list) and isinstance(right, list):
            only_embedded = _as_text(left) - _as_text(right)
            only_production = _as_text(right) - _as_text(left)
            pytest.fail(
                f"{key}: {len(left)} embedded vs {len(right)} production rows; "
                f"{only_embedded.total()} only embedded, e.g. {next(iter(only_embedded), None)}; "
                f"{only_production.total()} only production, e.g. {next(iter(only_production), None)}"
                + ("" if only_embedded or only_production else "; same rows, other order")
            )
        pytest.fail(f"{key} differs: {left!r} embedded vs {right!r} production")


def explicitly_not_error(documents: list[dict[str, Any]], start: datetime, end: datetime) -> int:
    """Documents in [start, end) whose level field says they are not errors: the Elasticsearch query
    leaves them out, the file source reads them and normalize skips them."""
    count = 0
    for doc in documents:
        stamp = doc.get("@timestamp") or doc.get("time")
        log = doc.get("log")
        level = (
            doc.get("level") or doc.get("log.level") or (log.get("level") if isinstance(log, dict) else None)
        )
        if stamp and level and level.lower() not in ERROR_LEVELS:
            count += start <= datetime.fromisoformat(stamp) < end
    return count


def events(source: Any, start: datetime, end: datetime) -> Counter[str]:
    """The normalized events of a source, without the Elasticsearch document id the file lacks."""
    stats = InputStats()
    return Counter(repr(replace(e, doc_id=None)) for e in normalize(source.fetch(start, end, stats), stats))


# --- 1. backfill: Elasticsearch + PostgreSQL find exactly what NDJSON + SQLite find ----------------


def test_elasticsearch_source_yields_the_events_the_file_source_yields(
    es_client: Elasticsearch, demo_index: str, demo_logs: DemoLogs
) -> None:
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    from_file = events(NdjsonSource(demo_logs.path), start, start + ONE_DAY)
    from_elasticsearch = events(
        ElasticsearchSource(es_client, demo_index, page_size=1000), start, start + ONE_DAY
    )
    missing, extra = from_file - from_elasticsearch, from_elasticsearch - from_file
    assert not missing, f"{missing.total()} events not fetched from Elasticsearch, e.g. {next(iter(missing))}"
    assert not extra, f"{extra.total()} events only in Elasticsearch, e.g. {next(iter(extra))}"


@pytest.fixture(scope="module")
def embedded_backfill(demo_logs: DemoLogs, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("embedded")
    env = embedded_env(tmp, demo_logs.path)
    result = backfill(env, tmp / "reports")
    assert result.exit_code == 0, result.output
    return tmp, str(env["DATABASE_URL"])


def test_backfill_from_elasticsearch_into_postgresql_equals_the_embedded_path(
    es_url: str,
    demo_index: str,
    demo_logs: DemoLogs,
    postgres_urls: PostgresUrls,
    embedded_backfill: tuple[Path, str],
    tmp_path: Path,
) -> None:
    migrate(postgres_urls.ddl_url)
    env = production_env(tmp_path, es_url, demo_index, postgres_urls.app_url)
    result = backfill(env, tmp_path / "reports")
    assert result.exit_code == 0, result.output
    assert f"Elasticsearch {es_url}" in result.output

    embedded_tmp, embedded_url = embedded_backfill
    production = snapshot(postgres_urls.app_url)
    assert len(production["windows"]) == 4 * 96  # three baseline days and the incident day
    assert_same(snapshot(embedded_url), production)

    embedded_report, production_report = findings(embedded_tmp / "reports"), findings(tmp_path / "reports")
    assert production_report["problems"] and production_report["chains"]
    embedded_stats, production_stats = embedded_report.pop("stats"), production_report.pop("stats")
    assert_same(embedded_report, production_report)
    # The input figures differ by design: the level query leaves explicitly non-error documents in
    # Elasticsearch, where the file source reads them and normalize counts them as skipped.
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    not_error = explicitly_not_error(demo_logs.documents, start, start + ONE_DAY)
    assert not_error > 0
    assert production_stats["accepted"] == embedded_stats["accepted"]
    assert embedded_stats["fetched"] - production_stats["fetched"] == not_error
    assert (
        embedded_stats["skipped"]["not_error_level"] - production_stats["skipped"].get("not_error_level", 0)
        == not_error
    )


# --- 2. regular_phase around the planted database outage ------------------------------------------


def regular_runs(env: Env, outage_start: datetime) -> list[Result]:
    """The outage's first windows, then an hour of catch-up an hour later."""
    first = outage_start + timedelta(minutes=20)
    return [
        invoke(regular_phase_command, ["--window", "60", "--now", f"{first:%Y-%m-%dT%H:%M:%S}"], env),
        invoke(regular_phase_command, ["--now", f"{first + timedelta(hours=1):%Y-%m-%dT%H:%M:%S}"], env),
    ]


def alerts(export_dir: Path) -> dict[str, Any]:
    return {p.name: json.loads(p.read_text()) for p in sorted(export_dir.glob("publish/teams_alert_*.json"))}


def test_regular_phase_from_elasticsearch_into_postgresql_equals_the_embedded_path(
    es_url: str, demo_index: str, demo_logs: DemoLogs, postgres_urls: PostgresUrls, tmp_path: Path
) -> None:
    outage = demo_logs.manifest.incident("db_outage").start
    embedded = embedded_env(tmp_path / "embedded", demo_logs.path)
    migrate(postgres_urls.ddl_url)
    production = production_env(tmp_path / "production", es_url, demo_index, postgres_urls.app_url)
    for env in (embedded, production):
        for result in regular_runs(env, outage):
            assert result.exit_code == 0, result.output

    production_state = snapshot(postgres_urls.app_url)
    assert len(production_state["windows"]) == 4 + 4  # 60 minutes looked back, then one hour caught up
    assert_same(snapshot(str(embedded["DATABASE_URL"])), production_state)
    production_alerts = alerts(tmp_path / "production" / "exports")
    assert production_alerts, "the outage raised no alert"
    assert "DATABASE" in json.dumps(production_alerts)
    assert alerts(tmp_path / "embedded" / "exports") == production_alerts


# --- 3. Elasticsearch lost in the middle of a run -------------------------------------------------


def test_elasticsearch_lost_mid_run_fails_the_day_cleanly_and_the_next_run_completes_it(
    es_url: str,
    demo_index: str,
    postgres_databases: FreshDatabase,
    tmp_path: Path,
) -> None:
    disturbed, undisturbed = postgres_databases(), postgres_databases()
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    settings = {"BASELINE_DAYS": "0", "ES_PAGE_SIZE": "500", "ES_SLICES": "2"}
    with FaultyProxy(es_url).running() as proxy:
        migrate(disturbed.ddl_url)
        env = {**production_env(tmp_path / "d", proxy.url, demo_index, disturbed.app_url), **settings}
        proxy.fail_after(4)  # the point-in-time and three pages of the day's ~21, then the node is gone
        failed = backfill(env, tmp_path / "d" / "reports")

        assert failed.exit_code == 1, failed.output
        assert (proxy.forwarded, proxy.dropped > 0) == (4, True)
        assert "Elasticsearch" in failed.output and f"failed: {DAY.isoformat()}" in failed.output
        with Store.from_url(disturbed.app_url) as store:
            assert store.processed_windows(start, start + ONE_DAY) == set()
            assert all(rows == [] for rows in store.snapshot().values()), "something was half-written"
            (run,) = store.recent_runs(phase="backfill")
            assert run.status == "failed" and "Elasticsearch" in (run.error or "")

        proxy.heal()
        again = backfill(env, tmp_path / "d" / "reports-again")
        assert again.exit_code == 0, again.output

    migrate(undisturbed.ddl_url)
    env = {**production_env(tmp_path / "u", es_url, demo_index, undisturbed.app_url), **settings}
    assert backfill(env, tmp_path / "u" / "reports").exit_code == 0
    recovered = snapshot(disturbed.app_url)
    assert len(recovered["windows"]) == 96
    assert_same(snapshot(undisturbed.app_url), recovered)


# --- 4. PostgreSQL unreachable --------------------------------------------------------------------


def closed_port() -> int:
    """A port nothing listens on: bound once by us, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "command, args",
    [(backfill_command, ["--days", "1", "--now", NOW]), (regular_phase_command, ["--now", NOW])],
    ids=["backfill", "regular_phase"],
)
def test_an_unreachable_postgresql_is_a_clear_error_naming_the_host_never_the_password(
    command: Any, args: list[str], demo_logs: DemoLogs, tmp_path: Path
) -> None:
    port = closed_port()
    password = "not-the-real-password-4111"
    env = {
        **embedded_env(tmp_path, demo_logs.path),
        "DATABASE_URL": None,
        "DB_HOST": "127.0.0.1",
        "DB_PORT": str(port),
        "DB_NAME": "ailog_analyzer",
        "DB_USER": "ailog_analyzer_user",
        "DB_PASSWORD": password,
    }
    result = invoke(command, args, env)
    assert result.exit_code == 1, result.output
    assert f"database unavailable at 127.0.0.1:{port}/ailog_analyzer" in result.output
    assert password not in result.output
    assert not (tmp_path / "registry").exists()


# --- 5. schema by the DDL user, the job by the DML-only application user ---------------------------


def test_migrate_runs_as_the_ddl_user_and_the_job_needs_only_the_application_user(
    postgres_urls: PostgresUrls, demo_logs: DemoLogs, tmp_path: Path
) -> None:
    app, ddl = make_url(postgres_urls.app_url), make_url(postgres_urls.ddl_url)
    server = {"DB_HOST": app.host, "DB_PORT": str(app.port), "DB_NAME": postgres_urls.database}
    application = {"DB_USER": app.username, "DB_PASSWORD": app.password}
    ddl_user = {"DB_DDL_USER": ddl.username, "DB_DDL_PASSWORD": ddl.password, "DB_DDL_ROLE": DDL_ROLE}

    # The application user has no DDL rights: a one-line refusal naming the database, no traceback.
    refused = invoke(main, ["migrate"], {**cleared(), **server, **application})
    assert refused.exit_code == 1
    assert f"migration failed at {app.host}:{app.port}/{postgres_urls.database}" in refused.output
    assert "permission denied" in refused.output and "Traceback" not in refused.output
    assert str(app.password) not in refused.output

    migrated = invoke(main, ["migrate"], {**cleared(), **server, **application, **ddl_user})
    assert migrated.exit_code == 0, migrated.output
    assert f"{ddl.username}:***@" in migrated.output
    assert str(ddl.password) not in migrated.output and str(app.password) not in migrated.output

    app_engine = sa.create_engine(postgres_urls.app_url)
    try:
        with app_engine.connect() as conn:
            owners = set(
                conn.scalars(sa.text("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'"))
            )
        assert owners == {DDL_ROLE}
        with pytest.raises(sa.exc.ProgrammingError) as refused, app_engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE sneaky (id integer)"))
        assert isinstance(refused.value.orig, psycopg.errors.InsufficientPrivilege)
    finally:
        app_engine.dispose()

    job = {**embedded_env(tmp_path, demo_logs.path), "DATABASE_URL": None, **server, **application}
    result = backfill({**job, "BASELINE_DAYS": "0"}, tmp_path / "reports")
    assert result.exit_code == 0, result.output
    with Store.from_url(postgres_urls.app_url) as store:
        assert store.snapshot()["incidents"]
        (run,) = store.recent_runs(phase="backfill")
        assert run.status == "succeeded"


# --- 6. two backfills at once: the PostgreSQL advisory lock lets one run --------------------------


def test_a_second_backfill_process_exits_cleanly_while_the_first_holds_the_lock(
    postgres_urls: PostgresUrls, demo_logs: DemoLogs, tmp_path: Path
) -> None:
    migrate(postgres_urls.ddl_url)
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env.update(
        {k: v for k, v in embedded_env(tmp_path, demo_logs.path).items() if v is not None},
        DATABASE_URL=postgres_urls.app_url,
    )
    command = [sys.executable, str(REPO_ROOT / "scripts" / "backfill.py"), "--days", "1", "--now", NOW]
    command += ["--output", str(tmp_path / "reports")]
    first = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        with Store.from_url(postgres_urls.app_url) as store:
            deadline = time.monotonic() + 60
            # The run is recorded only while its process holds the phase lock.
            while not [r for r in store.recent_runs(phase="backfill") if r.status == "running"]:
                assert first.poll() is None, first.communicate()
                assert time.monotonic() < deadline, "the first backfill never started"
                time.sleep(0.05)
            second = subprocess.run(
                command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
            )
            assert second.returncode == 0, second.stderr
            assert "another run holds the lock" in second.stderr
            out, err = first.communicate(timeout=120)
            assert first.returncode == 0, err
            (run,) = store.recent_runs(phase="backfill")
            assert run.status == "succeeded"
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
