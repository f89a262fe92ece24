"""The domain objects every pipeline stage passes to the next: plain data, no I/O.

fetch yields raw documents (dicts) → normalize yields `Event` → fingerprint gives a `Fingerprint`
→ classify gives a `ProblemClass` → aggregate folds events into `Incident`s (one problem in one
15-minute window in one namespace/workload) → detect gives `Peak`s and `Finding`s → propagate gives
`Chain`s. All timestamps are timezone-aware UTC datetimes; windows are half-open [start, end).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

WINDOW = timedelta(minutes=15)
"""The incident window: every incident belongs to one aligned 15-minute window."""

MAX_SAMPLES = 3
"""Samples kept per incident."""

MAX_TRACE_IDS = 50
"""Trace ids kept per incident (evidence for propagation chains; bounded so memory stays flat)."""


FACTS = ("new", "recurring", "regressed")
"""What the pipeline knows of a problem: first seen in this range, seen before, or back after people
resolved it."""
TRIAGES = ("open", "acknowledged", "ignored", "resolved")
"""What people decided about a problem, in the registry; an ignored problem is never alerted."""

SEVERITIES = ("critical", "high", "medium", "low")
"""Every severity, most severe first: the one order of the detectors, the reports, the pages and alerts."""


def severity_rank(severity: str) -> int:
    """0 for critical … 3 for low; an unknown severity ranks as medium, neither hidden nor paging."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else SEVERITIES.index("medium")


def worst_severity(severities: Iterable[str], default: str = "low") -> str:
    """The most severe of `severities` (`default` when there are none)."""
    return min(severities, key=severity_rank, default=default)


def plural(count: int | float, noun: str, nouns: str | None = None) -> str:
    """ "1 namespace", "3 namespaces", "218 events": a count with its noun in the right number."""
    shown = f"{count:.0f}" if isinstance(count, float) else str(count)
    return f"{shown} {noun if shown == '1' else nouns or noun + 's'}"


def against_baseline(observed: float, baseline: float | None, baseline_of: str) -> str:
    """How big against which baseline: "218 events; none in the 7-day baseline", or
    "218 events, 21.8× the 7-day baseline of 10"."""
    events = plural(observed, "event")
    if baseline is None or not baseline_of:
        return events
    if baseline <= 0:
        return f"{events}; none in {baseline_of}"
    return f"{events}, {observed / baseline:.1f}× {baseline_of} of {baseline:g}"


def utc(dt: datetime) -> datetime:
    """Return `dt` as an aware UTC datetime (naive values are taken to be UTC)."""
    tz = dt.tzinfo
    if tz is UTC:  # already, as every time written with Z is read
        return dt
    return dt.replace(tzinfo=UTC) if tz is None else dt.astimezone(UTC)


