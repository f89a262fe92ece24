"""Aggregation: fold a stream of classified events into incidents and per-minute counts.

Memory grows with distinct problems × windows (and minutes for burst detection), never with events.
The result does not depend on the order events arrive in (a sliced Elasticsearch fetch interleaves
them): samples are the earliest distinct messages, trace ids, fingerprints and apps the smallest
values — bounded sets chosen by value, not by arrival. So the parts of a range can be aggregated
apart (in worker processes) and merged into exactly what one aggregator would have counted.
"""

from __future__ import annotations

from bisect import insort
from datetime import UTC, datetime

from core.model import (
    MAX_SAMPLES,
    MAX_TRACE_IDS,
    WINDOW,
    Analysis,
    Event,
    Fingerprint,
    Incident,
    InputStats,
    ProblemClass,
    utc,
    window_start,
)

MAX_FINGERPRINTS = 20
"""Fingerprints (key → template) kept per incident: a problem usually has a handful of templates."""

MAX_APPS = 20
"""Applications kept per incident; a workload normally runs one."""

IncidentKey = tuple[str, datetime, str, str, str]


class Aggregator:
    """Folds events of the range [start, end) into incidents keyed by problem, window and workload."""

    def __init__(self, start: datetime, end: datetime) -> None:
        self.start = utc(start)
        self.end = utc(end)
        self._incidents: dict[IncidentKey, Incident] = {}
        self._minute_counts: dict[tuple[str, str], dict[datetime, int]] = {}
        self._samples: dict[IncidentKey, list[tuple[datetime, str]]] = {}
        self._windows: dict[datetime, datetime] = {}  # minute → its window start

    def add(self, event: Event, fp: Fingerprint, problem: ProblemClass) -> None:
        """Count one event; events outside [start, end) are the source's mistake and are ignored."""
        ts = event.timestamp
        if ts.tzinfo is not UTC:  # normalize gives UTC already; anything else is converted
            ts = utc(ts)
        if not self.start <= ts < self.end:
            return
        minute = ts.replace(second=0, microsecond=0)
        # Windows are whole minutes long, so the minute's window is the event's (one division per minute).
        window = self._windows.get(minute)
        if window is None:
            window = self._windows[minute] = window_start(minute)
        problem_id = problem.id  # a property that formats the id: read it once
        workload = event.workload
        key = (problem_id, window, event.namespace, workload.kind, workload.name)
        incident = self._incidents.get(key)
        if incident is None:
            incident = Incident(
                problem_id=problem_id,
                category=problem.category,
                flow=problem.flow,
                error_class=problem.error_class,
                severity=problem.severity,
                window_start=window,
                window_end=window + WINDOW,
                namespace=event.namespace,
                workload_kind=workload.kind,
                workload_name=workload.name,
                first_seen=ts,
                last_seen=ts,
            )
            self._incidents[key] = incident
            self._samples[key] = []
        _fold(incident, event, ts, fp)
        _keep_earliest(self._samples[key], (ts, event.message))

        minutes = self._minute_counts.get((problem_id, event.namespace))
        if minutes is None:
            minutes = self._minute_counts[(problem_id, event.namespace)] = {}
        minutes[minute] = minutes.get(minute, 0) + 1

    def merge(self, later: Aggregator) -> None:
        """Fold in what an aggregator of a later part of the same input counted, as if its events had
        been added here after this one's: an incident both saw keeps this one's classification."""
        for key, theirs in later._incidents.items():
            ours = self._incidents.get(key)
            if ours is None:
                self._incidents[key] = theirs
                self._samples[key] = later._samples[key]
                continue
            ours.count += theirs.count
            ours.first_seen = min(ours.first_seen, theirs.first_seen)  # type: ignore[type-var]
            ours.last_seen = max(ours.last_seen, theirs.last_seen)  # type: ignore[type-var]
            _merge_fingerprints(ours.fingerprints, theirs.fingerprints)
            for trace_id in theirs.trace_ids:
                _insert_smallest(ours.trace_ids, trace_id, MAX_TRACE_IDS)
            for app in theirs.apps:
                _insert_smallest(ours.apps, app, MAX_APPS)
            samples = self._samples[key]
            for sample in later._samples[key]:
                _keep_earliest(samples, sample)
        for scope, theirs_minutes in later._minute_counts.items():
            minutes = self._minute_counts.setdefault(scope, {})
            for minute, n in theirs_minutes.items():
                minutes[minute] = minutes.get(minute, 0) + n

    def result(self, stats: InputStats) -> Analysis:
        """The analysis of everything added so far, incidents sorted by key for deterministic output."""
        incidents = []
        for key in sorted(self._incidents):
            incident = self._incidents[key]
            incident.samples = [message for _, message in self._samples[key]]
            incident.fingerprints = dict(sorted(incident.fingerprints.items()))  # not arrival order
            incidents.append(incident)
        minute_counts = {
            scope: dict(sorted(self._minute_counts[scope].items())) for scope in sorted(self._minute_counts)
        }
        return Analysis(
            start=self.start, end=self.end, incidents=incidents, minute_counts=minute_counts, stats=stats
        )


