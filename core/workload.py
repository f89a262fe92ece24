"""Workload attribution: the Kubernetes workload that really produced a log line, never the shipper.

First rule that applies:
1. Owner fields the shipper added (`FieldMap.owners`), most specific first: Job, StatefulSet,
   DaemonSet, Deployment, ReplicaSet (→ its Deployment, without `-<pod-template-hash>`), a
   `Kind/name` reference (Vector's `kubernetes.pod_owner`), and last CronJob: with both
   `kubernetes.job.name` and `kubernetes.cronjob.name` (Filebeat's `add_resource_metadata.cronjob`)
   the event is the Job's, and a CronJob field alone still gives the Job when the pod name holds one
   of that CronJob's Jobs. So the same pod through Filebeat and through Fluent Bit (no owner fields)
   is one workload.
2. Labels: `job-name` → Job; `statefulset.kubernetes.io/pod-name` → StatefulSet;
   `controller-revision-hash` + `pod-template-generation` → DaemonSet; `pod-template-hash` →
   Deployment (pod name without `-<hash>-<5 chars>`).
3. Pod-name patterns: `<name>-<8+ digits>-<5>` → Job `<name>-<8+ digits>` (made by a CronJob);
   `<name>-<hash 8-10>-<5>` → Deployment; `<name>-<ordinal>` → StatefulSet; `<name>-<5>` →
   DaemonSet when `<name>` is a known node agent (`NODE_AGENTS`), else Job; anything else → kind
   `Pod` named after the pod.
A failing Job is attributed to the Job itself (`Job/<namespace>/<job name>`, e.g.
`nightly-settlement-29384720`), the object an operator inspects with `kubectl describe job`; its
CronJob is `Workload.cronjob`, read from the Job's name, and reports group a CronJob's Jobs under it.
The problem id (what the registry keys on) does not contain the workload, so a new Job name every
run adds a workload to the problem, not a new problem.

Shippers and scrapers (`SHIPPERS`: fluent-bit, kube-state-metrics, prometheus …) log lines that are
about other workloads. When the emitting workload, container or app is one of them and the message
names a workload (`job_name=`, `job="ns/name"`, `Job ns/name`, `job <name> failed`,
`deployment=`/`statefulset=`/`daemonset=`/`cronjob=`, `pod=`), the event is attributed to that
workload, in the namespace the message names (`exported_namespace=`, `namespace=`, `ns/name`), else
the emitter's. A shipper's own errors ("failed to flush chunk") name no workload and stay with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

from core.layout import OWNER_KINDS, OWNER_REFERENCE
from core.model import Workload

SHIPPERS = (
    "fluent-bit",
    "fluentbit",
    "fluentd",
    "filebeat",
    "metricbeat",
    "elastic-agent",
    "vector",
    "logstash",
    "promtail",
    "grafana-agent",
    "alloy",
    "kube-state-metrics",
    "prometheus",
    "alertmanager",
    "node-exporter",
    "otel-collector",
    "opentelemetry-collector",
    "datadog-agent",
)
"""Log shippers and metrics scrapers: their lines about other workloads belong to those workloads."""

ATTRIBUTION_CACHE = 65536
"""Pods whose attribution is remembered; far above the pods of a day, it only bounds memory."""

NODE_AGENTS = SHIPPERS + ("kube-proxy", "calico-node", "cilium", "aws-node", "csi-node", "kube-flannel")
"""Names that run one pod per node: a `<name>-<5 chars>` pod of these is a DaemonSet, not a Job."""


@lru_cache(maxsize=ATTRIBUTION_CACHE)
def attributed(
    namespace: str,
    pod: str,
    container: str,
    labels: tuple[tuple[str, str], ...],
    owners: tuple[tuple[str, str], ...],
) -> tuple[Workload, str, bool]:
    """(workload, app, whether it is a shipper) of a pod: a pure function of few distinct inputs (the
    pods of the range), so it is worked out once per pod instead of once per event."""
    label_map = dict(labels)
    owner_map: dict[str, str] = {}
    for kind, name in owners:  # the first path present for a kind wins, as for every other field
        owner_map.setdefault(kind, name)
    workload = attribute(namespace, pod, container, label_map, owner_map)
    app = _app(label_map) or workload.name
    return workload, app, is_shipper(workload.name, container, app)


_POD_OF_CRONJOB = re.compile(r"^(?P<job>(?P<cronjob>[a-z0-9][-a-z0-9]*?)-\d{8,})-[a-z0-9]{5}$")
# ReplicaSet hashes use Kubernetes' "safe" alphabet (no vowels, no 0/1/3): words like "exporter" never match.
_POD_OF_DEPLOYMENT = re.compile(
    r"^(?P<name>[a-z0-9][-a-z0-9]*?)-[bcdfghjklmnpqrstvwxz2456789]{8,10}-[a-z0-9]{5}$"
)
_POD_OF_STATEFULSET = re.compile(r"^(?P<name>[a-z0-9][-a-z0-9]*?)-(?:0|[1-9]\d{0,3})$")
_POD_WITH_SUFFIX = re.compile(r"^(?P<name>[a-z0-9][-a-z0-9]*?)-[a-z0-9]{5}$")


def job_workload(namespace: str, job: str) -> Workload:
    """A Job's workload: the Job itself."""
    return Workload("Job", namespace, job)