def window_start(ts: datetime, size: timedelta = WINDOW) -> datetime:
    """The start of the aligned window of `size` that holds `ts`."""
    ts = utc(ts)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((ts - epoch) // size) * size


def isoformat(dt: datetime) -> str:
    """ISO-8601 in UTC with a trailing Z, second precision (the format of every report)."""
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


_JOB_OF_CRONJOB = re.compile(r"^(?P<cronjob>[a-z0-9][-a-z0-9]*?)-\d{8,}$")
# The CronJob controller names each Job `<cronjob>-<scheduled time in minutes since the epoch>`
# (8 digits since 1979), so a Job's CronJob is in its name whatever the shipper wrote.


@dataclass(frozen=True, slots=True)
class Workload:
    """The Kubernetes workload that produced a log line.

    A Job made by a CronJob is the Job (what failed, what `kubectl describe job` shows); its CronJob
    is `cronjob`, read from the Job's name and so the same through every shipper and in every stored
    incident (whose key stays kind, namespace, name). A Job created by hand from a CronJob under
    another name has none."""

    kind: str  # Deployment | StatefulSet | DaemonSet | Job | CronJob | ReplicaSet | Pod | Unknown
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    @property
    def cronjob(self) -> str | None:
        """The CronJob that made this Job, or None."""
        if self.kind != "Job":
            return None
        found = _JOB_OF_CRONJOB.match(self.name)
        return found.group("cronjob") if found else None

    @property
    def label(self) -> str:
        """How people name it: "Job/batch/nightly-settlement-29936280 of CronJob nightly-settlement"."""
        cronjob = self.cronjob
        return f"{self} of CronJob {cronjob}" if cronjob else str(self)


@dataclass(slots=True)
class Event:
    """One error log line, attributed to its workload."""

    timestamp: datetime
    namespace: str
    pod: str
    container: str
    workload: Workload
    app: str  # the application name (app label, else the workload name)
    level: str  # lower-case: error, fatal, critical, …
    message: str
    error_type: str | None = None
    trace_id: str | None = None
    doc_id: str | None = None


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A stable identity for all messages that differ only in their variable parts."""

    key: str  # 16 lower-case hex characters; a pure function of the message
    template: str  # the masked message, e.g. "Connection to <HOST> refused after <NUM> ms"
    exception_type: str | None = None  # e.g. "java.sql.SQLTransientConnectionException"


@dataclass(frozen=True, slots=True)
class ProblemClass:
    """What classify decides for a fingerprint in its context: the problem id and its hints."""

    category: str  # DATABASE, NETWORK, TIMEOUT, AUTH, BUSINESS, INFRA, EXTERNAL, CONFIG, APPLICATION …
    flow: str  # business flow, e.g. card_servicing
    error_class: str  # e.g. connection_pool
    severity: str = "medium"  # critical | high | medium | low
    remediation: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.category}:{self.flow}:{self.error_class}"


@dataclass(slots=True)
class Incident:
    """One problem in one 15-minute window in one namespace/workload, with its count and samples."""

    problem_id: str
    category: str
    flow: str
    error_class: str
    severity: str
    window_start: datetime
    window_end: datetime
    namespace: str
    workload_kind: str
    workload_name: str
    count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    samples: list[str] = field(default_factory=list)  # raw (unredacted) messages, ≤ MAX_SAMPLES
    fingerprints: dict[str, str] = field(default_factory=dict)  # fingerprint key → template
    trace_ids: list[str] = field(default_factory=list)  # ≤ MAX_TRACE_IDS, in order of appearance
    apps: list[str] = field(default_factory=list)

    @property
    def workload(self) -> Workload:
        return Workload(self.workload_kind, self.namespace, self.workload_name)

    @property
    def key(self) -> tuple[str, datetime, str, str, str]:
        return (self.problem_id, self.window_start, self.namespace, self.workload_kind, self.workload_name)


@dataclass(slots=True)
class InputStats:
    """What the input stages saw: documents read, what was skipped, by reason, and what was joined: every
    document read is accepted, skipped or joined to the one before it."""

    fetched: int = 0
    accepted: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason → count
    truncated: int = 0  # messages cut to the maximum length but kept
    joined_lines: int = 0  # records that continue the one before them (a split stack trace), joined to it

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def merge(self, other: InputStats) -> None:
        """Add another part's or range's counts to these."""
        self.fetched += other.fetched
        self.accepted += other.accepted
        self.truncated += other.truncated
        self.joined_lines += other.joined_lines
        for reason, n in other.skipped.items():
            self.skipped[reason] = self.skipped.get(reason, 0) + n


VERDICTS = ("ok", "degraded", "failed")
"""How far an analysed range can be trusted, best first. `degraded`: analysed, but part of what should
have been read was not (too many unreadable documents, a registry people cannot edit). `failed`: the
range could not be read at all (source unreachable, a failed shard, an index pattern matching no
index, no logs where logs are expected) and says nothing about the problems in it."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The verdict on one analysed range (a day or a window) or on a whole run, with its reasons."""

    status: str = "ok"  # one of VERDICTS
    reasons: tuple[str, ...] = ()
    label: str = ""  # the range as people name it: "2026-12-02" or a window's start; "" for a run

    @classmethod
    def worst(cls, verdicts: Iterable[Verdict], label: str = "") -> Verdict:
        """One verdict for several (a run's ranges): the worst status, and the reasons of the verdicts
        that are not ok, each once, named by the ranges it holds for when there are several."""
        verdicts = list(verdicts)
        status = max((v.status for v in verdicts), key=VERDICTS.index, default="ok")
        several = sum(1 for v in verdicts if v.label) > 1
        where: dict[str, list[str]] = {}
        for v in verdicts:
            for reason in v.reasons if v.status != "ok" else ():
                labels = where.setdefault(reason, [])
                if several and v.label and v.label != label:
                    labels.append(v.label)
        reasons = tuple(
            f"{', '.join(labels)}: {reason}" if labels else reason for reason, labels in where.items()
        )
        return cls(status, reasons, label)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def headline(self) -> str:
        """The first line people read: "Analysis FAILED for 2026-12-02: Elasticsearch unreachable"."""
        where = f" for {self.label}" if self.label else ""
        if self.status == "ok":
            return f"Analysis complete{where}."
        word = "FAILED" if self.status == "failed" else "DEGRADED"
        return f"Analysis {word}{where}: " + "; ".join(self.reasons or ("no reason recorded",))


@dataclass(slots=True)
class Analysis:
    """Everything aggregated from one analysed range [start, end): the input of detect/propagate."""

    start: datetime
    end: datetime
    incidents: list[Incident]
    # per-minute event counts, keyed by (problem_id, namespace) → {minute start: count}
    minute_counts: dict[tuple[str, str], dict[datetime, int]]
    stats: InputStats


@dataclass(frozen=True, slots=True)
class Peak:
    """An unusual rate: a spike (a window far above its baseline) or a burst (a sharp surge inside it)."""

    kind: str  # spike | burst
    scope: str  # problem | namespace
    scope_id: str  # the problem id or the namespace
    window_start: datetime
    window_end: datetime
    observed: float  # events in the window (spike) or in the surge minute(s) (burst)
    baseline: float  # the expected value the observation is compared with
    ratio: float  # observed / max(baseline, 1)
    problem_id: str | None = None
    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class ChainRef:
    """The propagation chain a finding's problem is a member of: where the failure started and every
    workload it reached, so an alert names the root and the whole spread (core.propagate)."""

    root: str  # the root member's problem id
    origin: str  # the root member's workload, "Kind/namespace/name"
    first_seen: datetime  # the root member's first event
    workloads: tuple[str, ...]  # every member's workload, "Kind/namespace/name"

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(sorted({w.split("/")[1] for w in self.workloads if w.count("/") >= 2}))


@dataclass(frozen=True, slots=True)
class Finding:
    """A detector's verdict worth telling people about."""

    kind: str  # new | regression | spike | burst | cross_namespace
    problem_id: str  # for namespace-scoped peaks: "namespace:<name>"
    window_start: datetime
    severity: str  # critical | high | medium | low
    detail: str
    namespaces: tuple[str, ...] = ()
    observed: float | None = None  # the events it is about (a peak's observed count, a new problem's)
    baseline: float | None = None  # what they are compared with; None: nothing to compare (new)
    baseline_of: str = ""  # which baseline: "the 7-day baseline per 15-minute window"
    first_seen: datetime | None = None  # the first of its events
    origin: str = ""  # the workload of that first event, "Kind/namespace/name"
    workloads: tuple[str, ...] = ()  # every workload with its events, "Kind/namespace/name"
    chain: ChainRef | None = None  # the chain its problem is a member of, if any


def finding_to_dict(finding: Finding) -> dict[str, Any]:
    """A finding as JSON: in the report (docs/report-schema.md) and in the store's pending alerts."""
    return {
        "kind": finding.kind,
        "problem_id": finding.problem_id,
        "window_start": isoformat(finding.window_start),
        "severity": finding.severity,
        "detail": finding.detail,
        "namespaces": list(finding.namespaces),
        "observed": finding.observed,
        "baseline": finding.baseline,
        "baseline_of": finding.baseline_of,
        "first_seen": isoformat(finding.first_seen) if finding.first_seen else None,
        "origin": finding.origin,
        "workloads": list(finding.workloads),
        "chain": None
        if finding.chain is None
        else {
            "root": finding.chain.root,
            "origin": finding.chain.origin,
            "first_seen": isoformat(finding.chain.first_seen),
            "workloads": list(finding.chain.workloads),
        },
    }


def _time(text: str) -> datetime:
    return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def finding_from_dict(document: Mapping[str, Any]) -> Finding:
    """The inverse of `finding_to_dict`; documents stored before the magnitude fields read without them."""
    first_seen = document.get("first_seen")
    return Finding(
        kind=document["kind"],
        problem_id=document["problem_id"],
        window_start=_time(document["window_start"]),
        severity=document["severity"],
        detail=document["detail"],
        namespaces=tuple(document["namespaces"]),
        observed=document.get("observed"),
        baseline=document.get("baseline"),
        baseline_of=document.get("baseline_of", ""),
        first_seen=_time(first_seen) if first_seen else None,
        origin=document.get("origin", ""),
        workloads=tuple(document.get("workloads", ())),
        chain=None
        if not (chain := document.get("chain"))
        else ChainRef(chain["root"], chain["origin"], _time(chain["first_seen"]), tuple(chain["workloads"])),
    )


@dataclass(frozen=True, slots=True)
class ProblemState:
    """What is already known about a problem before this analysis: its sightings from the store and
    people's triage from the registry (docs/data-model.md, "Fact and triage")."""

    problem_id: str
    first_seen: datetime
    last_seen: datetime
    triage: str = "open"  # one of TRIAGES; an ignore whose `until` has passed reads as open
    resolved_at: datetime | None = None
    until: datetime | None = None  # an ignore's end; None: until people change it


@dataclass(slots=True)
class Detection:
    peaks: list[Peak]
    findings: list[Finding]


@dataclass(frozen=True, slots=True)
class ChainMember:
    problem_id: str
    namespace: str
    workload: str  # "Kind/namespace/name"
    first_seen: datetime
    count: int


@dataclass(frozen=True, slots=True)
class Chain:
    """Related incidents, in order of first occurrence, with the most likely root and why."""

    members: tuple[ChainMember, ...]
    root: ChainMember
    evidence: tuple[str, ...]
    confidence: float  # 0..1


@dataclass(slots=True)
class History:
    """Stored counts for the baseline period [start, end) before an analysed range.

    Sparse: a window with no incidents for a scope is absent and counts as zero.
    """

    start: datetime
    end: datetime
    problem_counts: dict[str, dict[datetime, int]]  # problem_id → window_start → count
    namespace_counts: dict[str, dict[datetime, int]]  # namespace → window_start → count


@dataclass(slots=True)
class ProblemRecord:
    """What the store knows about one problem over all time: the machine side of a registry entry."""

    problem_id: str
    category: str
    flow: str
    error_class: str
    severity: str
    first_seen: datetime
    last_seen: datetime
    total_count: int
    namespaces: list[str]
    workloads: list[str]  # "Kind/namespace/name"
    templates: list[str]
    sample: str  # redacted at rest unless STORE_RAW_SAMPLES; redacted again before it leaves the cluster
