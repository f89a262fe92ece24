"""A rollout in the logs, as each shipper writes it: the pods of a Deployment's old ReplicaSet logging
with one image tag, then a new ReplicaSet's pods with the next one, then an error on a new pod.

The documents are the shipper corpus's (tests/shippers/corpus.py, each builder citing the page its
shape is from) with the image where each shipper puts it:
- Filebeat: `container.image.name`, the pod spec's image with its tag (ECS container fields,
  https://www.elastic.co/guide/en/ecs/current/ecs-container.html; Filebeat's add_kubernetes_metadata
  fills it, https://www.elastic.co/guide/en/beats/filebeat/current/exported-fields-kubernetes-processor.html).
- Fluent Bit: `kubernetes.container_image`, "repo:tag" (fluent/fluent-bit-docs
  pipeline/filters/kubernetes.md; the filter's runtime test output
  tests/runtime/data/kubernetes/out/core/core_base_fluent-bit.out).
- Vector: `kubernetes.container_image` (vectordotdev/vector kubernetes_logs.cue, output fields).
- OpenTelemetry (elasticsearch exporter, otel mode): resource attributes `container.image.name`
  without the tag and `container.image.tag` (open-telemetry/opentelemetry-collector-contrib
  processor/k8sattributesprocessor README, "container.image.name", "container.image.tag").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shippers.corpus import filebeat, fluent_bit, iso, otel, vector

from core.model import Workload, utc
from core.report.model import ProblemSummary, WorkloadStats

NAMESPACE = "card-opening"
REGISTRY = "registry.example.com:5000/cards"  # a registry port: the tag is after the last colon only
API = "card-opening-api"
WORKER = "card-limits-worker"
PODS = {  # workload → (old ReplicaSet's pod, new ReplicaSet's pod)
    API: ("card-opening-api-5d8f7c9b46-m2kqp", "card-opening-api-6f9c8d7b54-x7v4t"),
    WORKER: ("card-limits-worker-7b6c5d9f48-t6r2m", "card-limits-worker-8c7d6f5b49-q9w2z"),
}
OLD_TAG, NEW_TAG = "1.39.2", "1.39.3"
OLD_LINES_AT = ("09:10:00.000", "09:40:00.000", "09:59:50.000")  # the old pods' INFO lines
ERROR_AT = "10:04:30.000"  # the problem's first occurrence, on a new API pod
PROBLEM_FIRST_SEEN = utc(datetime.fromisoformat(iso(ERROR_AT)))
API_WORKLOAD = Workload("Deployment", NAMESPACE, API)
PROBLEM = "APPLICATION:card_opening:null_pointer"
ERROR_LINE = "ERROR c.e.cardopening.ResidencyCheck : Application 4417 failed: java.lang.NullPointerException"


def _pod_template_hash(pod: str) -> str:
    return pod.rsplit("-", 2)[1]


def _filebeat(clock: str, message: str, workload: str, pod: str, tag: str) -> dict[str, Any]:
    replicaset = f"{workload}-{_pod_template_hash(pod)}"
    doc = filebeat(
        clock,
        message,
        pod=pod,
        namespace=NAMESPACE,
        container=workload,
        labels={"app_kubernetes_io/name": workload, "pod-template-hash": _pod_template_hash(pod)},
        replicaset={"name": replicaset},
        deployment={"name": workload},
    )
    doc["container"]["image"]["name"] = f"{REGISTRY}/{workload}:{tag}"
    return doc


def _fluent_bit(clock: str, message: str, workload: str, pod: str, tag: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": workload, "pod-template-hash": _pod_template_hash(pod)}
    doc = fluent_bit(clock, pod=pod, namespace=NAMESPACE, container=workload, labels=labels, log=message)
    doc["kubernetes"]["container_image"] = f"{REGISTRY}/{workload}:{tag}"
    return doc


def _vector(clock: str, message: str, workload: str, pod: str, tag: str) -> dict[str, Any]:
    owner = f"ReplicaSet/{workload}-{_pod_template_hash(pod)}"
    labels = {"app.kubernetes.io/name": workload, "pod-template-hash": _pod_template_hash(pod)}
    doc = vector(clock, message, pod, NAMESPACE, workload, owner, labels)
    doc["kubernetes"]["container_image"] = f"{REGISTRY}/{workload}:{tag}"
    return doc


def _otel(clock: str, message: str, workload: str, pod: str, tag: str) -> dict[str, Any]:
    resource = {
        "k8s.namespace.name": NAMESPACE,
        "k8s.pod.name": pod,
        "k8s.container.name": workload,
        "k8s.replicaset.name": f"{workload}-{_pod_template_hash(pod)}",
        "k8s.deployment.name": workload,
        "container.image.name": f"{REGISTRY}/{workload}",
        "container.image.tag": tag,
    }
    severity = ("ERROR", 17) if message.startswith("ERROR") else ("INFO", 9)
    return otel(clock, resource, message, severity_text=severity[0], severity_number=severity[1])


SHIPPERS: dict[str, Callable[[str, str, str, str, str], dict[str, Any]]] = {
    "filebeat": _filebeat,
    "fluent-bit": _fluent_bit,
    "vector": _vector,
    "otel": _otel,
}


def rollout(
    shipper: str,
    *,
    rolled_out: str | None = API,
    new_at: str = "10:00:10.000",
    old_tag: bool = True,
) -> list[dict[str, Any]]:
    """The namespace's documents of 09:00-10:05, in time order: both workloads' old pods log INFO
    lines with OLD_TAG (none when not `old_tag`), the `rolled_out` workload's new pod logs from
    `new_at` with NEW_TAG, and at ERROR_AT a new (or, when nothing of the API rolled out, an old) API
    pod logs the error."""
    document = SHIPPERS[shipper]
    lines: list[tuple[str, str, str, str]] = []  # clock, message, workload, pod, with the tag below
    for workload in (API, WORKER):
        old, new = PODS[workload]
        if old_tag:
            ok = "INFO o.s.w.s.DispatcherServlet : Completed 200 OK"
            lines += [(clock, ok, workload, old) for clock in OLD_LINES_AT]
        if workload == rolled_out:
            lines.append((new_at, f"INFO c.e.Application : Started {workload} in 7.3 seconds", workload, new))
    error_pod = PODS[API][1] if rolled_out == API else PODS[API][0]
    lines.append((ERROR_AT, ERROR_LINE, API, error_pod))
    docs = []
    for clock, message, workload, pod in sorted(lines):
        tag = NEW_TAG if pod == PODS[workload][1] else OLD_TAG
        docs.append(document(clock, message, workload, pod, tag))
    return docs


def write_ndjson(path: Path, docs: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    return path


def summary(fact: str, problem_id: str = PROBLEM, workload: Workload = API_WORKLOAD) -> ProblemSummary:
    """The report's summary of a problem first seen at PROBLEM_FIRST_SEEN on `workload`, with another
    workload that showed it later but more often."""
    first = PROBLEM_FIRST_SEEN
    other = Workload("Deployment", workload.namespace, "other")
    return ProblemSummary(
        id=problem_id,
        category="APPLICATION",
        flow="card_opening",
        error_class="null_pointer",
        severity="high",
        fact=fact,
        triage="open",
        score=1.0,
        count=3,
        first_seen=first,
        last_seen=first + timedelta(minutes=5),
        known_since=None if fact == "new" else first - timedelta(days=3),
        namespaces=[workload.namespace],
        workloads=[workload],
        templates=[],
        sample="",
        findings=[],
        remediation=[],
        workload_stats=[
            WorkloadStats(other, 9, first + timedelta(minutes=1), first + timedelta(minutes=2)),
            WorkloadStats(workload, 3, first, first + timedelta(minutes=5)),
        ],
    )
