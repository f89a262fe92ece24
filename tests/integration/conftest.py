"""Fixtures for tests against the real PostgreSQL and Elasticsearch that scripts/services.sh starts.

A server that cannot be reached fails the test instead of skipping it: a skipped integration test
proves nothing. Each test gets its own fresh database and its own uniquely named index, and every
test here is marked `postgres` and/or `elasticsearch` by the fixtures it uses.
"""

import os
import shlex
import subprocess
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from elasticsearch import Elasticsearch
from elasticsearch import exceptions as es_exceptions
from elasticsearch.helpers import bulk
from psycopg import sql
from sqlalchemy.engine import make_url

from core.fetch import json_serializer

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES_SCRIPT = REPO_ROOT / "scripts" / "services.sh"
DATABASE_GRANTS_SQL = REPO_ROOT / "scripts" / "services" / "postgres_database_grants.sql"
START_HINT = 'run `bash scripts/services.sh start` (as root), then `eval "$(bash scripts/services.sh env)"`'
DDL_ROLE = "role_ailog_analyzer_ddl"
TEST_INDEX_PREFIX = "logs-k8s-test-"

POSTGRES_FIXTURES = {"postgres_server", "postgres_urls", "postgres_databases"}
ELASTICSEARCH_FIXTURES = {"es_version", "es_url", "es_client", "index_documents"}

ES_URL_SETTINGS = {"8": "TEST_ES_URL", "9": "TEST_ES9_URL"}
"""The Elasticsearch major versions the analyzer supports, each with its node from scripts/services.sh.
A test marked `every_elasticsearch` runs against each; any other test against the 8 node."""

IndexDocuments = Callable[[Iterable[Mapping[str, Any]]], str]


@dataclass(frozen=True)
class PostgresServer:
    """SQLAlchemy URLs of the analyzer's long-lived database `ailog_analyzer`, and of the test admin."""

    app_url: str
    ddl_url: str
    admin_url: str


@dataclass(frozen=True)
class PostgresUrls:
    """SQLAlchemy URLs of one fresh database, made for one test and dropped after it."""

    database: str
    app_url: str
    ddl_url: str


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # tryfirst, so that `-m postgres` / `-m "not elasticsearch"` already see these markers.
    here = Path(__file__).parent
    for item in items:
        if here not in item.path.parents:
            continue
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & POSTGRES_FIXTURES:
            item.add_marker(pytest.mark.postgres)
        if fixtures & ELASTICSEARCH_FIXTURES:
            item.add_marker(pytest.mark.elasticsearch)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marked = metafunc.definition.get_closest_marker("every_elasticsearch")
    if marked and "es_version" in metafunc.fixturenames:
        versions = list(ES_URL_SETTINGS)
        ids = [f"es{version}" for version in versions]
        metafunc.parametrize("es_version", versions, indirect=True, scope="session", ids=ids)


def _service_settings() -> dict[str, str]:
    """The TEST_* settings: from the environment, else the defaults that services.sh prints."""
    printed = subprocess.run(
        ["bash", str(SERVICES_SCRIPT), "env"], check=True, capture_output=True, text=True
    ).stdout
    settings = {}
    for line in printed.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        settings[name] = shlex.split(value)[0]
    return {name: os.environ.get(name, default) for name, default in settings.items()}


def libpq_url(sqlalchemy_url: str, database: str | None = None) -> str:
    """The plain libpq form psycopg takes, optionally pointing at another database."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def _with_database(sqlalchemy_url: str, database: str) -> str:
    return make_url(sqlalchemy_url).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def service_settings() -> dict[str, str]:
    return _service_settings()


@pytest.fixture(scope="session")
def postgres_server(service_settings: dict[str, str]) -> PostgresServer:
    server = PostgresServer(
        app_url=service_settings["TEST_DATABASE_URL"],
        ddl_url=service_settings["TEST_DATABASE_DDL_URL"],
        admin_url=service_settings["TEST_DATABASE_ADMIN_URL"],
    )
    try:
        with psycopg.connect(libpq_url(server.admin_url), connect_timeout=5):
            pass
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL is not reachable ({error}); {START_HINT}", pytrace=False)
    return server


FreshDatabase = Callable[[], PostgresUrls]


@pytest.fixture
def postgres_databases(postgres_server: PostgresServer) -> Iterator[FreshDatabase]:
    """Makes fresh databases on demand (for tests that compare two runs); all dropped after the test."""
    created: list[str] = []

    def fresh() -> PostgresUrls:
        database = f"ailog_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(libpq_url(postgres_server.admin_url), autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(DDL_ROLE)
                )
            )
        created.append(database)
        with psycopg.connect(libpq_url(postgres_server.admin_url, database), autocommit=True) as admin:
            admin.execute(DATABASE_GRANTS_SQL.read_text())
        return PostgresUrls(
            database=database,
            app_url=_with_database(postgres_server.app_url, database),
            ddl_url=_with_database(postgres_server.ddl_url, database),
        )

    try:
        yield fresh
    finally:
        # FORCE, because a test may leave a pooled connection open; dropping must not depend on it.
        with psycopg.connect(libpq_url(postgres_server.admin_url), autocommit=True) as admin:
            for database in created:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
                )


@pytest.fixture
def postgres_urls(postgres_databases: FreshDatabase) -> PostgresUrls:
    """A fresh database owned by the DDL role, with the same privileges as `ailog_analyzer`."""
    return postgres_databases()


@pytest.fixture(scope="session")
def es_version(request: pytest.FixtureRequest) -> str:
    """The major version of the node the test runs against."""
    return getattr(request, "param", "8")


@pytest.fixture(scope="session")
def es_url(service_settings: dict[str, str], es_version: str) -> str:
    url = service_settings[ES_URL_SETTINGS[es_version]]
    try:
        # Not info(): the integ-test-zip distribution has no `GET /` (the rest-root module is missing).
        with Elasticsearch(url, request_timeout=5) as probe:
            probe.cluster.health()
            nodes = probe.nodes.info(node_id="_local")["nodes"].values()
    except (es_exceptions.ConnectionError, es_exceptions.ApiError) as error:
        pytest.fail(
            f"Elasticsearch {es_version} is not reachable at {url} ({error}); {START_HINT}", pytrace=False
        )
    versions = [node["version"] for node in nodes]
    if [v.split(".")[0] for v in versions] != [es_version]:
        pytest.fail(f"the Elasticsearch {es_version} node at {url} runs {versions}", pytrace=False)
    return url


@pytest.fixture(scope="session")
def es_client(es_url: str) -> Iterator[Elasticsearch]:
    # The product's serializer (`client_options`): the source's pages are read as a run reads them.
    with Elasticsearch(es_url, request_timeout=30, serializer=json_serializer()) as client:
        yield client


@pytest.fixture
def index_documents(es_client: Elasticsearch) -> Iterator[IndexDocuments]:
    """Index documents into a fresh `logs-k8s-test-*` index (so the logs-k8s template applies).

    Returns the index name once the documents are searchable; the indices are deleted after the test.
    """
    created: list[str] = []

    def index(documents: Iterable[Mapping[str, Any]]) -> str:
        name = f"{TEST_INDEX_PREFIX}{uuid.uuid4().hex[:12]}"
        es_client.indices.create(index=name)
        created.append(name)
        bulk(es_client, ({"_index": name, "_source": document} for document in documents))
        es_client.indices.refresh(index=name)
        return name

    yield index
    for name in created:
        es_client.indices.delete(index=name, ignore_unavailable=True)
