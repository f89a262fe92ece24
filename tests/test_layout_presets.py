"""Tests for core.layout's presets: one document in each shipper's default shape, detected per
document and read into the event a person would name; ES_FIELD_MAP over them, owners included.

Each document is built as the page or source file in its comment describes that shipper's output
(docs/shippers.md lists the same pages field by field).
"""

from __future__ import annotations

import pytest

from core.cli import _layout
from core.config import load_settings
from core.layout import DETECTED, ECS, FLUENT_BIT, OTEL, VECTOR, FieldMap, detect_layout, flatten
from core.model import Event, InputStats, Workload
from core.normalize import normalize

POD = "nightly-settlement-29936280-abcde"
JOB = "nightly-settlement-29936280"
NIGHTLY_JOB = Workload("Job", "batch", JOB)
MESSAGE = "ERROR settlement run failed: connection refused"


def filebeat_doc() -> dict:
    # Filebeat 8.x `container` input with add_kubernetes_metadata and
    # `add_resource_metadata.cronjob: true`; labels de-dotted (`labels.dedot`, on by default).
    # https://www.elastic.co/guide/en/beats/filebeat/current/add-kubernetes-metadata.html
    # https://www.elastic.co/guide/en/beats/filebeat/current/exported-fields-kubernetes-processor.html
    return {
        "@timestamp": "2026-12-02T03:00:01.123Z",
        "message": MESSAGE,
        "stream": "stderr",
        "input": {"type": "container"},
        "log": {"file": {"path": f"/var/log/containers/{POD}_batch_settle-0a1b2c.log"}, "offset": 1234},
        "kubernetes": {
            "namespace": "batch",
            "namespace_uid": "6f0e2d61-0000-4000-8000-000000000001",
            "pod": {"name": POD, "uid": "0c3f-0000", "ip": "10.1.2.3"},
            "node": {"name": "node-1", "hostname": "node-1"},
            "labels": {
                "batch_kubernetes_io/job-name": JOB,
                "job-name": JOB,
                "batch_kubernetes_io/controller-uid": "8d7e-0000",
            },
            "container": {"name": "settle"},
            "job": {"name": JOB},
            "cronjob": {"name": "nightly-settlement"},
        },
        "container": {"id": "0a1b2c", "runtime": "containerd", "image": {"name": "settle:1.4"}},
        "agent": {"type": "filebeat", "version": "8.15.0"},
        "ecs": {"version": "8.0.0"},
    }


def elastic_agent_doc() -> dict:
    # Elastic Agent, Kubernetes integration `container_logs`, with `add_resource_metadata.cronjob`
    # (off by default since 8.10.4, as `deployment`):
    # https://www.elastic.co/docs/reference/fleet/ingest-pipeline-kubernetes
    # https://www.elastic.co/guide/en/integrations/current/kubernetes-container-logs.html
    doc = filebeat_doc()
    doc["agent"] = {"type": "filebeat", "name": "elastic-agent-x7k2p", "version": "8.15.0"}
    doc["data_stream"] = {"type": "logs", "dataset": "kubernetes.container_logs", "namespace": "default"}
    doc["kubernetes"]["labels"] = {"batch_kubernetes_io/job-name": JOB, "job-name": JOB}
    return doc


def logstash_doc() -> dict:
    # Logstash `beats` input with `ecs_compatibility => v8` (the default since 8.0): the Beats event
    # as it came, plus `@version`, `event.original` and `tags`.
    # https://www.elastic.co/guide/en/logstash/current/ecs-ls.html
    doc = filebeat_doc()
    doc["@version"] = "1"
    doc["event"] = {"original": MESSAGE}
    doc["tags"] = ["beats_input_codec_plain_applied"]
    return doc


