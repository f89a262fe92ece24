"""Detection: spikes, bursts, cross-namespace spread, new and regressed problems, and which findings page.

Every detector has one shape, `Detector = Callable[[DetectInput, Detection], Detection]`: the input, and
what the detectors before it found. `detect()` runs them in order.
Pure: no I/O, deterministic output order. The rules and thresholds are documented in docs/detection.md.
"""

from __future__ import annotations

import statistics
from bisect import insort
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Annotated

import numpy as np
from pydantic import Field

from core.model import (
    WINDOW,
    Analysis,
    Detection,
    Finding,
    History,
    Incident,
    Peak,
    ProblemState,
    against_baseline,
    isoformat,
    plural,
    window_start,
    worst_severity,
)

MINUTE = timedelta(minutes=1)
FINDING_KINDS = ("new", "regression", "cross_namespace", "spike", "burst")
MAD_TO_SIGMA = 1.4826
"""Scales the median absolute deviation to a standard deviation for normally distributed counts."""
DEFAULT_CRITICAL_CATEGORIES = frozenset({"DATABASE", "INFRA"})


@dataclass(frozen=True, slots=True)
class DetectConfig:
    """Every detection threshold; DETECT_<FIELD> environment variables override them (docs/detection.md).

    Each annotation carries the field's meaningful range, which the overrides are checked against.
    """

    spike_ratio: Annotated[float, Field(gt=0)] = 3.0
    """A spike window has at least this many times the baseline count (DETECT_SPIKE_RATIO)."""
    spike_min_count: Annotated[int, Field(ge=1)] = 20
    """…and at least this many events, so a quiet problem does not spike on a handful
    (DETECT_SPIKE_MIN_COUNT)."""
    spike_z: Annotated[float, Field(gt=0)] = 3.0
    """…and, when the baseline varies (MAD > 0), a robust z-score at least this high (DETECT_SPIKE_Z)."""
    spike_baseline_quantile: Annotated[float, Field(ge=0, le=1)] = 0.95
    """The baseline is this quantile of the baseline windows (DETECT_SPIKE_BASELINE_QUANTILE)."""
    spike_min_baseline_windows: Annotated[int, Field(ge=1)] = 4
    """Fewer baseline windows than this (one hour) is too little to call anything a spike
    (DETECT_SPIKE_MIN_BASELINE_WINDOWS)."""
    spike_recent_windows: Annotated[int, Field(ge=0)] = 4
    """A spike starts only at ≥ spike_ratio × the median of this many windows right before it: a rise,
    not a level already held (DETECT_SPIKE_RECENT_WINDOWS; 0 disables)."""
    burst_ratio: Annotated[float, Field(gt=0)] = 5.0
    """A burst's per-minute rate is at least this many times the median rate around it
    (DETECT_BURST_RATIO)."""
    burst_min_count: Annotated[int, Field(ge=1)] = 50
    """…and its minutes hold at least this many events together (DETECT_BURST_MIN_COUNT)."""
    burst_max_minutes: Annotated[int, Field(ge=1)] = 3
    """The longest run of minutes that is judged as one surge (DETECT_BURST_MAX_MINUTES)."""
    burst_context_minutes: Annotated[int, Field(ge=1)] = 60
    """The surrounding period, centred on the surge, whose median rate is the burst baseline
    (DETECT_BURST_CONTEXT_MINUTES); clipped to the analysed range."""
    cross_ns_min: Annotated[int, Field(ge=2)] = 2
    """A problem class seen in at least this many namespaces at once is a cross-namespace issue
    (DETECT_CROSS_NS_MIN)."""
    cross_ns_gap_minutes: Annotated[int, Field(ge=0)] = 5
    """Occurrences in different namespaces this close in time count as "at once"
    (DETECT_CROSS_NS_GAP_MINUTES)."""
    critical_ratio: Annotated[float, Field(gt=0)] = 10.0
    """A spike or burst at least this many times its baseline … (DETECT_CRITICAL_RATIO)"""
    critical_min_count: Annotated[int, Field(ge=0)] = 200
    """… with at least this many events is critical and pages people (DETECT_CRITICAL_MIN_COUNT;
    0: the ratio alone)."""
    critical_categories: frozenset[str] = DEFAULT_CRITICAL_CATEGORIES
    """Categories whose cross-namespace spread pages people: shared infrastructure is failing
    (DETECT_CRITICAL_CATEGORIES, a JSON list)."""

    def unknown_categories(self, known: Collection[str]) -> list[str]:
        """The critical categories that are neither `known` (the taxonomy's) nor a default: a
        misspelt category would never page anyone. The defaults stay valid under any taxonomy."""
        return sorted(self.critical_categories - DEFAULT_CRITICAL_CATEGORIES - set(known))


