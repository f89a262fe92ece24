"""Elasticsearch and PostgreSQL failing under a run: refused connections, a connection dropped in
the middle of paging or of a transaction, a point-in-time that expired, a server that stops
answering. Each run ends with a clear message and exit 1 and leaves nothing half-written; the next
run completes the work and equals an undisturbed run. Needs the real servers."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from elasticsearch import Elasticsearch
from sqlalchemy.engine import make_url

from core.fetch import ElasticsearchSource, SourceUnavailable
from core.model import InputStats

from .conftest import BACKFILL_NOW, DAY, FIGURES, Databases, libpq_url
from .harness import (
    Hold,
    Place,
    State,
    cutting_proxy,
    differences,
    run_cli,
    sqlite_place,
    start_cli,
    wait_for,
)

pytestmark = [pytest.mark.elasticsearch]
# No look for rollouts after the analysis (CHANGE_WINDOW_MINUTES=0): the requests counted and cut here
# are the paging of the day's documents (that a failing look costs only its sentence is tested in
# tests/integration/test_change_elasticsearch.py).
SETTINGS = {
    "BASELINE_DAYS": "0",
    "ES_PAGE_SIZE": "100",
    "ES_SLICES": "1",
    "ES_TIMEOUT_S": "1",
    "CHANGE_WINDOW_MINUTES": "0",
}


def backfill_args(place: Place) -> list[str]:
    return ["backfill", "--days", "1", "--output", str(place.reports), "--now", BACKFILL_NOW]


def es_source(es_url: str, index: str) -> dict[str, str]:
    return {"ES_URL": es_url, "ES_INDEX_PATTERN": index}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host_port(url: str, default: int) -> tuple[str, int]:
    parsed = make_url(url) if "://" in url and not url.startswith("http") else None
    if parsed is not None:
        return str(parsed.host), int(parsed.port or default)
    host, _, port = url.split("://", 1)[1].rstrip("/").partition(":")
    return host, int(port or default)


@pytest.fixture(scope="module")
def reference(es_url: str, demo_index: str, tmp_path_factory: pytest.TempPathFactory) -> State:
    """An undisturbed backfill of the incident day from Elasticsearch into SQLite."""
    place = sqlite_place(tmp_path_factory.mktemp("fault-reference"))
    done = run_cli(backfill_args(place), place.env(es_source(es_url, demo_index), **SETTINGS), place.work)
    assert done.exit_code == 0, done.output
    return place.state()


def assert_failed_cleanly(output: str, exit_code: int | None, *expected: str) -> None:
    FIGURES["faults injected"] += 1
    assert exit_code == 1, output
    assert "Traceback" not in output, output
    for text in expected:
        assert text in output, output


def assert_nothing_half_written(place: Place) -> None:
    state = place.state()
    assert state.database["incidents"] == [] and state.database["windows"] == []


def assert_next_run_completes(place: Place, source: Mapping[str, str], reference: State) -> None:
    again = run_cli(backfill_args(place), place.env(source, **SETTINGS), place.work)
    assert again.exit_code == 0, again.output
    assert differences(reference, place.state()) == []
    FIGURES["runs recovered"] += 1


# --- Elasticsearch ------------------------------------------------------------------------------


def test_elasticsearch_refusing_connections_is_a_clear_failure(
    es_url: str, demo_index: str, reference: State, tmp_path: Path
) -> None:
    place = sqlite_place(tmp_path)
    refused = {"ES_URL": f"http://127.0.0.1:{closed_port()}", "ES_INDEX_PATTERN": demo_index}
    failed = run_cli(backfill_args(place), place.env(refused, **SETTINGS), place.work)
    assert_failed_cleanly(failed.output, failed.exit_code, "unreachable (connection refused)")
    assert_nothing_half_written(place)
    assert_next_run_completes(place, es_source(es_url, demo_index), reference)


@pytest.fixture(scope="module")
def requests(es_url: str, demo_index: str, tmp_path_factory: pytest.TempPathFactory) -> int:
    """How many requests an undisturbed backfill sends to Elasticsearch."""
    with cutting_proxy(host_port(es_url, 9200)) as proxy:
        place = sqlite_place(tmp_path_factory.mktemp("count"))
        source = {"ES_URL": f"http://127.0.0.1:{proxy.port}", "ES_INDEX_PATTERN": demo_index}
        assert run_cli(backfill_args(place), place.env(source, **SETTINGS), place.work).exit_code == 0
        return proxy.chunks


@pytest.mark.parametrize("stall", [False, True], ids=["connection dropped", "server stops answering"])
def test_elasticsearch_failing_in_the_middle_of_paging_loses_nothing(
    stall: bool, es_url: str, demo_index: str, reference: State, requests: int, tmp_path: Path
) -> None:
    place = sqlite_place(tmp_path / "run")
    with cutting_proxy(host_port(es_url, 9200), cut_after=requests // 2, stall=stall) as proxy:
        source = {"ES_URL": f"http://127.0.0.1:{proxy.port}", "ES_INDEX_PATTERN": demo_index}
        failed = run_cli(backfill_args(place), place.env(source, **SETTINGS), place.work)
    assert_failed_cleanly(failed.output, failed.exit_code, "Elasticsearch", DAY.isoformat())
    # The node stopped answering mid-run: the day's report says so on its first line, not "No problems".
    first_line = sorted(place.reports.glob("problem_report_*.txt"))[-1].read_text().splitlines()[0]
    assert first_line.startswith(f"Analysis FAILED for {DAY.isoformat()}: Elasticsearch"), first_line
    assert_nothing_half_written(place)
    assert_next_run_completes(place, es_source(es_url, demo_index), reference)


def expire_point_in_time_after_first_page() -> None:
    """In the child: the second page of every search finds its point-in-time gone."""
    original = Elasticsearch.search
    searches = {"n": 0}

    def search(self: Elasticsearch, **kwargs: object) -> object:
        searches["n"] += 1
        if searches["n"] == 2:
            self.close_point_in_time(id=kwargs["pit"]["id"])  # type: ignore[index]
        return original(self, **kwargs)

    Elasticsearch.search = search  # type: ignore[method-assign]


def test_an_expired_point_in_time_is_a_clear_failure_and_loses_nothing(
    es_url: str, demo_index: str, reference: State, tmp_path: Path
) -> None:
    place = sqlite_place(tmp_path)
    source = es_source(es_url, demo_index)
    failed = run_cli(
        backfill_args(place),
        place.env(source, **SETTINGS),
        place.work,
        prepare=expire_point_in_time_after_first_page,
    )
    assert_failed_cleanly(failed.output, failed.exit_code, "Elasticsearch", "failed while reading")
    assert_nothing_half_written(place)
    assert_next_run_completes(place, source, reference)


def test_the_source_reports_an_expired_point_in_time_by_name(
    es_client: Elasticsearch, demo_index: str
) -> None:
    source = ElasticsearchSource(es_client, demo_index, page_size=100, slices=1, keep_alive="1m")
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    docs = source.fetch(start, start.replace(day=DAY.day + 1), InputStats())
    next(docs)
    es_client.close_point_in_time(id=docs.gi_frame.f_locals["pit"])  # as if keep_alive had passed
    with pytest.raises(
        SourceUnavailable, match="failed while reading.*(search_context_missing|No search context)"
    ):
        list(docs)


# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgresql_refusing_connections_is_a_clear_failure(
    es_url: str, demo_index: str, databases: Databases, tmp_path: Path
) -> None:
    url = make_url(databases.new()).set(port=closed_port()).render_as_string(hide_password=False)
    place = Place(tmp_path, url)
    failed = run_cli(backfill_args(place), place.env(es_source(es_url, demo_index), **SETTINGS), place.work)
    assert_failed_cleanly(failed.output, failed.exit_code, "database unavailable at 127.0.0.1")
    assert "local-test-only" not in failed.output  # the password is never printed
    assert not place.registry.exists() and not place.reports.exists()


@pytest.mark.postgres
def test_postgresql_dropped_in_the_middle_of_a_transaction_loses_nothing(
    es_url: str, demo_index: str, reference: State, databases: Databases, tmp_path: Path
) -> None:
    place = Place(tmp_path, databases.new())
    source = es_source(es_url, demo_index)
    database = make_url(place.database_url).database
    # Paused inside replace_range: incidents and peaks deleted, the transaction open.
    gate = tmp_path / "gate"
    child = start_cli(
        backfill_args(place),
        place.env(source, **SETTINGS),
        place.work,
        hold=Hold("sql", 1, gate, sql="DELETE FROM windows"),
    )
    wait_for(gate.with_name("gate.paused"))
    with psycopg.connect(libpq_url(databases.server.admin_url), autocommit=True) as admin:
        terminated = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()
    gate.touch()
    failed = child.wait()
    assert terminated and terminated[0] >= 1
    assert_failed_cleanly(failed.output, failed.exit_code, DAY.isoformat(), "database unavailable")
    assert_nothing_half_written(place)
    assert_next_run_completes(place, source, reference)
