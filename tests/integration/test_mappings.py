"""The Elasticsearch source reads one index pattern whose indices map the same fields as different
types (needs Elasticsearch): `level` a long (pino through Fluent Bit's dynamic mapping: 50 is an
error), text, and keyword (words, and pino's numbers as text); `timestamp` an epoch-millis long
(Vector, `timestamp_format = "unix_ms"`). The right documents are fetched and counted, and no shard
fails."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk

from core import layout
from core.fetch import ElasticsearchSource, SourceUnavailable
from core.layout import LevelField
from core.model import InputStats

pytestmark = pytest.mark.every_elasticsearch  # the 8 and the 9 node

START = datetime(2026, 2, 9, 8, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
INSIDE = START + timedelta(minutes=20)


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def millis(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def pod(name: str) -> dict:
    return {"kubernetes": {"namespace_name": "payments", "pod_name": f"{name}-0"}}


# index → (its mapping, {document id: (document, fetched?, in the range?)})
INDICES = {
    "pino": (
        {"level": {"type": "long"}, "@timestamp": {"type": "date"}},
        {
            "pino-error": (
                {"@timestamp": iso(INSIDE), "level": 50, "msg": "request failed"} | pod("a"),
                1,
                1,
            ),
            "pino-fatal": ({"@timestamp": iso(INSIDE), "level": 60, "msg": "exiting"} | pod("a"), 1, 1),
            "pino-info": ({"@timestamp": iso(INSIDE), "level": 30, "msg": "request done"} | pod("a"), 0, 1),
            "pino-late": ({"@timestamp": iso(END), "level": 50, "msg": "request failed"} | pod("a"), 0, 0),
        },
    ),
    "vector": (
        {"timestamp": {"type": "long"}, "message": {"type": "text"}},
        {
            "vector-raw": ({"timestamp": millis(START), "message": "ERROR ledger down"} | pod("b"), 1, 1),
            "vector-early": (
                {"timestamp": millis(START) - 1, "message": "ERROR ledger down"} | pod("b"),
                0,
                0,
            ),
            "vector-at-end": ({"timestamp": millis(END), "message": "ERROR ledger down"} | pod("b"), 0, 0),
        },
    ),
    "text": (
        {"level": {"type": "text"}, "@timestamp": {"type": "date"}},
        {
            "text-error": ({"@timestamp": iso(INSIDE), "level": "ERROR", "log": "db down"} | pod("c"), 1, 1),
            "text-warn": ({"@timestamp": iso(INSIDE), "level": "Warning", "log": "slow"} | pod("c"), 0, 1),
        },
    ),
    "keyword": (
        {"level": {"type": "keyword"}, "@timestamp": {"type": "date"}},
        {
            "keyword-error": ({"@timestamp": iso(INSIDE), "level": "Error", "log": "x"} | pod("d"), 1, 1),
            "keyword-info": ({"@timestamp": iso(INSIDE), "level": "info", "log": "y"} | pod("d"), 0, 1),
            # pino's numbers indexed as keywords (a template that maps `level` as keyword)
            "keyword-60": ({"@timestamp": iso(INSIDE), "level": 60, "msg": "exiting"} | pod("d"), 1, 1),
            "keyword-100": ({"@timestamp": iso(INSIDE), "level": 100, "msg": "custom"} | pod("d"), 1, 1),
            "keyword-30": ({"@timestamp": iso(INSIDE), "level": 30, "msg": "request done"} | pod("d"), 0, 1),
        },
    ),
}


@pytest.fixture
def pattern(es_client: Elasticsearch) -> Iterator[str]:
    """The indices of `INDICES`, each with its own mapping (outside the logs-k8s template), as one pattern."""
    prefix = f"mappings-test-{uuid.uuid4().hex[:8]}-"
    for name, (properties, _) in INDICES.items():
        es_client.indices.create(index=prefix + name, mappings={"properties": properties})
    actions = [
        {"_index": prefix + name, "_id": doc_id, "_source": document}
        for name, (_, documents) in INDICES.items()
        for doc_id, (document, _, _) in documents.items()
    ]
    bulk(es_client, actions, refresh=True)
    yield prefix + "*"
    es_client.indices.delete(index=",".join(prefix + name for name in INDICES), ignore_unavailable=True)


@pytest.fixture(autouse=True)
def numeric_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    """The level fields with pino's numeric convention (50 and above are errors)."""
    fields = [f if f.path != "level" else LevelField("level", (50, None)) for f in layout.LEVEL_FIELDS]
    monkeypatch.setattr(layout, "LEVEL_FIELDS", tuple(fields))


def expected(which: int) -> list[str]:
    """The ids of the documents fetched (which=1) or lying in the range (which=2)."""
    return sorted(
        doc_id
        for _, documents in INDICES.values()
        for doc_id, (_, fetched, inside) in documents.items()
        if (fetched, inside)[which - 1]
    )


@pytest.mark.parametrize("slices", [1, 2])
def test_each_index_is_queried_for_the_types_it_maps(
    es_client: Elasticsearch, pattern: str, slices: int
) -> None:
    source = ElasticsearchSource(es_client, pattern, page_size=3, slices=slices)
    stats = InputStats()
    hits = list(source.fetch(START, END, stats))  # a failed shard would raise SourceUnavailable
    assert sorted(hit["_id"] for hit in hits) == expected(1)
    assert stats.fetched == len(expected(1))


def test_the_volume_counts_the_range_in_every_index(es_client: Elasticsearch, pattern: str) -> None:
    source = ElasticsearchSource(es_client, pattern)
    assert source.volume(START, END, enough=100) == len(expected(2))


def test_a_range_reads_the_mappings_once_for_its_count_and_its_search(
    es_client: Elasticsearch, pattern: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = ElasticsearchSource(es_client, pattern)
    asked = []
    field_caps = es_client.field_caps
    monkeypatch.setattr(es_client, "field_caps", lambda **kw: asked.append(kw["fields"]) or field_caps(**kw))
    source.volume(START, END, enough=1)
    hits = list(source.fetch(START, END, InputStats()))
    assert sorted(hit["_id"] for hit in hits) == expected(1)
    assert len(asked) == 1 and "level" in asked[0] and "@timestamp" in asked[0]


def test_split_parts_read_the_same_documents(es_client: Elasticsearch, es_url: str, pattern: str) -> None:
    source = ElasticsearchSource(es_client, pattern, page_size=2, connect=lambda: Elasticsearch(es_url))
    with source.split(START, END, 2) as parts:
        ids = sorted(hit["_id"] for part in parts for hit in part(InputStats()))
    assert ids == expected(1)


def test_an_index_whose_field_types_cannot_be_read_fails_the_range_naming_it(
    es_client: Elasticsearch, pattern: str
) -> None:
    # A shard that is not allocated anywhere (as after losing the node that held it): _field_caps
    # cannot answer for its index, and a query built without its types could fail it or miss documents.
    unassigned = pattern.removesuffix("*") + "unassigned"
    es_client.indices.create(
        index=unassigned,
        settings={"index.routing.allocation.require._name": "no-such-node"},
        wait_for_active_shards="0",
    )
    try:
        source = ElasticsearchSource(es_client, pattern)
        unreadable = f"could not read the mapping of index {unassigned}: no_shard_available_action_exception"
        with pytest.raises(SourceUnavailable, match=unreadable):
            list(source.fetch(START, END, InputStats()))
        with pytest.raises(SourceUnavailable, match=unreadable):
            source.volume(START, END, enough=100)
    finally:
        es_client.indices.delete(index=unassigned, ignore_unavailable=True)