@dataclass(frozen=True)
class DetectInput:
    """What every detector reads. Problems people ignore (triage "ignored") are left out of everything."""

    analysis: Analysis
    history: History
    states: Mapping[str, ProblemState]
    cfg: DetectConfig

    @cached_property
    def ignored(self) -> frozenset[str]:
        return frozenset(pid for pid, state in self.states.items() if state.triage == "ignored")

    @cached_property
    def incidents(self) -> list[Incident]:
        return [i for i in self.analysis.incidents if i.problem_id not in self.ignored]

    @cached_property
    def minute_counts(self) -> dict[tuple[str, str], dict[datetime, int]]:
        return {
            scope: counts
            for scope, counts in self.analysis.minute_counts.items()
            if scope[0] not in self.ignored
        }

    @cached_property
    def severity(self) -> dict[str, str]:
        """Problem id → its severity (the highest its incidents carry)."""
        result: dict[str, str] = {}
        for incident in self.incidents:
            result[incident.problem_id] = worst_severity(
                (result.get(incident.problem_id, "low"), incident.severity)
            )
        return result

    @cached_property
    def windows(self) -> list[datetime]:
        """The aligned windows of the analysed range."""
        return _windows(window_start(self.analysis.start), self.analysis.end)


Detector = Callable[[DetectInput, Detection], Detection]
"""A detector reads the input and what the detectors before it in DETECTORS found."""


@dataclass(frozen=True, slots=True)
class _SpikeWindow:
    start: datetime
    observed: int
    baseline: float
    baseline_windows: int


def detect(
    analysis: Analysis, history: History, states: Mapping[str, ProblemState], cfg: DetectConfig
) -> Detection:
    """Run every detector over one analysed range; peaks and findings in a deterministic order."""
    inp = DetectInput(analysis, history, states, cfg)
    peaks: list[Peak] = []
    findings: list[Finding] = []
    for detector in DETECTORS:
        found = detector(inp, Detection(peaks=peaks, findings=findings))
        peaks = peaks + found.peaks
        findings = findings + found.findings
    peaks.sort(key=lambda p: (p.window_start, p.kind, p.scope, p.scope_id, p.namespace or ""))
    findings.sort(key=lambda f: (f.window_start, FINDING_KINDS.index(f.kind), f.problem_id, f.namespaces))
    return Detection(peaks=peaks, findings=findings)


def critical(findings: Iterable[Finding], cfg: DetectConfig) -> list[Finding]:
    """The findings that page people, in their given order.

    A finding pages when its severity is critical (a critical-severity problem that is new, regressed or
    spiking, or a spike/burst at ≥ critical_ratio with ≥ critical_min_count events), or when it is a
    cross-namespace issue of a category in `critical_categories`. A new problem alone does not page.
    """
    return [
        f
        for f in findings
        if f.severity == "critical"
        or (f.kind == "cross_namespace" and f.problem_id.split(":", 1)[0] in cfg.critical_categories)
    ]


