"""Alert incidents: the critical findings that belong together, one alert each, and what to send for them.

`group()` folds the findings of the pending windows into `AlertIncident`s: a problem's and its namespace's
spike or burst, "new" and "spike" of one problem, and one problem class across namespaces (the members
of one chain) are one incident with one severity and one headline. `decide()` compares them with the
notification log (the subjects of earlier alert messages, see `subject()`): a new incident starts, a
known one escalates (more severe, more namespaces), is updated (more workloads), is reminded after
`repeat`, or is held; one without findings for `resolve_windows` windows is resolved.
Pure: no I/O; the log is handed in (docs/publishing.md, "Alert incidents").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.model import (
    WINDOW,
    Finding,
    against_baseline,
    isoformat,
    plural,
    severity_rank,
    utc,
    worst_severity,
)

NAMESPACE_SCOPE = "namespace:"
STATES = ("new", "escalated", "updated", "ongoing", "resolved")
"""What an alert says about its incident: started, got worse, spread to more workloads, is still active
after the repeat interval, or ended. A held incident (active, nothing new) is noted, not sent."""

KIND_WORDS = {
    "new": "new problem",
    "regression": "regression",
    "spike": "spike",
    "burst": "burst",
    "cross_namespace": "cross-namespace",
}


@dataclass(frozen=True, slots=True)
class AlertIncident:
    """One incident as an alert tells it: what, where it started, what it affects, since when, how big."""

    key: str  # stable across windows: the problem where it started (for the notification log)
    severity: str
    members: tuple[str, ...]  # the problem ids of its findings ("namespace:<ns>" for namespace scope)
    kinds: tuple[str, ...]
    namespaces: tuple[str, ...]
    workloads: tuple[str, ...]
    origin: str  # the workload of the first event, "Kind/namespace/name" ("" when unknown)
    started_at: datetime  # the first event (or the first window when the findings do not say)
    last_window: datetime  # the start of the latest window with a finding
    magnitude: str  # "218 events; none in the 7-day baseline"

    @property
    def what(self) -> str:
        """The problem, or "namespace payments" for a namespace-scope incident."""
        if self.key.startswith(NAMESPACE_SCOPE):
            return f"namespace {self.key.removeprefix(NAMESPACE_SCOPE)}"
        return self.key

    def kind_text(self) -> str:
        """ "spike, burst", "new problem, cross-namespace": cross-namespace only with ≥ 2 namespaces."""
        kinds = [k for k in self.kinds if k != "cross_namespace" or len(self.namespaces) >= 2]
        return ", ".join(KIND_WORDS.get(k, k) for k in kinds)

    def headline(self) -> str:
        """What, where it started, what it affects, since when, how big against which baseline."""
        where = f" in {self.origin}" if self.origin else ""
        affected = []
        if self.namespaces:
            affected.append(f"{plural(len(self.namespaces), 'namespace')} ({', '.join(self.namespaces)})")
        if self.workloads:
            affected.append(plural(len(self.workloads), "workload"))
        affects = f"; affects {', '.join(affected)}" if affected else ""
        return (
            f"{self.what} ({self.kind_text()}): started {isoformat(self.started_at)}{where}"
            f"{affects}; {self.magnitude}"
        )


@dataclass(frozen=True, slots=True)
class AlertUpdate:
    """What one alert says about one incident: its state, and for an escalation what it was before."""

    state: str  # one of STATES
    incident: AlertIncident
    previous_severity: str | None = None
    previous_namespaces: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One notification log entry: when it was made, whether it was sent, and its incidents' subjects."""

    created_at: datetime
    sent: bool  # False: noted only (a held incident, a resolution not sent)
    subject: Mapping[str, object]


