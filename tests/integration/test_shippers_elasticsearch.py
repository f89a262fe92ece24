"""The shipper corpus through the real Elasticsearch (needs Elasticsearch): each shipper's documents in
an index of their own with the mapping that shipper gets by default, read back through
`ElasticsearchSource` and normalize, and all of them mixed under one index pattern through a whole run.

Default mappings, reproduced in the part the analyzer's query and reading touch:
- ECS (Filebeat, Elastic Agent, Logstash with ECS compatibility, the OTel exporter's `ecs` mode): the
  `logs@mappings` + `ecs@mappings` component templates of elastic/elasticsearch
  (x-pack/plugin/core/template-resources/src/main/resources/ecs@mappings.json): `date_detection` off,
  `@timestamp` a date, `message` text, every other string a keyword (`ignore_above` 1024).
- OTel `otel` mode: the `logs-otel@template` of elastic/elasticsearch x-pack/plugin/otel-data
  (component-templates otel@mappings.yaml, logs-otel@mappings.yaml, semconv-resource-to-ecs@mappings.yaml):
  `dynamic: false` at the root, `attributes`, `scope.attributes` and `resource.attributes` as
  `passthrough` objects, `severity_text` keyword, `severity_number` byte, `body.text` text, aliases
  `message` → `body.text`, `log.level` → `severity_text`, `kubernetes.namespace` →
  `resource.attributes.k8s.namespace.name` ….
- Fluent Bit and Vector install no template: their indices get dynamic mapping, so pino's `level: 50` and
  `time` become longs, and Vector's `timestamp` a long under `timestamp_format = "unix_ms"`.
The test node is the integ-test-zip distribution, without the mapper-extras and x-pack mapper modules:
`match_only_text` is written as `text`, `constant_keyword` and `wildcard` as `keyword` — the same
queries work on both types, so the reproduction meets the analyzer as the real templates do.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk
from embedded import components
from shippers.checks import check_events, check_incidents, check_only_named_workloads
from shippers.corpus import CASES, DAY, DAY_END, MAPPINGS, ShipperCase, case_of, document_id

from core.fetch import ElasticsearchSource, SourceUnavailable
from core.model import Event, Incident, InputStats
from core.normalize import normalize
from core.pipeline import analyse

pytestmark = pytest.mark.every_elasticsearch  # the 8 and the 9 node

ECS_MAPPINGS: dict[str, Any] = {
    "date_detection": False,
    "dynamic_templates": [
        {"ecs_timestamp": {"match": "@timestamp", "mapping": {"type": "date", "ignore_malformed": False}}},
        {
            "ecs_message_match_only_text": {
                "path_match": ["message", "*.message"],
                "mapping": {"type": "text"},
            }
        },
        {
            "ecs_date": {
                "path_match": [
                    "*.timestamp",
                    "*_timestamp",
                    "created",
                    "*.created",
                    "ingested",
                    "*.ingested",
                ],
                "mapping": {"type": "date"},
            }
        },
        {
            "all_strings_to_keywords": {
                "match_mapping_type": "string",
                "mapping": {"type": "keyword", "ignore_above": 1024},
            }
        },
    ],
    "properties": {
        "@timestamp": {"type": "date"},
        "data_stream": {
            "properties": {
                "type": {"type": "keyword"},
                "dataset": {"type": "keyword"},
                "namespace": {"type": "keyword"},
            }
        },
    },
}

KEYWORD = {"type": "keyword", "ignore_above": 1024}
OTEL_MAPPINGS: dict[str, Any] = {
    "date_detection": False,
    "dynamic": False,
    "dynamic_templates": [
        {
            "complex_attributes": {
                "path_match": ["resource.attributes.*", "scope.attributes.*", "attributes.*"],
                "match_mapping_type": "object",
                "mapping": {"type": "flattened"},
            }
        }
    ],
    "properties": {
        "@timestamp": {"type": "date"},
        "observed_timestamp": {"type": "date_nanos"},
        "data_stream": {
            "properties": {
                "type": {"type": "keyword"},
                "dataset": {"type": "keyword"},
                "namespace": {"type": "keyword"},
            }
        },
        "attributes": {"type": "passthrough", "dynamic": True, "priority": 20, "time_series_dimension": True},
        "dropped_attributes_count": {"type": "long"},
        "scope": {
            "properties": {
                "name": KEYWORD,
                "version": KEYWORD,
                "schema_url": KEYWORD,
                "dropped_attributes_count": {"type": "long"},
                "attributes": {
                    "type": "passthrough",
                    "dynamic": True,
                    "priority": 30,
                    "time_series_dimension": True,
                },
            }
        },
        "resource": {
            "properties": {
                "schema_url": KEYWORD,
                "dropped_attributes_count": {"type": "long"},
                "attributes": {
                    "type": "passthrough",
                    "dynamic": True,
                    "priority": 40,
                    "time_series_dimension": True,
                    "properties": {
                        "k8s.deployment.name": KEYWORD,
                        "k8s.namespace.name": KEYWORD,
                        "k8s.node.name": KEYWORD,
                        "k8s.pod.name": KEYWORD,
                        "k8s.pod.uid": KEYWORD,
                    },
                },
            }
        },
        "severity_number": {"type": "byte"},
        "severity_text": {"type": "keyword"},
        "log.level": {"type": "alias", "path": "severity_text"},
        "body": {
            "type": "object",
            "properties": {
                "text": {"type": "text"},
                "flattened": {"type": "flattened"},
                "structured": {"type": "passthrough", "dynamic": True, "priority": 10},
            },
        },
        "message": {"type": "alias", "path": "body.text"},
        "trace_id": {"type": "keyword"},
        "trace.id": {"type": "alias", "path": "trace_id"},
        "span_id": {"type": "keyword"},
        "span.id": {"type": "alias", "path": "span_id"},
        "kubernetes.deployment.name": {"type": "alias", "path": "resource.attributes.k8s.deployment.name"},
        "kubernetes.namespace": {"type": "alias", "path": "resource.attributes.k8s.namespace.name"},
        "kubernetes.node.name": {"type": "alias", "path": "resource.attributes.k8s.node.name"},
        "kubernetes.pod.name": {"type": "alias", "path": "resource.attributes.k8s.pod.name"},
        "kubernetes.pod.uid": {"type": "alias", "path": "resource.attributes.k8s.pod.uid"},
    },
}

TEMPLATES = {"ecs": ECS_MAPPINGS, "otel": OTEL_MAPPINGS}


@dataclass
class Read:
    """What reading one index pattern gave: normalize's events, or why the source could not be read."""

    events: list[Event]
    failure: SourceUnavailable | None

    def of(self, shipper_case: ShipperCase) -> list[Event]:
        if self.failure is not None:
            pytest.fail(f"{shipper_case.id}: the index could not be read: {self.failure}", pytrace=False)
        return [e for e in self.events if case_of(e.doc_id) == shipper_case.id]


