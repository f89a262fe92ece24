"""Fixtures of the reliability tests: small demo logs, the environments of both paths, and the
figures (kill points tried, faults injected, runs recovered, records lost) printed after the run.

The real-server fixtures are those of `tests/integration` (fresh PostgreSQL database and
Elasticsearch index per test); a test that uses them is marked `postgres` / `elasticsearch`.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk
from integration.conftest import (  # noqa: F401  (fixtures shared with the integration tests)
    DATABASE_GRANTS_SQL,
    DDL_ROLE,
    TEST_INDEX_PREFIX,
    IndexDocuments,
    PostgresServer,
    es_client,
    es_url,
    es_version,
    index_documents,
    libpq_url,
    postgres_server,
    service_settings,
)
from psycopg import sql
from sqlalchemy.engine import make_url

from core import demo
from core.store import Store

DAY = date(2026, 2, 9)  # the demo's incident day
BACKFILL_NOW = "2026-02-10T09:15:00"  # the morning after
FIGURES: Counter[str] = Counter()
"""Counted by the tests, printed at the end: kill_points, faults, recovered, records_lost."""


@dataclass(frozen=True)
class DemoLogs:
    path: Path
    documents: list[dict[str, Any]]


@pytest.fixture(scope="session")
def demo_logs(tmp_path_factory: pytest.TempPathFactory) -> DemoLogs:
    """Three small demo days ending on the incident day (a few thousand documents)."""
    path = tmp_path_factory.mktemp("demo") / "logs.ndjson"
    demo.generate(path, DAY, days=3, seed=7, scale=0.05)
    with path.open(encoding="utf-8") as lines:
        documents = [json.loads(line) for line in lines if line.strip()]
    return DemoLogs(path, documents)


@pytest.fixture(scope="session")
def demo_index(es_client: Elasticsearch, demo_logs: DemoLogs) -> Iterator[str]:  # noqa: F811
    """The demo days in one `logs-k8s-test-*` index shared by the tests that only read it."""
    name = f"{TEST_INDEX_PREFIX}reliability-{uuid.uuid4().hex[:8]}"
    es_client.indices.create(index=name)
    try:
        indexed, errors = bulk(es_client, ({"_index": name, "_source": d} for d in demo_logs.documents))
        assert (indexed, errors) == (len(demo_logs.documents), [])
        es_client.indices.refresh(index=name)
        yield name
    finally:
        es_client.indices.delete(index=name, ignore_unavailable=True)


class Databases:
    """Fresh, migrated PostgreSQL databases on demand (one per kill point), dropped at the end."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.created: list[str] = []

    def new(self) -> str:
        """A fresh database with the schema; returns the application user's URL."""
        database = f"ailog_rel_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(libpq_url(self.server.admin_url), autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(DDL_ROLE)
                )
            )
        self.created.append(database)
        with psycopg.connect(libpq_url(self.server.admin_url, database), autocommit=True) as admin:
            admin.execute(DATABASE_GRANTS_SQL.read_text())
        ddl_url = make_url(self.server.ddl_url).set(database=database).render_as_string(hide_password=False)
        with Store.from_url(ddl_url, migrate=True):
            pass
        return make_url(self.server.app_url).set(database=database).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with psycopg.connect(libpq_url(self.server.admin_url), autocommit=True) as admin:
            for database in self.created:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
                )


@pytest.fixture
def databases(postgres_server: PostgresServer) -> Iterator[Databases]:  # noqa: F811
    made = Databases(postgres_server)
    try:
        yield made
    finally:
        made.drop_all()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.write_sep("-", "reliability figures")
        for name, value in sorted(FIGURES.items()):
            terminalreporter.write_line(f"{name}: {value}")
