"""What changed, read from the real Elasticsearch (needs Elasticsearch): each shipper's rollout documents
(tests/rollouts.py, with the page each shape is from) in an index with the mapping that shipper gets by
default (tests/integration/test_shippers_elasticsearch.py: the ECS and OTel templates, dynamic mapping
for Fluent Bit and Vector, whose strings become text with a `.keyword` sub-field), asked through
`ElasticsearchSource.image_documents`' one composite aggregation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace

import pytest
from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk
from rollouts import API, API_WORKLOAD, NEW_TAG, PROBLEM, PROBLEM_FIRST_SEEN, WORKER, rollout, summary

from core.change import ChangeConfig, Subject, explain
from core.fetch import ElasticsearchSource
from core.pipeline import what_changed
from core.redact import Redactor
from integration.test_shippers_elasticsearch import ECS_MAPPINGS, OTEL_MAPPINGS

pytestmark = pytest.mark.every_elasticsearch  # the 8 and the 9 node

MAPPINGS = {"filebeat": ECS_MAPPINGS, "otel": OTEL_MAPPINGS, "fluent-bit": None, "vector": None}
SCENARIOS = {
    "rollout": {},
    "no-earlier-tag": {"old_tag": False},
    "outside-window": {"new_at": "09:20:00.000"},
    "other-workload": {"rolled_out": WORKER},
}


@pytest.fixture(scope="module")
def indices(es_client: Elasticsearch) -> Iterator[dict[tuple[str, str], str]]:
    """(shipper, scenario) → an index holding that scenario's documents, as that shipper's index maps them."""
    prefix = f"change-test-{uuid.uuid4().hex[:10]}"
    names = {
        (shipper, scenario): f"{prefix}-{shipper}-{scenario}"
        for shipper in MAPPINGS
        for scenario in SCENARIOS
    }
    try:
        for (shipper, scenario), name in names.items():
            mappings = MAPPINGS[shipper]
            es_client.indices.create(
                index=name,
                settings={"number_of_shards": 1, "number_of_replicas": 0},
                **({"mappings": mappings} if mappings else {}),
            )
            docs = rollout(shipper, **SCENARIOS[scenario])
            indexed, errors = bulk(
                es_client,
                ({"_index": name, "_source": doc} for doc in docs),
                raise_on_error=False,
                refresh="wait_for",
            )
            assert not errors and indexed == len(docs), errors[:2]
        yield names
    finally:
        es_client.indices.delete(index=",".join(names.values()), ignore_unavailable=True)


def changes(client: Elasticsearch, index: str, config: ChangeConfig | None = None) -> dict[str, str]:
    source = ElasticsearchSource(client, index, slices=1)
    return explain([Subject(PROBLEM, API_WORKLOAD, PROBLEM_FIRST_SEEN)], source, config or ChangeConfig())


@pytest.mark.parametrize("shipper", MAPPINGS)
def test_a_rollout_four_minutes_before_is_named(es_client, indices, shipper: str) -> None:
    assert changes(es_client, indices[shipper, "rollout"]) == {
        PROBLEM: f"first seen 4 min after {API} rolled out {NEW_TAG}"
    }


@pytest.mark.parametrize("shipper", MAPPINGS)
def test_no_earlier_tag_is_no_rollout(es_client, indices, shipper: str) -> None:
    assert changes(es_client, indices[shipper, "no-earlier-tag"]) == {}


@pytest.mark.parametrize("shipper", MAPPINGS)
def test_a_rollout_outside_the_window_is_not_named(es_client, indices, shipper: str) -> None:
    index = indices[shipper, "outside-window"]
    assert changes(es_client, index) == {}
    assert changes(es_client, index, ChangeConfig(window=timedelta(minutes=45))) == {
        PROBLEM: f"first seen 44 min after {API} rolled out {NEW_TAG}"
    }


@pytest.mark.parametrize("shipper", MAPPINGS)
def test_another_workloads_rollout_is_not_named(es_client, indices, shipper: str) -> None:
    assert changes(es_client, indices[shipper, "other-workload"]) == {}


def test_every_shipper_under_one_pattern_and_a_recurring_problem(es_client, indices) -> None:
    """One index pattern over every shipper's indices, as ES_INDEX_PATTERN reads them; the recurring
    problem of the same workload and time says nothing."""
    pattern = ",".join(indices[shipper, "rollout"] for shipper in MAPPINGS)
    new, recurring = summary("new"), summary("recurring", "APPLICATION:card_opening:validation_error")
    analyser = SimpleNamespace(source=ElasticsearchSource(es_client, pattern, slices=1), fields=None)
    what_changed(SimpleNamespace(problems=[new, recurring]), analyser, ChangeConfig(), Redactor())
    assert new.change == f"first seen 4 min after {API} rolled out {NEW_TAG}"
    assert recurring.change is None


def test_an_unreachable_node_costs_the_sentence_only() -> None:
    client = Elasticsearch("http://127.0.0.1:9", request_timeout=1, max_retries=0)
    new = summary("new")
    analyser = SimpleNamespace(source=ElasticsearchSource(client, "logs-*", slices=1), fields=None)
    what_changed(SimpleNamespace(problems=[new]), analyser, ChangeConfig(), Redactor())
    assert new.change is None