def _fold(incident: Incident, event: Event, ts: datetime, fp: Fingerprint) -> None:
    incident.count += 1
    # Events may arrive out of order (sliced fetches), so first/last are min/max, not first/last added.
    if incident.first_seen is None or ts < incident.first_seen:
        incident.first_seen = ts
    if incident.last_seen is None or ts > incident.last_seen:
        incident.last_seen = ts
    template = incident.fingerprints.get(fp.key)
    if template is None:
        if _keep_smallest(list(incident.fingerprints), fp.key, MAX_FINGERPRINTS):
            incident.fingerprints[fp.key] = fp.template
            if len(incident.fingerprints) > MAX_FINGERPRINTS:
                del incident.fingerprints[max(incident.fingerprints)]
    elif fp.template < template:  # one key can show `<IP>` or `<HOST>`: keep one, whatever the order
        incident.fingerprints[fp.key] = fp.template
    if event.trace_id:
        _insert_smallest(incident.trace_ids, event.trace_id, MAX_TRACE_IDS)
    if event.app:
        _insert_smallest(incident.apps, event.app, MAX_APPS)


def _merge_fingerprints(ours: dict[str, str], theirs: dict[str, str]) -> None:
    """The smallest keys of both, each with its smallest template; new keys after ours, as if added later."""
    for key, template in theirs.items():
        kept = ours.get(key)
        if kept is None or template < kept:
            ours[key] = template
    while len(ours) > MAX_FINGERPRINTS:
        del ours[max(ours)]


def _keep_smallest(values: list[str], value: str, limit: int) -> bool:
    return len(values) < limit or value < max(values)


def _insert_smallest(values: list[str], value: str, limit: int) -> None:
    """Keep `values` the sorted `limit` smallest distinct values seen."""
    if (len(values) < limit or value < values[-1]) and value not in values:
        insort(values, value)
        del values[limit:]


def _keep_earliest(samples: list[tuple[datetime, str]], sample: tuple[datetime, str]) -> None:
    """Keep the MAX_SAMPLES distinct messages seen earliest (ties broken by the text)."""
    if len(samples) >= MAX_SAMPLES and sample > samples[-1]:
        # Later than all kept samples (the common case in a time-ordered stream): even if its message
        # is one of them, that one was seen earlier and stays.
        return
    for i, (ts, message) in enumerate(samples):
        if message == sample[1]:
            if sample[0] < ts:
                samples[i] = sample
                samples.sort()
            return
    if len(samples) < MAX_SAMPLES or sample < samples[-1]:
        insort(samples, sample)
        del samples[MAX_SAMPLES:]