def attribute(
    namespace: str,
    pod: str,
    container: str = "",
    labels: Mapping[str, str] | None = None,
    owners: Mapping[str, str] | None = None,
) -> Workload:
    """The workload that runs `pod`, from owner fields, then labels, then the pod name."""
    labels = labels or {}
    if owners:
        owned = workload_of_owners(namespace, pod, labels, owners)
        if owned is not None:
            return owned
    job = labels.get("job-name") or labels.get("batch-kubernetes-io/job-name")
    if job:
        return job_workload(namespace, job)
    set_pod = labels.get("statefulset-kubernetes-io/pod-name")
    if set_pod:
        return Workload("StatefulSet", namespace, _strip_ordinal(pod or set_pod))
    if "controller-revision-hash" in labels and "pod-template-generation" in labels:
        return Workload("DaemonSet", namespace, _strip_suffix(pod) if pod else container or "unknown")
    template_hash = labels.get("pod-template-hash")
    if template_hash and f"-{template_hash}-" in pod:
        return Workload("Deployment", namespace, pod[: pod.rindex(f"-{template_hash}-")])
    if pod:
        return workload_of_pod(namespace, pod)
    return Workload("Unknown", namespace, container or _app(labels) or "unknown")


_WORKLOAD_KINDS = frozenset({"Job", "CronJob", "StatefulSet", "DaemonSet", "Deployment", "ReplicaSet"})
_REPLICASET_HASH = re.compile(r"^(?P<name>[a-z0-9][-a-z0-9]*?)-[bcdfghjklmnpqrstvwxz2456789]{5,10}$")


def workload_of_owners(
    namespace: str, pod: str, labels: Mapping[str, str], owners: Mapping[str, str]
) -> Workload | None:
    """The workload the owner fields name (kind → name, kinds of `OWNER_KINDS`), the most specific
    first; None when they name none (a reference to a Node, say, for a static pod)."""
    for kind in OWNER_KINDS:
        name = owners.get(kind)
        if not name:
            continue
        if kind == OWNER_REFERENCE:
            kind, _, name = name.partition("/")
            if kind not in _WORKLOAD_KINDS or not name:
                continue
        if kind == "ReplicaSet":
            deployment = _deployment_of(name, labels.get("pod-template-hash"))
            return (
                Workload("Deployment", namespace, deployment)
                if deployment
                else Workload(kind, namespace, name)
            )
        if kind == "CronJob":
            from_pod = workload_of_pod(namespace, pod) if pod else None
            if from_pod is not None and from_pod.cronjob == name:
                return from_pod
            return Workload("CronJob", namespace, name)
        return Workload(kind, namespace, name)
    return None


def _deployment_of(replicaset: str, template_hash: str | None) -> str | None:
    """The Deployment of a ReplicaSet: its name without `-<pod-template-hash>`; None for a name
    without one (a ReplicaSet of no Deployment)."""
    if template_hash and replicaset.endswith(f"-{template_hash}"):
        return replicaset[: -len(template_hash) - 1]
    found = _REPLICASET_HASH.match(replicaset)
    return found.group("name") if found else None


