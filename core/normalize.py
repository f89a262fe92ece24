"""Normalize: turn raw Elasticsearch documents into `Event`s attributed to the workload that produced them.

Layouts. A `FieldMap` lists, per event field, the document paths to try in order. Two presets work
out of the box and are auto-detected per document unless one is forced: `ECS` (Filebeat / Elastic
Agent: `kubernetes.namespace`, `kubernetes.pod.name`, `log.level`, `message` …) and `FLUENT_BIT`
(`kubernetes.namespace_name`, `kubernetes.pod_name`, `log` …). Paths work on nested objects, dotted
flat keys and any mix of both. Label keys are compared in a canonical form in which `.`, `_` and
`-` are equal, because Filebeat de-dots `app.kubernetes.io/name` into `app_kubernetes_io/name`.

Bad input never raises: the document is skipped and counted in `InputStats.skipped` under one of
`SKIP_REASONS`. Only error-ish levels (`ERROR_LEVELS`) are kept; without a level field the level is
read from the message (`ERROR`, `[error]`, `level=error`, klog `E0102`, a traceback …).

Workload attribution, first rule that applies:
1. Owner fields the shipper added (ECS `kubernetes.deployment.name`, `kubernetes.job.name` …).
2. Labels: `job-name` → Job; `statefulset.kubernetes.io/pod-name` → StatefulSet;
   `controller-revision-hash` + `pod-template-generation` → DaemonSet; `pod-template-hash` →
   Deployment (pod name without `-<hash>-<5 chars>`).
3. Pod-name patterns: `<name>-<8+ digits>-<5>` → Job `<name>-<8+ digits>` (made by a CronJob);
   `<name>-<hash 8-10>-<5>` → Deployment; `<name>-<ordinal>` → StatefulSet; `<name>-<5>` →
   DaemonSet when `<name>` is a known node agent (`NODE_AGENTS`), else Job; anything else → kind
   `Pod` named after the pod.
A failing Job is attributed to the Job itself (`Job/<namespace>/<job name>`, e.g.
`nightly-settlement-29384720`), the object an operator inspects with `kubectl describe job`; the
problem id (what the registry keys on) does not contain the workload, so a new Job name every run
adds a workload to the problem, not a new problem.

Shippers and scrapers (`SHIPPERS`: fluent-bit, kube-state-metrics, prometheus …) log lines that are
about other workloads. When the emitting workload, container or app is one of them and the message
names a workload (`job_name=`, `job="ns/name"`, `Job ns/name`, `job <name> failed`,
`deployment=`/`statefulset=`/`daemonset=`/`cronjob=`, `pod=`), the event is attributed to that
workload, in the namespace the message names (`exported_namespace=`, `namespace=`, `ns/name`), else
the emitter's. A shipper's own errors ("failed to flush chunk") name no workload and stay with it.
The event's `pod` and `container` always stay the emitter's, so the line can be found again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from core.model import Event, InputStats, Workload, utc

SKIP_REASONS = (
    "not_an_object",
    "missing_timestamp",
    "bad_timestamp",
    "missing_namespace",
    "missing_message",
    "message_too_large",
    "binary_message",
    "not_error_level",
)

ERROR_LEVELS = frozenset({"error", "err", "fatal", "critical", "crit", "severe", "alert", "emerg", "panic"})

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


@dataclass(frozen=True, slots=True)
class FieldMap:
    """Where each event field lives in a document: candidate paths, the first one present wins."""

    timestamp: tuple[str, ...]
    namespace: tuple[str, ...]
    pod: tuple[str, ...]
    container: tuple[str, ...]
    labels: tuple[str, ...]  # objects (or dotted-key prefixes) holding the pod labels
    level: tuple[str, ...]
    message: tuple[str, ...]
    error_type: tuple[str, ...]
    trace_id: tuple[str, ...]
    owners: tuple[tuple[str, str], ...] = ()  # (workload kind, path of its name), most specific first

    @staticmethod
    def preset(name: str) -> FieldMap:
        """The preset called `name`: `ecs` or `fluent-bit`."""
        try:
            return PRESETS[name.lower().replace("_", "-")]
        except KeyError:
            raise ValueError(f"unknown field layout {name!r}; expected one of {', '.join(PRESETS)}") from None

    def override(self, paths: Mapping[str, str | Sequence[str]]) -> FieldMap:
        """A copy with some fields' paths replaced; a string may list several paths separated by commas."""
        known = {f.name for f in fields(self)} - {"owners"}
        unknown = sorted(set(paths) - known)
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}")
        changes = {name: _paths(value) for name, value in paths.items()}
        return replace(self, **changes)


def _paths(value: str | Sequence[str]) -> tuple[str, ...]:
    parts = value.split(",") if isinstance(value, str) else value
    return tuple(part.strip() for part in parts if part.strip())