@dataclass
class Shipped:
    """The corpus indexed: one index per shipper under one prefix, each with its default mapping."""

    client: Elasticsearch
    prefix: str

    def index(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    @property
    def pattern(self) -> str:
        return f"{self.prefix}-*"

    def source(self, index: str) -> ElasticsearchSource:
        return ElasticsearchSource(self.client, index, page_size=7, slices=1)

    def read(self, index: str) -> Read:
        stats = InputStats()
        try:
            return Read(list(normalize(self.source(index).fetch(DAY, DAY_END, stats), stats)), None)
        except SourceUnavailable as failure:
            return Read([], failure)


@pytest.fixture(scope="module")
def shipped(es_client: Elasticsearch) -> Iterator[Shipped]:
    # A prefix no template of the repo matches (`logs-k8s-*` is the analyzer's own): Fluent Bit's and
    # Vector's indices must get dynamic mapping, the others only the template made for them here.
    prefix = f"shippers-test-{uuid.uuid4().hex[:10]}"
    shipped = Shipped(es_client, prefix)
    templates = []
    for mapping, mappings in TEMPLATES.items():
        name = f"{prefix}-{mapping}"
        indices = [shipped.index(i) for i, m in MAPPINGS.items() if m == mapping]
        es_client.indices.put_index_template(
            name=name,
            index_patterns=indices,
            priority=500,
            template={"settings": {"number_of_shards": 1, "number_of_replicas": 0}, "mappings": mappings},
        )
        templates.append(name)
    try:
        for index in MAPPINGS:
            es_client.indices.create(
                index=shipped.index(index), settings={"number_of_shards": 1, "number_of_replicas": 0}
            )
        # In corpus order, one shard per index: the records of a split trace are read back in order.
        actions = (
            {"_index": shipped.index(c.index), "_id": document_id(c, n), "_source": document}
            for c in CASES
            for n, document in enumerate(c.documents)
        )
        indexed, errors = bulk(es_client, actions, raise_on_error=False, refresh="wait_for")
        assert not errors, f"the shippers' documents must index with their default mappings: {errors[:2]}"
        assert indexed == sum(len(c.documents) for c in CASES)
        yield shipped
    finally:
        # By name: deleting by wildcard is refused (action.destructive_requires_name).
        es_client.indices.delete(index=",".join(shipped.index(i) for i in MAPPINGS), ignore_unavailable=True)
        for name in templates:
            es_client.indices.delete_index_template(name=name)


def _type(client: Elasticsearch, index: str, field: str) -> str | None:
    found = client.indices.get_field_mapping(index=index, fields=field).body[index]["mappings"]
    mapping = found.get(field, {}).get("mapping", {})
    return next(iter(mapping.values()), {}).get("type") if mapping else None


def test_each_shipper_index_has_its_default_mapping(shipped: Shipped) -> None:
    """The conditions the corpus is about: numbers where a query expects words or dates, passthrough
    objects, ECS keywords."""
    client = shipped.client
    assert _type(client, shipped.index("fluent-bit"), "level") == "long"
    assert _type(client, shipped.index("fluent-bit"), "time") == "long"
    assert _type(client, shipped.index("vector-unix-ms"), "timestamp") == "long"
    assert _type(client, shipped.index("vector"), "timestamp") == "date"
    assert _type(client, shipped.index("elastic-agent"), "severity") == "keyword"
    assert _type(client, shipped.index("logstash"), "log_level") == "keyword"
    assert _type(client, shipped.index("otel"), "severity_number") == "byte"
    mapping = client.indices.get_mapping(index=shipped.index("otel")).body[shipped.index("otel")]["mappings"]
    assert mapping["properties"]["resource"]["properties"]["attributes"]["type"] == "passthrough"


@pytest.fixture(scope="module")
def per_shipper(shipped: Shipped) -> dict[str, Read]:
    return {index: shipped.read(shipped.index(index)) for index in MAPPINGS}


@pytest.mark.parametrize("shipper_case", [c for c in CASES if c.single], ids=lambda c: c.id)
def test_each_shippers_index_read_alone_gives_what_a_person_reads(
    per_shipper: dict[str, Read], shipper_case: ShipperCase
) -> None:
    check_events(shipper_case, per_shipper[shipper_case.index].of(shipper_case))


@dataclass
class MixedRun:
    incidents: list[Incident]
    failure: Exception | None

    def checked(self) -> list[Incident]:
        if self.failure is not None:
            pytest.fail(f"the run over every shipper's index failed: {self.failure}", pytrace=False)
        return self.incidents


@pytest.fixture(scope="module")
def mixed_run(shipped: Shipped, tmp_path_factory: pytest.TempPathFactory) -> MixedRun:
    """One run over the index pattern that holds every shipper's index, as a cluster that runs several
    shippers has it."""
    directory: Path = tmp_path_factory.mktemp("shippers-es")
    try:
        result = analyse(components(directory, shipped.source(shipped.pattern)), DAY, DAY_END)
    except SourceUnavailable as failure:
        return MixedRun([], failure)
    return MixedRun(result.analysis.incidents, None)


@pytest.mark.parametrize("shipper_case", CASES, ids=lambda c: c.id)
def test_a_run_over_every_shippers_index_counts_each_case_under_its_workload(
    mixed_run: MixedRun, shipper_case: ShipperCase
) -> None:
    check_incidents(shipper_case, mixed_run.checked())


def test_a_run_over_every_shippers_index_names_no_other_workload(mixed_run: MixedRun) -> None:
    check_only_named_workloads(mixed_run.checked())
