"""Analysis in worker processes on the Elasticsearch path (needs Elasticsearch): the slices of one
point-in-time hold every document once, a backfill with ANALYSIS_WORKERS=2 equals one with a single
process, and a node lost mid-run fails the day with the same clear error."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk

from core import demo
from core.cli import backfill_command
from core.fetch import ElasticsearchSource
from core.model import InputStats
from core.store import Store

from .conftest import TEST_INDEX_PREFIX
from .faulty_proxy import FaultyProxy

pytestmark = pytest.mark.every_elasticsearch  # the 8 and the 9 node

DAY = date(2026, 2, 9)
START = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
END = START + timedelta(days=1)
NOW = "2026-02-10T09:15:00"
# Settings a developer's shell may carry; each run states its own.
_CLEARED = ("DATABASE_URL", "DB_HOST", "ES_HOST", "ES_PAGE_SIZE", "ES_SLICES", "LOG_FILE", "TEAMS_ENABLED")


@pytest.fixture(scope="module")
def demo_index(es_client: Elasticsearch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Two demo days (the incident day and its baseline day) in one fresh `logs-k8s-test-*` index."""
    path = tmp_path_factory.mktemp("demo") / "logs.ndjson"
    demo.generate(path, DAY, days=2, seed=7, scale=0.1)
    with path.open(encoding="utf-8") as lines:
        documents = [json.loads(line) for line in lines if line.strip()]
    name = f"{TEST_INDEX_PREFIX}parallel-{uuid.uuid4().hex[:12]}"
    es_client.indices.create(index=name)
    try:
        indexed, errors = bulk(
            es_client, ({"_index": name, "_source": d} for d in documents), chunk_size=5000
        )
        assert (indexed, errors) == (len(documents), [])
        es_client.indices.refresh(index=name)
        yield name
    finally:
        es_client.indices.delete(index=name, ignore_unavailable=True)


def test_the_slices_of_one_point_in_time_hold_every_document_once(
    es_url: str, es_client: Elasticsearch, demo_index: str
) -> None:
    source = ElasticsearchSource(
        es_client, demo_index, page_size=500, connect=lambda: Elasticsearch(es_url, request_timeout=30)
    )
    whole_stats, parts_stats = InputStats(), InputStats()
    whole = Counter(hit["_id"] for hit in source.fetch(START, END, whole_stats))
    with source.split(START, END, 3) as parts:
        per_part = [Counter(hit["_id"] for hit in read(parts_stats)) for read in parts]
    assert len(whole) > 1000 and whole.total() == len(whole)
    assert all(per_part), "a slice was empty"
    assert sum(per_part, Counter()) == whole
    assert parts_stats.fetched == whole_stats.fetched


def backfill(es_url: str, index: str, tmp: Path, workers: int, **settings: str) -> Result:
    env: dict[str, str | None] = {
        **dict.fromkeys(_CLEARED),
        "DATABASE_URL": f"sqlite:///{tmp / 'state.db'}",
        "ES_URL": es_url,
        "ES_INDEX_PATTERN": index,
        "REGISTRY_DIR": str(tmp / "registry"),
        "EXPORT_DIR": str(tmp / "exports"),
        "BASELINE_DAYS": "1",
        "LOG_FORMAT": "json",
        "ANALYSIS_WORKERS": str(workers),
        **settings,
    }
    args = ["--days", "1", "--output", str(tmp / "reports"), "--now", NOW]
    return CliRunner().invoke(backfill_command, args, env=env)


def outcome(tmp: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stored state and the report's findings (without when and how long the run took)."""
    with Store.from_url(f"sqlite:///{tmp / 'state.db'}") as store:
        state = store.snapshot()
    (path,) = (tmp / "reports").glob("problem_report_*.json")
    report = {k: v for k, v in json.loads(path.read_text()).items() if k not in {"generated_at", "run"}}
    return state, report


def test_a_backfill_from_elasticsearch_with_two_workers_equals_one_with_one(
    es_url: str, demo_index: str, tmp_path: Path
) -> None:
    for workers in (1, 2):
        result = backfill(es_url, demo_index, tmp_path / str(workers), workers)
        assert result.exit_code == 0, result.output
        assert "run started" in result.output  # the log lines are in the output …
        assert "analysing in one process" not in result.output  # … and the workers did the work
    one_state, one_report = outcome(tmp_path / "1")
    two_state, two_report = outcome(tmp_path / "2")
    assert len(one_state["windows"]) == 2 * 96 and one_state["incidents"]
    assert two_state == one_state
    # A problem's templates are listed in the order they arrived in, and the slices deliver the
    # documents in another order than one reader does: compared as sets, the rest exactly.
    assert one_report["problems"]
    assert templates_as_sets(two_report) == templates_as_sets(one_report)


def templates_as_sets(report: dict[str, Any]) -> dict[str, Any]:
    problems = [{**p, "templates": sorted(p["templates"])} for p in report["problems"]]
    return {**report, "problems": problems}


def test_a_node_lost_while_workers_read_fails_the_day_with_the_clear_error(
    es_url: str, demo_index: str, tmp_path: Path
) -> None:
    with FaultyProxy(es_url).running() as proxy:
        settings = {"BASELINE_DAYS": "0", "ES_PAGE_SIZE": "100"}
        proxy.fail_after(5)  # the count and the search, each after its _field_caps, and a page: then gone
        failed = backfill(proxy.url, demo_index, tmp_path, 2, **settings)
        assert failed.exit_code == 1, failed.output
        assert proxy.dropped > 0
        assert f"failed: {DAY.isoformat()}" in failed.output
        assert f"Elasticsearch {proxy.url} failed while reading" in failed.output
        with Store.from_url(f"sqlite:///{tmp_path / 'state.db'}") as store:
            assert store.processed_windows(START, END) == set()
            assert store.snapshot()["incidents"] == []