def workload_of_pod(namespace: str, pod: str) -> Workload:
    """The workload a pod name suggests when no labels say it."""
    found = _POD_OF_CRONJOB.match(pod)
    if found:
        return Workload("Job", namespace, found.group("job"))
    found = _POD_OF_DEPLOYMENT.match(pod)
    if found:
        return Workload("Deployment", namespace, found.group("name"))
    found = _POD_OF_STATEFULSET.match(pod)
    if found:
        return Workload("StatefulSet", namespace, found.group("name"))
    found = _POD_WITH_SUFFIX.match(pod)
    if found:
        name = found.group("name")
        return Workload("DaemonSet" if _NODE_AGENT_NAME.search(name) else "Job", namespace, name)
    return Workload("Pod", namespace, pod)


def _strip_ordinal(pod: str) -> str:
    found = _POD_OF_STATEFULSET.match(pod)
    return found.group("name") if found else pod


def _strip_suffix(pod: str) -> str:
    found = _POD_WITH_SUFFIX.match(pod)
    return found.group("name") if found else pod


def _app(labels: Mapping[str, str]) -> str | None:
    return labels.get("app-kubernetes-io/name") or labels.get("app") or labels.get("k8s-app")


def _named(names: Sequence[str]) -> re.Pattern[str]:
    """A name holding one of `names` as whole dash-separated parts (`prometheus-kube-state-metrics`)."""
    alternatives = "|".join(map(re.escape, names))
    return re.compile(rf"(?:^|[-_])(?:{alternatives})(?:$|[-_])", re.IGNORECASE)


_SHIPPER_NAME = _named(SHIPPERS)
_NODE_AGENT_NAME = _named(NODE_AGENTS)


def is_shipper(*names: str) -> bool:
    """True when any of the names (workload, container, app) is a log shipper or metrics scraper."""
    return any(name and _SHIPPER_NAME.search(name) for name in names)


_NAME = r"[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?"
_NAMESPACE_IN_MESSAGE = (
    re.compile(rf"\bexported_namespace\s*[=:]\s*[\"']?(?P<ns>{_NAME})"),
    re.compile(rf"\bnamespace\s*[=:]\s*[\"']?(?P<ns>{_NAME})"),
)
# (kind, pattern): the first pattern that matches names the workload the line is about.
_WORKLOAD_IN_MESSAGE = (
    ("Job", re.compile(rf"\bjob_name\s*[=:]\s*[\"']?(?P<name>{_NAME})")),
    ("Job", re.compile(rf"\bjob\s*[=:]\s*[\"']?(?P<ns>{_NAME})/(?P<name>{_NAME})")),
    ("Job", re.compile(rf"\b[Jj]ob\s+(?P<ns>{_NAME})/(?P<name>{_NAME})")),
    ("Job", re.compile(rf"\b[Jj]ob\s+[\"']?(?P<name>{_NAME})[\"']?\s+(?:has\s+|was\s+)?failed")),
    ("CronJob", re.compile(rf"\bcronjob\s*[=:]\s*[\"']?(?P<name>{_NAME})")),
    ("StatefulSet", re.compile(rf"\bstatefulset\s*[=:]\s*[\"']?(?P<name>{_NAME})")),
    ("DaemonSet", re.compile(rf"\bdaemonset\s*[=:]\s*[\"']?(?P<name>{_NAME})")),
    ("Deployment", re.compile(rf"\bdeployment\s*[=:]\s*[\"']?(?P<name>{_NAME})")),
    ("Pod", re.compile(rf"\bpod\s*[=:]\s*[\"']?(?:(?P<ns>{_NAME})/)?(?P<name>{_NAME})")),
)


def workload_named_in(message: str, default_namespace: str) -> Workload | None:
    """The workload a shipper's or scraper's line is about, or None when it names none but shippers."""
    namespace = default_namespace
    for pattern in _NAMESPACE_IN_MESSAGE:
        found = pattern.search(message)
        if found:
            namespace = found.group("ns")
            break
    for kind, pattern in _WORKLOAD_IN_MESSAGE:
        for found in pattern.finditer(message):
            name = found.group("name")
            ns = found.groupdict().get("ns") or namespace
            if kind == "Pod":
                workload = workload_of_pod(ns, name)
            elif kind == "Job":
                workload = job_workload(ns, name)
            else:
                workload = Workload(kind, ns, name)
            # A scraper's line often names itself too (pod="kube-state-metrics-…"): that is not the subject.
            if not is_shipper(workload.name):
                return workload
    return None