def group(findings: Iterable[Finding]) -> list[AlertIncident]:
    """The findings as incidents, the earliest first."""
    findings = list(findings)
    parent = list(range(len(findings)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(a: int, b: int) -> None:
        parent[root(a)] = root(b)

    # The members of one propagation chain are one incident, even across error classes (a database
    # refusing connections, its clients' pools running dry).
    first_of_chain: dict[str, int] = {}
    for i, finding in enumerate(findings):
        if finding.chain is not None:
            first = first_of_chain.setdefault(finding.chain.root, i)
            join(i, first)
    first_of_class: dict[str, int] = {}
    for i, finding in enumerate(findings):
        if finding.problem_id.startswith(NAMESPACE_SCOPE):
            continue
        problem_class = _problem_class(finding.problem_id)
        if problem_class in first_of_class:
            join(i, first_of_class[problem_class])
        else:
            first_of_class[problem_class] = i
    # A namespace's spike or burst joins the problems in that namespace (and its other findings) of
    # its own or the next window: the namespace surges because of them. Two problems sharing a
    # namespace are not joined by that alone, nor a namespace's surges hours apart (a catch-up run
    # holds a day of windows).
    for i, finding in enumerate(findings):
        if not finding.problem_id.startswith(NAMESPACE_SCOPE):
            continue
        namespace = finding.problem_id.removeprefix(NAMESPACE_SCOPE)
        for j, other in enumerate(findings):
            near = abs(utc(other.window_start) - utc(finding.window_start)) <= WINDOW
            if near and (namespace in other.namespaces or other.problem_id == finding.problem_id):
                join(i, j)
    groups: dict[int, list[Finding]] = {}
    for i, finding in enumerate(findings):
        groups.setdefault(root(i), []).append(finding)
    incidents = [_incident(members) for members in groups.values()]
    return sorted(incidents, key=lambda i: (i.started_at, i.key))


def _problem_class(problem_id: str) -> str:
    """Category and error class: the flow derives from the namespace, so one failure spreading across
    namespaces has one problem id per flow (and cross-namespace findings name it "CATEGORY:*:class")."""
    parts = problem_id.split(":")
    return f"{parts[0]}:{parts[-1]}" if len(parts) >= 3 else problem_id


def _incident(findings: list[Finding]) -> AlertIncident:
    def started(f: Finding) -> datetime:
        return utc(f.first_seen) if f.first_seen else utc(f.window_start)

    problems = [f for f in findings if not f.problem_id.startswith(NAMESPACE_SCOPE)]
    first = min(problems or findings, key=lambda f: (started(f), f.problem_id))
    named = [f for f in findings if f.origin]
    origin = min(named, key=lambda f: (started(f), f.problem_id)).origin if named else ""
    # A chain's root is where the failure started, even when its own finding is not among these.
    chain = min((f.chain for f in findings if f.chain), key=lambda c: (c.first_seen, c.root), default=None)
    # The size of the problem's own finding reads better than its namespace's, which sums other problems.
    sized = [f for f in problems or findings if f.observed is not None]
    biggest = max(sized, key=lambda f: (f.baseline is not None, f.observed or 0.0), default=None)
    magnitude = (
        against_baseline(biggest.observed or 0.0, biggest.baseline, biggest.baseline_of)
        if biggest
        else first.detail
    )
    key = first.problem_id
    if "*" in key:  # a cross-namespace class across flows: name the problem where it started
        real = [f for f in problems if "*" not in f.problem_id]
        key = min(real, key=lambda f: (started(f), f.problem_id)).problem_id if real else key
    if chain is not None:
        key, origin = chain.root, chain.origin or origin
    reached = [f.chain for f in findings if f.chain]
    return AlertIncident(
        key=key,
        severity=worst_severity(f.severity for f in findings),
        members=tuple(sorted({f.problem_id for f in findings})),
        kinds=tuple(k for k in KIND_WORDS if any(f.kind == k for f in findings)),
        namespaces=tuple(
            sorted(
                {ns for f in findings for ns in f.namespaces if ns}
                | {ns for c in reached for ns in c.namespaces}
            )
        ),
        workloads=tuple(
            sorted({w for f in findings for w in f.workloads} | {w for c in reached for w in c.workloads})
        ),
        origin=origin,
        # Where it started is the chain's root, when it is one; a finding joined by its namespace's
        # surge may have begun earlier without being its start.
        started_at=utc(chain.first_seen) if chain else min(started(f) for f in findings),
        last_window=max(utc(f.window_start) for f in findings),
        magnitude=magnitude,
    )


def subject(update: AlertUpdate) -> dict[str, object]:
    """An incident as the notification log keeps it."""
    incident = update.incident
    return {
        "incident": incident.key,
        "state": update.state,
        "severity": incident.severity,
        "members": list(incident.members),
        "namespaces": list(incident.namespaces),
        "workloads": list(incident.workloads),
        "origin": incident.origin,
        "started_at": isoformat(incident.started_at),
        "last_window": isoformat(incident.last_window),
        "magnitude": incident.magnitude,
        "kinds": list(incident.kinds),
    }


def _from_subject(entry: Mapping[str, object]) -> AlertIncident:
    def time(name: str) -> datetime:
        return utc(datetime.fromisoformat(str(entry[name]).replace("Z", "+00:00")))

    def names(name: str) -> tuple[str, ...]:
        value = entry.get(name) or ()
        return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()

    return AlertIncident(
        key=str(entry["incident"]),
        severity=str(entry["severity"]),
        members=names("members"),
        kinds=names("kinds"),
        namespaces=names("namespaces"),
        workloads=names("workloads"),
        origin=str(entry.get("origin", "")),
        started_at=time("started_at"),
        last_window=time("last_window"),
        magnitude=str(entry.get("magnitude", "")),
    )


@dataclass(frozen=True, slots=True)
class _Known:
    incident: AlertIncident
    state: str
    last_sent: datetime | None


def _known(log: Sequence[LogEntry]) -> dict[str, _Known]:
    """Per incident key, its latest state in the log and when a message about it was last sent."""
    known: dict[str, _Known] = {}
    for entry in sorted(log, key=lambda e: e.created_at):
        incidents = entry.subject.get("incidents")
        for item in incidents if isinstance(incidents, list) else ():
            if not isinstance(item, Mapping) or "incident" not in item:
                continue
            key = str(item["incident"])
            before = known.get(key)
            last_sent = utc(entry.created_at) if entry.sent else (before.last_sent if before else None)
            known[key] = _Known(_from_subject(item), str(item.get("state", "new")), last_sent)
    return known


def decide(
    incidents: Sequence[AlertIncident],
    log: Sequence[LogEntry],
    now: datetime,
    *,
    through: datetime,
    repeat: timedelta,
    resolve_windows: int,
) -> tuple[list[AlertUpdate], list[AlertUpdate]]:
    """What to send now and what only to note: (sent, noted).

    `through`: the end of the latest analysed window. An incident is continued by a logged one that is
    not resolved and shares a member (it keeps that key); it is resolved once `through` is
    `resolve_windows` windows past its last window with a finding.
    """
    known = _known(log)
    active = {key: k for key, k in known.items() if k.state != "resolved"}
    send: list[AlertUpdate] = []
    note: list[AlertUpdate] = []
    continued: set[str] = set()
    for incident in incidents:
        matches = [k for k in active.values() if set(k.incident.members) & set(incident.members)]
        if incident.key in active:
            matches.insert(0, active[incident.key])
        if not matches:
            send.append(AlertUpdate("new", incident))
            continue
        before = matches[0]
        merged = _continue(before.incident, incident)
        continued.add(merged.key)
        worse = severity_rank(merged.severity) < severity_rank(before.incident.severity)
        spread = not set(merged.namespaces) <= set(before.incident.namespaces)
        if worse or spread:
            send.append(
                AlertUpdate("escalated", merged, before.incident.severity, before.incident.namespaces)
            )
        elif not set(merged.workloads) <= set(before.incident.workloads):
            send.append(AlertUpdate("updated", merged))
        elif before.last_sent is None or utc(now) - before.last_sent >= repeat:
            send.append(AlertUpdate("ongoing", merged))
        else:
            note.append(AlertUpdate("ongoing", merged))
    for key, k in sorted(active.items()):
        if key in continued:
            continue
        if utc(through) >= k.incident.last_window + WINDOW * (1 + resolve_windows):
            send.append(AlertUpdate("resolved", k.incident))
    return send, note


def _continue(before: AlertIncident, now: AlertIncident) -> AlertIncident:
    """An incident seen again: the logged key and start, everything it has affected so far."""
    return AlertIncident(
        key=before.key,
        severity=now.severity,
        members=tuple(sorted({*before.members, *now.members})),
        kinds=tuple(k for k in KIND_WORDS if k in before.kinds or k in now.kinds),
        namespaces=tuple(sorted({*before.namespaces, *now.namespaces})),
        workloads=tuple(sorted({*before.workloads, *now.workloads})),
        origin=before.origin or now.origin,
        started_at=min(before.started_at, now.started_at),
        last_window=max(before.last_window, now.last_window),
        magnitude=now.magnitude,
    )