def otel_ecs_doc() -> dict:
    # The OTel Collector's elasticsearch exporter with `mapping.mode: ecs`: k8s.* resource attributes
    # renamed to ECS (k8s.job.name → kubernetes.job.name, k8s.cronjob.name → kubernetes.cronjob.name),
    # the body as `message`, the severity text as `log.level`. Source, in
    # open-telemetry/opentelemetry-collector-contrib: exporter/elasticsearchexporter/internal/encoder/
    # ecs/attributes.go (resourceAttrsConversionMap) and internal/encoder/log/ecs.go (EncodeLog).
    return {
        "@timestamp": "2026-12-02T03:00:01.123000000Z",
        "message": MESSAGE,
        "log": {"level": "ERROR"},
        "kubernetes": {
            "namespace": "batch",
            "pod": {"name": POD, "uid": "0c3f-0000"},
            "job": {"name": JOB},
            "cronjob": {"name": "nightly-settlement"},
            "container": {"name": "settle"},
            "node": {"name": "node-1"},
        },
        "agent": {"name": "otlp"},
    }


def fluent_bit_doc() -> dict:
    # Fluent Bit: tail input with the cri/docker multiline parser, the kubernetes filter with its
    # defaults (Merge_Log Off, Labels On), the es output (`@timestamp` added by Time_Key).
    # https://docs.fluentbit.io/manual/pipeline/filters/kubernetes
    # https://docs.fluentbit.io/manual/pipeline/outputs/elasticsearch
    return {
        "@timestamp": "2026-12-02T03:00:01.123Z",
        "time": "2026-12-02T03:00:01.123456789Z",
        "stream": "stderr",
        "_p": "F",
        "log": MESSAGE,
        "kubernetes": {
            "pod_name": POD,
            "namespace_name": "batch",
            "pod_id": "0c3f-0000",
            "labels": {"batch.kubernetes.io/job-name": JOB, "job-name": JOB},
            "host": "node-1",
            "container_name": "settle",
            "docker_id": "0a1b2c",
            "container_hash": "settle@sha256:00",
            "container_image": "settle:1.4",
        },
    }


def fluent_bit_merged_doc() -> dict:
    # The kubernetes filter with `Merge_Log On` (Keep_Log On, the default, keeps the raw `log`) and
    # the es output with `Replace_Dots On`, which writes `app.kubernetes.io/name` as
    # `app_kubernetes_io/name`. Same pages as above.
    raw = '{"level":"error","msg":"payment 42 declined: card expired","ts":"2026-12-02T03:00:02Z"}'
    return {
        "@timestamp": "2026-12-02T03:00:02.000Z",
        "time": "2026-12-02T03:00:02.000000001Z",
        "stream": "stdout",
        "_p": "F",
        "log": raw,
        "level": "error",
        "msg": "payment 42 declined: card expired",
        "ts": "2026-12-02T03:00:02Z",
        "kubernetes": {
            "pod_name": "payments-api-7d4b9c6f5-q8w2e",
            "namespace_name": "cards",
            "labels": {"app_kubernetes_io/name": "payments-api", "pod-template-hash": "7d4b9c6f5"},
            "container_name": "api",
        },
    }


def vector_doc() -> dict:
    # Vector `kubernetes_logs` source, default FieldsSpec (src/sources/kubernetes_logs/
    # pod_metadata_annotator.rs: pod_owner is "<kind>/<name>" of the first owner reference; labels
    # keep their dots), the elasticsearch sink in bulk mode (keeps `timestamp`).
    # https://vector.dev/docs/reference/configuration/sources/kubernetes_logs/
    return {
        "timestamp": "2026-12-02T03:00:03.456789Z",
        "message": "ERROR statement export failed: upstream timeout",
        "source_type": "kubernetes_logs",
        "stream": "stderr",
        "file": "/var/log/pods/cards_api-7d4b9c6f5-x2k4q_0c3f/api/0.log",
        "kubernetes": {
            "pod_name": "api-7d4b9c6f5-x2k4q",
            "pod_namespace": "cards",
            "pod_uid": "0c3f-0000",
            "pod_ip": "10.1.2.4",
            "pod_node_name": "node-2",
            "pod_owner": "ReplicaSet/api-7d4b9c6f5",
            "pod_labels": {"app.kubernetes.io/name": "cards-api", "pod-template-hash": "7d4b9c6f5"},
            "container_name": "api",
            "container_image": "cards-api:2.1",
            "namespace_labels": {"kubernetes.io/metadata.name": "cards"},
        },
    }