ECS = FieldMap(
    timestamp=("@timestamp", "timestamp"),
    namespace=("kubernetes.namespace", "kubernetes.namespace_name"),
    pod=("kubernetes.pod.name", "kubernetes.pod_name"),
    container=("kubernetes.container.name", "container.name", "kubernetes.container_name"),
    labels=("kubernetes.labels",),
    level=("log.level", "level"),
    message=("message", "log"),
    error_type=("error.type",),
    trace_id=("trace.id", "trace_id"),
    owners=(
        ("CronJob", "kubernetes.cronjob.name"),
        ("Job", "kubernetes.job.name"),
        ("StatefulSet", "kubernetes.statefulset.name"),
        ("DaemonSet", "kubernetes.daemonset.name"),
        ("Deployment", "kubernetes.deployment.name"),
    ),
)

FLUENT_BIT = FieldMap(
    timestamp=("@timestamp", "time", "timestamp"),
    namespace=("kubernetes.namespace_name",),
    pod=("kubernetes.pod_name",),
    container=("kubernetes.container_name",),
    labels=("kubernetes.labels",),
    level=("level", "severity", "log.level", "loglevel"),
    message=("log", "message", "msg"),
    error_type=("error_type", "error.type", "exception.type"),
    trace_id=("trace_id", "traceId", "trace.id"),
)

PRESETS = {"ecs": ECS, "fluent-bit": FLUENT_BIT}


def normalize(
    docs: Iterable[Any],
    stats: InputStats,
    fields: FieldMap | None = None,
    max_message_bytes: int = 65536,
) -> Iterator[Event]:
    """Yield one `Event` per usable document; count the others in `stats.skipped` by reason."""
    for doc in docs:
        event = to_event(doc, stats, fields, max_message_bytes)
        if event is not None:
            stats.accepted += 1
            yield event


def to_event(
    doc: Any, stats: InputStats, fields: FieldMap | None = None, max_message_bytes: int = 65536
) -> Event | None:
    """The event of one document (a `_source` or a whole hit), or None after counting why it was skipped."""
    doc_id = None
    if isinstance(doc, dict) and "_source" in doc:
        doc_id = doc.get("_id") if isinstance(doc.get("_id"), str) else None
        doc = doc["_source"]
    if not isinstance(doc, dict):
        stats.skip("not_an_object")
        return None
    flat = flatten(doc)
    fm = fields or detect_layout(flat)

    raw_ts = _first(flat, fm.timestamp)
    if raw_ts is None:
        stats.skip("missing_timestamp")
        return None
    timestamp = parse_timestamp(raw_ts)
    if timestamp is None:
        stats.skip("bad_timestamp")
        return None
    namespace = _text(flat, fm.namespace)
    if not namespace:
        stats.skip("missing_namespace")
        return None
    message = _first(flat, fm.message)
    if not isinstance(message, str) or not message.strip():
        stats.skip("missing_message")
        return None
    message = valid_text(message)
    # A UTF-8 character is at most 4 bytes, so most messages need no encoding to be measured.
    if len(message) * 4 > max_message_bytes and len(message.encode("utf-8", "replace")) > max_message_bytes:
        stats.skip("message_too_large")
        return None
    if is_binary(message):
        stats.skip("binary_message")
        return None
    level = _text(flat, fm.level)
    level = level.lower() if level else infer_level(message)
    if level not in ERROR_LEVELS:
        stats.skip("not_error_level")
        return None

    pod = _text(flat, fm.pod) or ""
    container = _text(flat, fm.container) or ""
    labels = tuple(pod_labels(flat, fm.labels).items())
    owners = tuple(
        (kind, name) for kind, path in fm.owners if path in flat and (name := _text(flat, (path,)))
    )
    workload, app, shipper = _attributed(namespace, pod, container, labels, owners)
    if shipper:
        target = workload_named_in(message, namespace)
        if target is not None:
            workload, app = target, target.name
    return Event(
        timestamp=timestamp,
        namespace=workload.namespace,
        pod=pod,
        container=container,
        workload=workload,
        app=app,
        level=level,
        message=message,
        error_type=_text(flat, fm.error_type),
        trace_id=_text(flat, fm.trace_id),
        doc_id=doc_id,
    )