def spikes(inp: DetectInput, _: Detection) -> Detection:
    """Windows whose count is far above the scope's own baseline, per problem and per namespace."""
    cfg = inp.cfg
    range_windows = inp.windows
    if not range_windows:
        return Detection(peaks=[], findings=[])
    history_windows = _windows(_observed_since(inp.history), min(inp.history.end, range_windows[0]))
    by_problem: dict[str, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    by_namespace: dict[str, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    namespaces_of: dict[tuple[str, datetime], set[str]] = defaultdict(set)
    for incident in inp.incidents:
        by_problem[incident.problem_id][incident.window_start] += incident.count
        by_namespace[incident.namespace][incident.window_start] += incident.count
        namespaces_of[(incident.problem_id, incident.window_start)].add(incident.namespace)

    peaks: list[Peak] = []
    findings: list[Finding] = []
    scopes = [
        ("problem", pid, counts, inp.history.problem_counts.get(pid, {}))
        for pid, counts in by_problem.items()
    ] + [
        ("namespace", ns, counts, inp.history.namespace_counts.get(ns, {}))
        for ns, counts in by_namespace.items()
    ]
    for scope, scope_id, counts, stored in scopes:
        observed = [counts.get(w, 0) for w in range_windows]
        if max(observed, default=0) < cfg.spike_min_count:
            continue
        history = [stored.get(w, 0) for w in history_windows]
        timeline = history + observed
        # Kept sorted and grown one window at a time: each window's baseline is every window before it.
        baseline_windows = sorted(history)
        spiking: list[_SpikeWindow] = []
        ongoing: float | None = None  # the baseline of the spike in progress
        for i, count in enumerate(observed):
            if i:
                insort(baseline_windows, observed[i - 1])
            if ongoing is not None and count >= max(cfg.spike_min_count, cfg.spike_ratio * ongoing):
                spiking.append(_SpikeWindow(range_windows[i], count, ongoing, len(baseline_windows)))
                continue
            now = len(history) + i
            recent = timeline[max(0, now - cfg.spike_recent_windows) : now]
            ongoing = _spike_baseline(count, baseline_windows, recent, cfg)
            if ongoing is not None:
                spiking.append(_SpikeWindow(range_windows[i], count, ongoing, len(baseline_windows)))
        for run in _runs(spiking):
            top = max(run, key=lambda s: s.observed)
            start = run[0]
            peak = Peak(
                kind="spike",
                scope=scope,
                scope_id=scope_id,
                window_start=run[0].start,
                window_end=run[-1].start + WINDOW,
                observed=float(top.observed),
                baseline=start.baseline,
                ratio=top.observed / max(start.baseline, 1.0),
                problem_id=scope_id if scope == "problem" else None,
                namespace=scope_id if scope == "namespace" else None,
            )
            peaks.append(peak)
            if scope == "problem":
                spread = set().union(*(namespaces_of[(scope_id, s.start)] for s in run))
            else:
                spread = {scope_id}
            days = (inp.history.end - inp.history.start).days
            findings.append(_peak_finding(inp, peak, tuple(sorted(spread)), start.baseline_windows, days))
    return Detection(peaks=peaks, findings=findings)


def bursts(inp: DetectInput, _: Detection) -> Detection:
    """Sharp surges at one-minute resolution inside otherwise calmer minutes, per problem and namespace."""
    first_minute = inp.analysis.start.replace(second=0, microsecond=0)
    size = -((first_minute - inp.analysis.end) // MINUTE)
    peaks: list[Peak] = []
    # One problem's minutes at a time, so memory holds one dense array per namespace, not per problem.
    by_namespace: dict[str, np.ndarray] = {}
    for (problem_id, namespace), minutes in inp.minute_counts.items():
        counts = np.zeros(size)
        for minute, count in minutes.items():
            index = (minute - first_minute) // MINUTE
            if 0 <= index < size:
                counts[index] += count
        peaks.extend(_burst_peaks("problem", problem_id, namespace, counts, first_minute, inp.cfg))
        if namespace in by_namespace:
            by_namespace[namespace] += counts
        else:
            by_namespace[namespace] = counts
    for namespace, counts in by_namespace.items():
        peaks.extend(_burst_peaks("namespace", namespace, namespace, counts, first_minute, inp.cfg))
    findings = [_peak_finding(inp, peak, (peak.namespace or "",), None, 0) for peak in peaks]
    return Detection(peaks=peaks, findings=findings)


def cross_namespace(inp: DetectInput, found: Detection) -> Detection:
    """One problem class (category + error_class) unusual in several namespaces at once.

    The flow part of a problem id derives from the namespace, so the same failure in two namespaces has
    two problem ids; it is matched on category and error_class instead. Only incidents the detectors
    before found unusual take part (their problem new, regressed, spiking or bursting then): a class
    that is always around in several namespaces is background, not spread. Those incidents are grouped
    into episodes: an incident joins when it starts within cross_ns_gap_minutes of the episode's end.
    """
    gap = timedelta(minutes=inp.cfg.cross_ns_gap_minutes)
    by_class: dict[tuple[str, str], list[Incident]] = defaultdict(list)
    for incident in _unusual(inp.incidents, found):
        by_class[(incident.category, incident.error_class)].append(incident)

    findings: list[Finding] = []
    for (category, error_class), incidents in by_class.items():
        incidents.sort(key=lambda i: (i.first_seen, i.key))
        episodes: list[list[Incident]] = []
        episode_end = datetime.min.replace(tzinfo=UTC)
        for incident in incidents:
            if incident.first_seen <= episode_end + gap:
                episodes[-1].append(incident)
                episode_end = max(episode_end, incident.last_seen)
            else:
                episodes.append([incident])
                episode_end = incident.last_seen
        for episode in episodes:
            namespaces = tuple(sorted({i.namespace for i in episode}))
            if len(namespaces) >= inp.cfg.cross_ns_min:
                findings.append(_cross_namespace_finding(inp, category, error_class, episode, namespaces))
    return Detection(peaks=[], findings=findings)


def new_problems(inp: DetectInput, _: Detection) -> Detection:
    """Problems never seen before the range (no state, or a state first seen inside it: a re-run)."""
    findings = []
    for pid, incidents in _by_problem(inp.incidents).items():
        state = inp.states.get(pid)
        if state is not None and state.first_seen < inp.analysis.start:
            continue
        first = min(incidents, key=lambda i: (i.first_seen, i.key))
        namespaces = tuple(sorted({i.namespace for i in incidents}))
        total = sum(i.count for i in incidents)
        findings.append(
            Finding(
                kind="new",
                problem_id=pid,
                window_start=first.window_start,
                severity=inp.severity[pid],
                detail=f"new problem, first seen {isoformat(first.first_seen)} in {first.workload}; "
                f"{plural(total, 'event')} in {plural(len(namespaces), 'namespace')}",
                namespaces=namespaces,
                observed=float(total),
                first_seen=first.first_seen,
                origin=str(first.workload),
                workloads=_workloads(incidents),
            )
        )
    return Detection(peaks=[], findings=findings)


def regressions(inp: DetectInput, _: Detection) -> Detection:
    """Problems marked resolved that occur again after they were resolved."""
    findings = []
    for pid, incidents in _by_problem(inp.incidents).items():
        state = inp.states.get(pid)
        if state is None or state.triage != "resolved":
            continue
        since = state.resolved_at
        again = [i for i in incidents if since is None or i.last_seen >= since]
        if not again:
            continue
        first = min(again, key=lambda i: (i.first_seen, i.key))
        resolved = f"resolved {isoformat(since)}" if since else "marked resolved"
        findings.append(
            Finding(
                kind="regression",
                problem_id=pid,
                window_start=first.window_start,
                # A fix that did not hold deserves attention even for a low-severity problem.
                severity=worst_severity((inp.severity[pid], "high")),
                detail=f"{resolved}, seen again {isoformat(first.first_seen)} in {first.workload}; "
                f"{plural(sum(i.count for i in again), 'event')} since",
                namespaces=tuple(sorted({i.namespace for i in again})),
                observed=float(sum(i.count for i in again)),
                first_seen=first.first_seen,
                origin=str(first.workload),
                workloads=_workloads(again),
            )
        )
    return Detection(peaks=[], findings=findings)


# cross_namespace comes last: it looks for problems the others found unusual.
DETECTORS: tuple[Detector, ...] = (spikes, bursts, new_problems, regressions, cross_namespace)


def _observed_since(history: History) -> datetime:
    """Where the stored baseline period really starts.

    Missing windows count as zero, but only from the first window anything was stored: before it the
    analyzer was not running, and zeros there would make every window of a first day a spike.
    """
    stored = [
        w for counts in (*history.problem_counts.values(), *history.namespace_counts.values()) for w in counts
    ]
    return max(window_start(history.start), min(stored, default=history.end))


def _spike_baseline(
    observed: int, baseline_windows: list[int], recent: list[int], cfg: DetectConfig
) -> float | None:
    """The baseline a window starts a spike against, or None when it does not; baseline windows sorted."""
    if observed < cfg.spike_min_count or len(baseline_windows) < cfg.spike_min_baseline_windows:
        return None
    baseline = _quantile(baseline_windows, cfg.spike_baseline_quantile)
    if observed < cfg.spike_ratio * baseline:
        return None
    # A spike is a rise: a level held for the last hour is not one, however new it is to the history.
    if recent and observed < cfg.spike_ratio * statistics.median(recent):
        return None
    median = _quantile(baseline_windows, 0.5)
    mad = statistics.median(abs(count - median) for count in baseline_windows)
    if mad > 0 and (observed - median) / (MAD_TO_SIGMA * mad) < cfg.spike_z:
        return None
    return baseline


def _quantile(ordered: list[int], q: float) -> float:
    """Linear-interpolated quantile (numpy's default) of an already sorted list, without re-sorting it."""
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _burst_peaks(
    scope: str, scope_id: str, namespace: str, counts: np.ndarray, first_minute: datetime, cfg: DetectConfig
) -> list[Peak]:
    if counts.max(initial=0) * cfg.burst_max_minutes < cfg.burst_min_count:
        return []  # no run of minutes can hold enough events: skip the median
    expected = _context_median(counts, cfg.burst_context_minutes)
    peaks = []
    for start, end in _surges(counts, expected, cfg):
        observed = float(counts[start:end].sum())
        baseline = float(expected[start:end].sum())
        peaks.append(
            Peak(
                kind="burst",
                scope=scope,
                scope_id=scope_id,
                window_start=first_minute + start * MINUTE,
                window_end=first_minute + end * MINUTE,
                observed=observed,
                baseline=baseline,
                ratio=observed / max(baseline, 1.0),
                problem_id=scope_id if scope == "problem" else None,
                namespace=namespace,
            )
        )
    return peaks


def _context_median(counts: np.ndarray, context_minutes: int) -> np.ndarray:
    """Per minute, the median count of the `context_minutes` centred on it, clipped to the range.

    The minute itself is included: a surge of a few minutes cannot move the median of an hour.
    """
    half = context_minutes // 2
    padded = np.concatenate([np.full(half, np.nan), counts, np.full(half, np.nan)])
    return np.nanmedian(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1), axis=1)


def _surges(counts: np.ndarray, expected: np.ndarray, cfg: DetectConfig) -> list[tuple[int, int]]:
    """[start, end) minute indexes of each run of surging minutes that holds enough events."""
    surging = counts >= cfg.burst_ratio * np.maximum(expected, 1.0)
    flagged = np.zeros(len(counts), dtype=bool)
    for start in np.flatnonzero(surging):
        total = 0.0
        for index in range(start, min(start + cfg.burst_max_minutes, len(counts))):
            if not surging[index]:
                break
            total += counts[index]
            if total >= cfg.burst_min_count:
                flagged[start : index + 1] = True
                break
    edges = np.flatnonzero(np.diff(np.concatenate([[False], flagged, [False]]).astype(int)))
    return [(int(start), int(end)) for start, end in zip(edges[::2], edges[1::2], strict=True)]


def _peak_finding(
    inp: DetectInput,
    peak: Peak,
    namespaces: tuple[str, ...],
    baseline_windows: int | None,
    baseline_days: int,
) -> Finding:
    strong = peak.ratio >= inp.cfg.critical_ratio and peak.observed >= inp.cfg.critical_min_count
    if strong:
        severity = "critical"
    elif peak.scope == "problem":
        severity = inp.severity[peak.scope_id]
    else:
        severity = "medium"
    span = f"{isoformat(peak.window_start)}–{isoformat(peak.window_end)}"
    if peak.kind == "spike":
        baseline_of = f"the {baseline_days}-day baseline"
        size = against_baseline(peak.observed, peak.baseline, baseline_of)
        windows = plural(baseline_windows or 0, "baseline window")
        detail = f"spike {span}: {size} in its busiest 15-minute window ({windows})"
    else:
        baseline_of = f"the surrounding {inp.cfg.burst_context_minutes} minutes' expectation"
        size = against_baseline(peak.observed, peak.baseline, baseline_of)
        detail = f"burst {span}: {size}"
    if peak.scope == "problem" and peak.kind == "burst":
        detail += f" in namespace {peak.namespace}"
    involved = [
        i
        for i in inp.incidents
        if i.window_start < peak.window_end
        and peak.window_start < i.window_end
        and (i.problem_id == peak.scope_id if peak.scope == "problem" else i.namespace == peak.scope_id)
        and (peak.kind == "spike" or i.namespace == peak.namespace)
    ]
    first = min(involved, key=lambda i: (i.first_seen, i.key), default=None)
    return Finding(
        kind=peak.kind,
        problem_id=peak.scope_id if peak.scope == "problem" else f"namespace:{peak.scope_id}",
        window_start=window_start(peak.window_start),
        severity=severity,
        detail=detail,
        namespaces=namespaces,
        observed=peak.observed,
        baseline=peak.baseline,
        baseline_of=baseline_of,
        first_seen=first.first_seen if first else None,
        origin=str(first.workload) if first else "",
        workloads=_workloads(involved),
    )


def _workloads(incidents: Iterable[Incident]) -> tuple[str, ...]:
    return tuple(sorted({str(i.workload) for i in incidents}))


def _cross_namespace_finding(
    inp: DetectInput, category: str, error_class: str, episode: list[Incident], namespaces: tuple[str, ...]
) -> Finding:
    problem_ids = sorted({i.problem_id for i in episode})
    # Namespaces mapped to one flow share a real problem id; otherwise name the class across flows.
    problem_id = problem_ids[0] if len(problem_ids) == 1 else f"{category}:*:{error_class}"
    severity = worst_severity(inp.severity[pid] for pid in problem_ids)
    if category in inp.cfg.critical_categories:
        severity = worst_severity((severity, "high"))
    origin = min(episode, key=lambda i: (i.first_seen, i.key))
    first = origin.first_seen
    last = max(i.last_seen for i in episode)
    return Finding(
        kind="cross_namespace",
        problem_id=problem_id,
        window_start=window_start(first),
        severity=severity,
        detail=f"{category}:{error_class} in {plural(len(namespaces), 'namespace')} "
        f"({', '.join(namespaces)}) "
        f"between {isoformat(first)} and {isoformat(last)}; {plural(sum(i.count for i in episode), 'event')}",
        namespaces=namespaces,
        observed=float(sum(i.count for i in episode)),
        first_seen=origin.first_seen,
        origin=str(origin.workload),
        workloads=_workloads(episode),
    )


def _unusual(incidents: Iterable[Incident], found: Detection) -> list[Incident]:
    """Incidents in the window of a new or regression finding of their problem, or inside one of its
    spikes (any namespace: a problem spike sums them) or bursts (their namespace)."""
    marked = {(f.problem_id, f.window_start) for f in found.findings if f.kind in ("new", "regression")}
    peaks: dict[str, list[Peak]] = defaultdict(list)
    for peak in found.peaks:
        if peak.scope == "problem":
            peaks[peak.scope_id].append(peak)
    return [
        incident
        for incident in incidents
        if (incident.problem_id, incident.window_start) in marked
        or any(
            peak.window_start < incident.window_end
            and incident.window_start < peak.window_end
            and (peak.kind == "spike" or peak.namespace == incident.namespace)
            for peak in peaks[incident.problem_id]
        )
    ]


def _by_problem(incidents: Iterable[Incident]) -> dict[str, list[Incident]]:
    result: dict[str, list[Incident]] = defaultdict(list)
    for incident in incidents:
        result[incident.problem_id].append(incident)
    return result


def _windows(start: datetime, end: datetime) -> list[datetime]:
    count = max(0, -((start - end) // WINDOW))
    return [start + k * WINDOW for k in range(count)]


def _runs(spiking: list[_SpikeWindow]) -> list[list[_SpikeWindow]]:
    """Split time-ordered spiking windows into runs of consecutive windows."""
    runs: list[list[_SpikeWindow]] = []
    for window in spiking:
        if runs and window.start - runs[-1][-1].start == WINDOW:
            runs[-1].append(window)
        else:
            runs.append([window])
    return runs