def otel_doc() -> dict:
    # The OTel Collector's elasticsearch exporter in `otel` mapping mode (its default): resource
    # attributes as dotted keys under `resource.attributes` (k8sattributes processor names), the body
    # under `body.text`, `@timestamp` as epoch milliseconds with a fraction, as a string.
    # Source: exporter/elasticsearchexporter/internal/serializer/otelserializer/logs.go (SerializeLog)
    # and its logs_test.go in open-telemetry/opentelemetry-collector-contrib.
    return {
        "@timestamp": "1796180404123.456789",
        "observed_timestamp": "1796180404200.0",
        "data_stream": {"type": "logs", "dataset": "generic.otel", "namespace": "default"},
        "severity_text": "ERROR",
        "severity_number": 17,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "attributes": {"log.iostream": "stderr", "log.file.path": "/var/log/pods/x/0.log"},
        "resource": {
            "attributes": {
                "k8s.namespace.name": "ledger",
                "k8s.pod.name": "ledger-writer-5c9d8f7b6-m4n5p",
                "k8s.container.name": "writer",
                "k8s.deployment.name": "ledger-writer",
                "k8s.replicaset.name": "ledger-writer-5c9d8f7b6",
                "k8s.node.name": "node-3",
                "k8s.pod.labels.app": "ledger",
            }
        },
        "scope": {},
        "body": {"text": "ERROR ledger write failed: deadlock detected"},
    }


def otel_cronjob_doc() -> dict:
    # The same exporter and mode, for a pod of a Job a CronJob made (k8sattributes extracts both
    # k8s.job.name and k8s.cronjob.name).
    doc = otel_doc()
    doc["resource"]["attributes"] = {
        "k8s.namespace.name": "batch",
        "k8s.pod.name": POD,
        "k8s.container.name": "settle",
        "k8s.job.name": JOB,
        "k8s.cronjob.name": "nightly-settlement",
    }
    doc["body"] = {"text": MESSAGE}
    return doc


# (document, layout detected, namespace, pod, container, workload, message)
SHAPES = {
    "filebeat": (filebeat_doc, "ecs", "batch", POD, "settle", NIGHTLY_JOB, MESSAGE),
    "elastic-agent": (elastic_agent_doc, "ecs", "batch", POD, "settle", NIGHTLY_JOB, MESSAGE),
    "logstash-ecs": (logstash_doc, "ecs", "batch", POD, "settle", NIGHTLY_JOB, MESSAGE),
    "otel-ecs-mode": (otel_ecs_doc, "ecs", "batch", POD, "settle", NIGHTLY_JOB, MESSAGE),
    "fluent-bit": (fluent_bit_doc, "fluent-bit", "batch", POD, "settle", NIGHTLY_JOB, MESSAGE),
    "fluent-bit-merge-log-replace-dots": (
        fluent_bit_merged_doc,
        "fluent-bit",
        "cards",
        "payments-api-7d4b9c6f5-q8w2e",
        "api",
        Workload("Deployment", "cards", "payments-api"),
        "payment 42 declined: card expired",
    ),
    "vector": (
        vector_doc,
        "vector",
        "cards",
        "api-7d4b9c6f5-x2k4q",
        "api",
        Workload("Deployment", "cards", "api"),
        "ERROR statement export failed: upstream timeout",
    ),
    "otel": (
        otel_doc,
        "otel",
        "ledger",
        "ledger-writer-5c9d8f7b6-m4n5p",
        "writer",
        Workload("Deployment", "ledger", "ledger-writer"),
        "ERROR ledger write failed: deadlock detected",
    ),
    "otel-cronjob": (otel_cronjob_doc, "otel", "batch", POD, "settle", NIGHTLY_JOB, MESSAGE),
}