@lru_cache(maxsize=ATTRIBUTION_CACHE)
def _attributed(
    namespace: str,
    pod: str,
    container: str,
    labels: tuple[tuple[str, str], ...],
    owners: tuple[tuple[str, str], ...],
) -> tuple[Workload, str, bool]:
    """(workload, app, whether it is a shipper) of a pod: a pure function of few distinct inputs (the
    pods of the range), so it is worked out once per pod instead of once per event."""
    label_map = dict(labels)
    workload = attribute(namespace, pod, container, label_map, dict(owners))
    app = _app(label_map) or workload.name
    return workload, app, is_shipper(workload.name, container, app)


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted-key view of a document, so nested objects and dotted flat keys read the same way.

    An object stays under its own path too, so a field holding an object reads as a wrong type, not as absent.
    """
    flat: dict[str, Any] = {}
    _flatten_into(flat, doc, prefix)
    return flat


def _flatten_into(flat: dict[str, Any], doc: Mapping[str, Any], prefix: str) -> None:
    # One dict filled in document order: the same keys, values and order as merging one dict per level.
    for key, value in doc.items():
        path = prefix + key if prefix else key
        flat[path] = value
        if isinstance(value, dict):
            _flatten_into(flat, value, path + ".")


def detect_layout(flat: Mapping[str, Any]) -> FieldMap:
    """Fluent Bit when its Kubernetes keys (or a string `log`) are there, else ECS."""
    if "kubernetes.namespace_name" in flat or "kubernetes.pod_name" in flat:
        return FLUENT_BIT
    if "kubernetes.namespace" not in flat and isinstance(flat.get("log"), str) and "message" not in flat:
        return FLUENT_BIT
    return ECS


_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_EPOCH_MILLIS_FROM = 100_000_000_000  # 1973 in millis, 5138 in seconds: larger numbers are millis


def parse_timestamp(value: Any) -> datetime | None:
    """An aware UTC datetime from an ISO-8601 string (Z, offset or naive = UTC) or epoch millis/seconds."""
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER.fullmatch(text):
            value = float(text)
        else:
            try:
                return utc(datetime.fromisoformat(text))
            except (ValueError, OverflowError):  # in UTC before year 1 or after 9999
                return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = value / 1000 if abs(value) >= _EPOCH_MILLIS_FROM else value
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_text(text: str) -> str:
    """`text` with lone UTF-16 surrogates written as U+FFFD. JSON can carry them (`"\\ud800"`, e.g. from
    a string cut in the middle of an emoji), and no file, database or web page takes them as UTF-8."""
    if text.isascii() or _LONE_SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd]")


def is_binary(message: str) -> bool:
    """True for NUL bytes or a message of which more than a tenth is control or undecodable characters."""
    if "\x00" in message:
        return True
    if _CONTROL.search(message) is None:  # the common case, without building a list
        return False
    return len(_CONTROL.findall(message)) * 10 > len(message)


_LEVEL_WORDS = "error|err|fatal|critical|crit|severe|alert|emerg|panic|warning|warn|info|notice|debug|trace"
_LEVEL_IN_MESSAGE = (
    re.compile(rf"\b(?:level|severity|lvl)[\"']?\s*[=:]\s*[\"']?({_LEVEL_WORDS})\b", re.IGNORECASE),
    re.compile(rf"\[\s*({_LEVEL_WORDS})\s*\]", re.IGNORECASE),
    re.compile(
        r"\b(ERROR|ERR|FATAL|CRITICAL|CRIT|SEVERE|PANIC|EMERG|WARNING|WARN|INFO|NOTICE|DEBUG|TRACE)\b"
    ),
)
_KLOG = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d\d")
_KLOG_LEVELS = {"I": "info", "W": "warning", "E": "error", "F": "fatal"}
_ERROR_SHAPE = re.compile(r"Traceback \(most recent call last\)|\b[A-Z]\w*(?:Exception|Error)\b|\bpanic:")


def infer_level(message: str) -> str | None:
    """The level a message states about itself, or `error` for a bare exception or traceback."""
    head = message[:512]
    klog = _KLOG.match(head)
    if klog:
        return _KLOG_LEVELS[klog.group(1)]
    for pattern in _LEVEL_IN_MESSAGE:
        found = pattern.search(head)
        if found:
            return found.group(1).lower()
    return "error" if _ERROR_SHAPE.search(message) else None


@lru_cache(maxsize=4096)  # a cluster has few distinct label keys; each is met on every event
def label_key(key: str) -> str:
    """The canonical form of a label key: lower case, `.` and `_` written as `-`."""
    return key.lower().replace(".", "-").replace("_", "-")


def pod_labels(flat: Mapping[str, Any], paths: tuple[str, ...]) -> dict[str, str]:
    """The pod labels under any of `paths`, keyed by canonical label key."""
    labels: dict[str, str] = {}
    for key, label in _label_keys(tuple(flat), paths):
        value = flat[key]
        if _is_scalar(value):
            labels[label] = valid_text(str(value))
    return labels


@lru_cache(maxsize=1024)
def _label_keys(keys: tuple[str, ...], paths: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(key, canonical label key) of the `keys` under any of `paths`, in order. The documents of one
    shipper share their keys (15 key sets in the 100k demo), so the keys are not searched per
    document: 4.7 → 2.5 µs per document."""
    found = []
    for path in paths:
        prefix = path + "."
        found.extend((key, label_key(key[len(prefix) :])) for key in keys if key.startswith(prefix))
    return tuple(found)


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
        kind, name = next(iter(owners.items()))
        return job_workload(namespace, name) if kind == "Job" else Workload(kind, namespace, name)
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


def _first(flat: Mapping[str, Any], paths: Sequence[str]) -> Any:
    for path in paths:
        value = flat.get(path)
        if value is not None and value != "":
            return value
    return None


def _text(flat: Mapping[str, Any], paths: Sequence[str]) -> str | None:
    """The first of `paths` holding a string (numbers are accepted as text), stripped; None otherwise."""
    value = _first(flat, paths)
    return (valid_text(str(value).strip()) or None) if _is_scalar(value) else None


def _is_scalar(value: Any) -> bool:
    kind = type(value)
    if kind is str or kind is int or kind is float:  # what JSON gives: decided without isinstance
        return True
    return isinstance(value, str | int | float) and not isinstance(value, bool)