def events(docs: list[dict], fields=None) -> tuple[list[Event], InputStats]:
    stats = InputStats()
    return list(normalize(docs, stats, fields)), stats


@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
def test_each_shippers_default_document_is_read_as_a_person_names_it(shape: str) -> None:
    make, layout, namespace, pod, container, workload, message = SHAPES[shape]
    assert detect_layout(flatten(make())).name == layout
    (event,), stats = events([make()])
    assert stats.skipped_total == 0
    assert (event.namespace, event.pod, event.container) == (namespace, pod, container)
    assert event.workload == workload
    assert event.message == message


def test_one_list_of_mixed_shippers_is_detected_document_by_document() -> None:
    docs = [make() for make, *_ in SHAPES.values()]
    found, stats = events(docs)
    assert stats.skipped_total == 0
    assert [event.workload for event in found] == [shape[5] for shape in SHAPES.values()]


def test_the_same_failing_pod_is_one_workload_through_every_shipper() -> None:
    # Filebeat names the Job and its CronJob, Fluent Bit only the pod and its labels, OTel both
    # again: one failure, one workload, the Job, whose CronJob is kept as its parent.
    found, _ = events([filebeat_doc(), fluent_bit_doc(), otel_cronjob_doc(), otel_ecs_doc()])
    assert {event.workload for event in found} == {NIGHTLY_JOB}
    assert found[0].workload.label == "Job/batch/nightly-settlement-29936280 of CronJob nightly-settlement"


def test_otel_epoch_millis_string_is_the_log_time() -> None:
    (event,), _ = events([otel_doc()])
    assert event.timestamp.isoformat() == "2026-12-02T03:00:04.123457+00:00"
    assert event.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_presets_are_named_and_detected_most_specific_first() -> None:
    assert {name: FieldMap.preset(name) for name in ("ecs", "fluent-bit", "vector", "otel")} == {
        "ecs": ECS,
        "fluent-bit": FLUENT_BIT,
        "vector": VECTOR,
        "otel": OTEL,
    }
    # Vector also writes kubernetes.pod_name, the Fluent Bit marker: its own is tried first.
    assert detect_layout({"kubernetes.pod_name": "p", "kubernetes.pod_namespace": "n"}) is VECTOR
    assert detect_layout({"log": "ERROR x"}) is FLUENT_BIT
    assert detect_layout({"message": "ERROR x"}) is ECS


def test_field_map_sets_owners_and_drops_them() -> None:
    custom = ECS.override({"owner.Job": "meta.job, meta.job_name", "owner.CronJob": ""})
    assert ("Job", "meta.job") in custom.owners and ("Job", "meta.job_name") in custom.owners
    assert ("Job", "kubernetes.job.name") not in custom.owners
    assert all(kind != "CronJob" for kind, _ in custom.owners)
    doc = {
        "@timestamp": "2026-12-02T03:00:00Z",
        "message": MESSAGE,
        "kubernetes": {"namespace": "batch", "pod": {"name": "runner-0"}},
        "meta": {"job_name": "reconcile-manual"},
    }
    (event,), _ = events([doc], custom)
    assert event.workload == Workload("Job", "batch", "reconcile-manual")
    with pytest.raises(ValueError, match="owner.Jobb"):
        ECS.override({"owner.Jobb": "x"})


def test_es_field_map_with_auto_applies_over_every_preset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ES_FIELD_PRESET", "auto")
    monkeypatch.setenv("ES_FIELD_MAP", '{"owner.Job": "labels.batch_job"}')
    layout = _layout(load_settings())
    assert isinstance(layout, tuple) and [fm.name for fm in layout] == [fm.name for fm in DETECTED]
    assert all(("Job", "labels.batch_job") in fm.owners for fm in layout)
    vector = vector_doc()
    vector["kubernetes"]["pod_owner"] = "Node/node-2"  # a static pod: no workload owns it
    vector["labels"] = {"batch_job": "export-manual"}
    (event,), _ = events([vector], layout)
    assert event.workload == Workload("Job", "cards", "export-manual")
