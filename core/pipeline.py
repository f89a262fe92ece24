"""The pipeline both entrypoints share.

fetch → normalize → fingerprint → classify (→ aggregate) → detect → propagate → persist → report → publish

`analyse()` runs the stages up to propagate over one range; `backfill()` and `regular_phase()`
choose the ranges, persist each one atomically, keep the registry up to date, and report and
publish. Nothing here knows where logs or state live: the source and the store are injected.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import socket
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from itertools import islice
from pathlib import Path

from core import log, publish
from core.aggregate import Aggregator
from core.classify import Classifier
from core.detect import DetectConfig, critical, detect
from core.fetch import PartFetch, Source
from core.fingerprint import Fingerprinter
from core.metrics import RunMetrics, push_run_metrics
from core.model import (
    WINDOW,
    Analysis,
    Chain,
    Detection,
    Finding,
    History,
    InputStats,
    ProblemClass,
    ProblemState,
    window_start,
)
from core.normalize import FieldMap, normalize
from core.propagate import PropagateConfig, propagate
from core.redact import Redactor
from core.registry import Registry, RegistryError
from core.report import Report, RunFigures, build_report, executive_summary, report_stamp, write_reports
from core.store import Store, StoreUnavailable

DAY = timedelta(days=1)


@dataclass
class Components:
    """Everything a run needs, built once from the settings (see `core.cli`)."""

    source: Source
    store: Store
    registry: Registry
    fingerprinter: Fingerprinter
    classifier: Classifier
    detect_config: DetectConfig
    propagate_config: PropagateConfig
    redactor: Redactor
    fields: FieldMap | None = None
    max_message_bytes: int = 65536
    baseline_days: int = 7
    ingest_lag: timedelta = timedelta(minutes=5)
    max_catchup_windows: int = 2976
    export_dir: Path = Path("reports")
    k8s_job: str | None = None
    k8s_pod: str | None = None
    pushgateway_url: str | None = None
    destinations: publish.Destinations = field(default_factory=publish.Destinations)
    analysis_workers: int = 1  # processes analysing one range, each a part of it (1: in this process)


@dataclass
class RangeResult:
    """What the analysis of one range found."""

    analysis: Analysis
    detection: Detection
    chains: list[Chain]
    states: dict[str, ProblemState]
    classes: dict[str, ProblemClass]


@dataclass
class RunOutcome:
    """The end of a run: what the entrypoint prints and how it exits."""

    run_id: str | None
    phase: str
    figures: RunFigures
    failed: list[str] = field(default_factory=list)  # days or windows that failed, with why
    report_files: dict[str, Path] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)  # what was published/written, one line each
    summary: list[str] = field(default_factory=list)  # executive summary lines
    alerts: int = 0
    publish_status: dict[str, str] = field(default_factory=dict)  # channel → ok | failed | skipped
    results: list[RangeResult] = field(default_factory=list)  # the ranges analysed successfully

    @property
    def ok(self) -> bool:
        return not self.failed


def analyse(
    c: Components, start: datetime, end: datetime, unstored: Sequence[RangeResult] = ()
) -> RangeResult:
    """fetch → normalize → fingerprint → classify → aggregate, then detect and propagate.

    `unstored`: earlier ranges of this run that were not persisted (a dry run): detect sees them as
    if they had been, so a dry run finds what the real run would."""
    if c.analysis_workers > 1:
        counted = _aggregate_in_workers(c, start, end)
    else:
        counted = _aggregate(c, start, end, partial(c.source.fetch, start, end))
    analysis = counted.aggregator.result(counted.stats)
    history = c.store.history(start - timedelta(days=c.baseline_days), start)
    states = c.store.problem_states(before=start)
    for earlier in unstored:
        _as_if_stored(earlier.analysis, history, states)
    states = _with_registry_status(states, c.registry)
    detection = detect(analysis, history, states, c.detect_config)
    chains = propagate(analysis, c.propagate_config)
    # Per-minute counts serve burst detection only; a backfill keeps every day's result until its
    # report, so they are released here rather than held for each day.
    analysis.minute_counts = {}
    return RangeResult(analysis, detection, chains, states, counted.classes)


def _as_if_stored(earlier: Analysis, history: History, states: dict[str, ProblemState]) -> None:
    """Fold an earlier range's incidents into the history and the states read from the store, as
    persisting the range would have: its incidents replace the stored counts of its windows, and its
    sightings extend the problems' first and last seen."""
    overlaps = earlier.start < history.end and history.start < earlier.end
    for counts in (history.problem_counts, history.namespace_counts) if overlaps else ():
        for scope, windows in list(counts.items()):
            for window in [w for w in windows if earlier.start <= w < earlier.end]:
                del windows[window]
            if not windows:
                del counts[scope]
    for incident in earlier.incidents:
        if history.start <= incident.window_start < history.end:
            for counts, scope in (
                (history.problem_counts, incident.problem_id),
                (history.namespace_counts, incident.namespace),
            ):
                windows = counts.setdefault(scope, {})
                windows[incident.window_start] = windows.get(incident.window_start, 0) + incident.count
        pid, first, last = incident.problem_id, incident.first_seen, incident.last_seen
        if pid in states:
            first, last = min(first, states[pid].first_seen), max(last, states[pid].last_seen)
        states[pid] = ProblemState(pid, first, last, "known")


@dataclass
class _Counted:
    """What the hot loop folded from (a part of) a range: small, so a worker can send it back."""

    aggregator: Aggregator
    stats: InputStats
    classes: dict[str, ProblemClass]

    def merge(self, later: _Counted) -> None:
        """Add a later part's counts (in part order, so first-seen choices are the single process's)."""
        self.aggregator.merge(later.aggregator)
        self.stats.fetched += later.stats.fetched
        self.stats.accepted += later.stats.accepted
        self.stats.truncated += later.stats.truncated
        for reason, n in later.stats.skipped.items():
            self.stats.skipped[reason] = self.stats.skipped.get(reason, 0) + n
        for problem_id, problem in later.classes.items():
            self.classes.setdefault(problem_id, problem)


STAGE_BATCH = 1000
"""Events taken through each stage together, one stage after the other, rather than each event
through all stages: every stage's code and data stay hot in the CPU caches for a batch. Same calls
in the same order per stage, so the same results; 54–57 → 44 µs/event for the hot loop over one
day of the 1M bench (docs/performance.md). A batch is small next to a page of documents."""


def _aggregate(c: Components, start: datetime, end: datetime, fetch: PartFetch) -> _Counted:
    """The hot loop over the documents `fetch` yields."""
    counted = _Counted(Aggregator(start, end), InputStats(), {})
    aggregator, classes = counted.aggregator, counted.classes
    fingerprint, classify = c.fingerprinter.fingerprint, c.classifier.classify
    events = normalize(fetch(counted.stats), counted.stats, c.fields, c.max_message_bytes)
    while batch := list(islice(events, STAGE_BATCH)):
        fingerprints = [fingerprint(event.message, event.error_type) for event in batch]
        problems = [classify(event, fp) for event, fp in zip(batch, fingerprints, strict=True)]
        for event, fp, problem in zip(batch, fingerprints, problems, strict=True):
            classes.setdefault(problem.id, problem)
            aggregator.add(event, fp, problem)
    return counted


# What the forked workers analyse: set just before the pool forks them, which copies it.
_PARTS: tuple[Components, datetime, datetime, list[PartFetch]] | None = None


def _aggregate_in_workers(c: Components, start: datetime, end: datetime) -> _Counted:
    """The hot loop in one forked process per part of the source, their counts merged here in part
    order. Workers send back only their counts, never events; a worker's error is raised here.
    Where no process can be forked or the source cannot be split, the range is analysed here."""
    global _PARTS
    try:
        fork = multiprocessing.get_context("fork")
        with c.source.split(start, end, c.analysis_workers) as parts:
            _PARTS = (c, start, end, parts)
            try:
                with ProcessPoolExecutor(len(parts), mp_context=fork, initializer=_detach_store) as pool:
                    futures = [pool.submit(_aggregate_part, i) for i in range(len(parts))]
                    counted = [future.result() for future in futures]
            except BrokenProcessPool as exc:
                raise RuntimeError(f"an analysis worker died: {exc}") from None
            finally:
                _PARTS = None
    except (ValueError, NotImplementedError, BlockingIOError) as exc:
        log.get().warning("analysing in one process", analysis_workers=c.analysis_workers, reason=str(exc))
        return _aggregate(c, start, end, partial(c.source.fetch, start, end))
    merged = counted[0]
    for later in counted[1:]:
        merged.merge(later)
    return merged


def _detach_store() -> None:
    """In a worker: the parent's pooled database connections must be neither used nor closed."""
    assert _PARTS is not None
    _PARTS[0].store.engine.dispose(close=False)


def _aggregate_part(index: int) -> _Counted:
    assert _PARTS is not None
    c, start, end, parts = _PARTS
    return _aggregate(c, start, end, parts[index])


def backfill(c: Components, days: list[date], output: Path, *, dry_run: bool, now: datetime) -> RunOutcome:
    """Analyse whole UTC days, each on its own; report and publish the run."""
    outcome = RunOutcome(None, "backfill", RunFigures(days_processed=len(days)))
    logger = log.get().bind(phase="backfill", dry_run=dry_run)
    args = {"days": [d.isoformat() for d in days], "dry_run": dry_run}
    with _run(c, "backfill", args, dry_run, outcome) as run:
        _learn_baseline(c, run, days[0], logger)
        starts = [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in days]
        # One failed day never stops the others.
        results = _process(c, run, outcome, starts, DAY, "day", stop_at_failure=False, logger=logger)
        _update_registry(c, run, outcome, results, logger, now)
        outcome.figures.duration_s = run.elapsed()
        report = _report(c, "backfill", days, results, outcome.figures, now)
        with run.step("report"):
            outcome.report_files = write_reports(report, output)
        outcome.summary = executive_summary(report)
        outcome.published, outcome.publish_status = _publish_backfill(c, report, results, output, now, logger)
    return outcome


def regular_phase(c: Components, lookback: timedelta, *, dry_run: bool, now: datetime) -> RunOutcome:
    """Analyse every unprocessed 15-minute window up to now − ingest lag; alert only on critical findings."""
    outcome = RunOutcome(None, "regular", RunFigures())
    logger = log.get().bind(phase="regular", dry_run=dry_run)
    args = {"lookback_min": lookback.total_seconds() / 60, "dry_run": dry_run}
    with _run(c, "regular", args, dry_run, outcome) as run:
        windows = pending_windows(c, lookback, now)
        outcome.figures.days_processed = len(windows)
        # Later windows wait after a failure: processing them would leave a hole the catch-up skips.
        results = _process(c, run, outcome, windows, WINDOW, "window", stop_at_failure=True, logger=logger)
        _update_registry(c, run, outcome, results, logger, now)
        outcome.figures.duration_s = run.elapsed()
        findings = [f for r in results for f in critical(r.detection.findings, c.detect_config)]
        outcome.alerts = len(findings)
        # Also without findings: what earlier runs failed to deliver is delivered now.
        outcome.published, outcome.publish_status = _publish_alert(
            c, findings, Path(c.export_dir), now, logger
        )
    return outcome


def _process(
    c: Components,
    run: _Run,
    outcome: RunOutcome,
    starts: list[datetime],
    size: timedelta,
    name: str,
    *,
    stop_at_failure: bool,
    logger,
) -> list[RangeResult]:
    """Analyse and persist each range [start, start + size) atomically, counting into the figures."""
    figures = outcome.figures
    results = outcome.results
    for start in log.progress(starts, total=len(starts), desc=f"{run.phase} {name}s"):
        label = start.date().isoformat() if size == DAY else start.isoformat()
        try:
            with run.step(f"{name} {label}") as counts:
                result = analyse(c, start, start + size, results if run.dry_run else ())
                saved = run.persist(result, start, start + size)
                _release_stored_details(result)
                counts.update(events=result.analysis.stats.fetched, incidents=saved)
        except Exception as exc:
            logger.error(f"{name} failed", range=label, error=str(exc))
            outcome.failed.append(f"{label}: {exc}")
            figures.failed_days.append(label)
            if stop_at_failure:
                break
            continue
        results.append(result)
        figures.days_succeeded += 1
        figures.events_fetched += result.analysis.stats.fetched
        figures.incidents_saved += saved
        for reason, n in result.analysis.stats.skipped.items():
            figures.events_skipped[reason] = figures.events_skipped.get(reason, 0) + n
    figures.days_failed = len(figures.failed_days)
    return results


def _release_stored_details(result: RangeResult) -> None:
    """Drop what only propagate and the store read, once both have: the trace ids of each incident
    (up to 50 per incident). A backfill keeps every day's result until its report, which never reads
    them, so holding them made memory grow with the volume of each day."""
    for incident in result.analysis.incidents:
        incident.trace_ids = []


def record_unreachable_store(phase: str, pushgateway_url: str | None) -> None:
    """A run that could not even open its database still tells monitoring (the "database lost" alert)."""
    now = datetime.now(UTC)
    run = RunMetrics(phase=phase, success=False, started_at=now, finished_at=now, db_up=False)
    push_run_metrics(run, pushgateway_url)


def pending_windows(c: Components, lookback: timedelta, now: datetime) -> list[datetime]:
    """Aligned windows not yet processed, oldest first: from the last processed one (or `lookback`
    ago on a first run) up to now − ingest lag. Capped per run; the rest is caught up next run."""
    end = window_start(now - c.ingest_lag)
    last = c.store.last_processed_window()
    begin = window_start(end - lookback)
    if last is not None:
        begin = min(begin, last + WINDOW)
    done = c.store.processed_windows(begin, end)
    windows = []
    cursor = begin
    while cursor < end and len(windows) < c.max_catchup_windows:
        if cursor not in done:
            windows.append(cursor)
        cursor += WINDOW
    return windows


# --- the run record -------------------------------------------------------------------------


class _Run:
    """Records the run and its steps in the store (nothing in a dry run) and times its database writes."""

    def __init__(self, c: Components, phase: str, run_id: str | None, dry_run: bool) -> None:
        self.c, self.phase, self.run_id, self.dry_run = c, phase, run_id, dry_run
        self.started_at = datetime.now(UTC)
        self.db_write_seconds = 0.0
        self.db_up: bool | None = None if dry_run else True

    def elapsed(self) -> float:
        return round((datetime.now(UTC) - self.started_at).total_seconds(), 1)

    @contextmanager
    def step(self, name: str) -> Iterator[dict]:
        counts: dict = {}
        started = datetime.now(UTC)
        try:
            yield counts
        except Exception as exc:
            self._record(name, "failed", started, counts, str(exc))
            raise
        self._record(name, "succeeded", started, counts, None)

    def _record(self, name: str, status: str, started: datetime, counts: dict, error: str | None) -> None:
        if self.run_id is not None:
            self.c.store.record_step(self.run_id, name, status, started, datetime.now(UTC), counts, error)

    def persist(self, result: RangeResult, start: datetime, end: datetime) -> int:
        """Replace the range in the store in one transaction; returns the incidents saved."""
        if self.dry_run:
            return 0
        analysis = result.analysis
        began = time.monotonic()
        try:
            written = self.c.store.replace_range(
                start, end, analysis.incidents, result.detection.peaks, self.run_id, self.phase
            )
        except StoreUnavailable:
            self.db_up = False
            raise
        finally:
            self.db_write_seconds += time.monotonic() - began
        return written.incidents_saved

    def finish(self, outcome: RunOutcome) -> None:
        if self.run_id is None:
            return
        figures = outcome.figures
        status = "succeeded" if outcome.ok else ("partial" if figures.days_succeeded else "failed")
        counts = {
            "events_fetched": figures.events_fetched,
            "incidents_saved": figures.incidents_saved,
            "registry_updates": figures.registry_updates,
            "ranges": figures.days_processed,
            "failed": figures.failed_days,
            "alerts": outcome.alerts,
        }
        self.c.store.finish_run(self.run_id, status, counts, "; ".join(outcome.failed) or None)


GC_THRESHOLDS = (50_000, 20, 20)
"""The cyclic garbage collector's thresholds during a run (Python's are 700, 10, 10). A page of
documents is tens of thousands of objects alive at once: with 700, each page was scanned young, then
promoted, and pushed full collections of the whole heap (caches, the days' incidents). Those took
18 % of a backfill's CPU (2.9 of 16.3 s at 100k events); with these, 0.4 s. The hot loop makes
almost no cyclic garbage, so memory stays the same (measured in docs/performance.md)."""


@contextmanager
def _rare_collections() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


@contextmanager
def _run(c: Components, phase: str, args: dict, dry_run: bool, outcome: RunOutcome) -> Iterator[_Run]:
    """Hold the phase lock, record the run (a crash marks it failed) and push its metrics at the end."""
    with _rare_collections():
        if dry_run:
            yield _Run(c, phase, None, dry_run)
            return
        with c.store.phase_lock(phase):
            run_id = c.store.start_run(phase, args, c.k8s_job, c.k8s_pod or socket.gethostname())
            outcome.run_id = run_id
            log.get().info("run started", phase=phase, run_id=run_id, k8s_job=c.k8s_job, k8s_pod=c.k8s_pod)
            run = _Run(c, phase, run_id, dry_run)
            try:
                yield run
            except BaseException as exc:
                with contextlib.suppress(Exception):  # the database may be what failed
                    c.store.finish_run(run_id, "failed", {}, f"{type(exc).__name__}: {exc}")
                outcome.failed.append(f"{type(exc).__name__}: {exc}")
                _push_metrics(c, run, outcome)
                raise
            run.finish(outcome)
            _push_metrics(c, run, outcome)


def _push_metrics(c: Components, run: _Run, outcome: RunOutcome) -> None:
    """Tell the Pushgateway how the run went; an unreachable gateway is only a warning."""
    results = outcome.results
    incidents = [i for r in results for i in r.analysis.incidents]
    by_category: dict[str, int] = {}
    for incident in incidents:
        by_category[incident.category] = by_category.get(incident.category, 0) + incident.count
    problems = {i.problem_id for i in incidents}
    new = {f.problem_id for r in results for f in r.detection.findings if f.kind == "new"}
    figures = outcome.figures
    push_run_metrics(
        RunMetrics(
            phase=run.phase,
            success=outcome.ok,
            started_at=run.started_at,
            finished_at=datetime.now(UTC),
            events_read=figures.events_fetched,
            events_skipped=sum(figures.events_skipped.values()),
            incidents=figures.incidents_saved,
            incidents_by_category=by_category,
            problems_new=len(new & problems),
            problems_known=len(problems - new),
            peaks=sum(len(r.detection.peaks) for r in results),
            publish_status=outcome.publish_status,
            db_write_seconds=round(run.db_write_seconds, 3),
            db_up=run.db_up,
        ),
        c.pushgateway_url,
    )


def _learn_baseline(c: Components, run: _Run, first_day: date, logger) -> None:
    """On a first run, analyse the baseline days before the first requested day, so that
    yesterday's problems are compared with a real history instead of all being "new". A first run
    killed half-way learns the days still missing on the next run."""
    if run.dry_run or c.baseline_days == 0:
        return
    days = [first_day - timedelta(days=n) for n in range(c.baseline_days, 0, -1)]
    starts = [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in days]
    missing = [s for s in starts if len(c.store.processed_windows(s, s + DAY)) < DAY // WINDOW]
    if not missing or (len(missing) == len(starts) and c.store.last_processed_window() is not None):
        return  # learned already, or the store has a history of its own (the regular phase's)
    logger.info("learning the baseline first", days=len(missing), before=first_day.isoformat())
    for start in log.progress(missing, total=len(missing), desc="learning baseline"):
        with run.step(f"baseline {start.date().isoformat()}"):
            run.persist(analyse(c, start, start + DAY), start, start + DAY)


def _with_registry_status(states: dict[str, ProblemState], registry: Registry) -> dict[str, ProblemState]:
    """The store knows the facts, people know the status: overlay the registry's statuses."""
    try:
        statuses = registry.statuses()
    except RegistryError as exc:
        log.get().error("registry unreadable; using database state", error=str(exc))
        return states
    merged = {}
    for pid, state in states.items():
        status, resolved_at = statuses.get(pid, (state.status, state.resolved_at))
        merged[pid] = ProblemState(pid, state.first_seen, state.last_seen, status, resolved_at)
    return merged


def _update_registry(
    c: Components, run: _Run, outcome: RunOutcome, results: list[RangeResult], logger, now: datetime
) -> None:
    """Bring the registry and its CSV exports up to date with the store (never in a dry run).

    From the store, not only from this run's results: what a killed run stored reaches the
    registry with the next run."""
    if run.dry_run:
        return
    regressed = {f.problem_id for r in results for f in r.detection.findings if f.kind == "regression"}
    last = c.store.last_processed_window()
    peaks = [] if last is None else c.store.peaks_between(last - c.baseline_days * DAY - DAY, last + WINDOW)
    try:
        with run.step("registry") as counts:
            update = c.registry.update(c.store.problems(), peaks, regressed, now)
            c.registry.export_csv(c.export_dir)
            counts.update(
                added=update.problems_added,
                updated=update.problems_updated,
                peaks=update.peaks_added,
                peaks_expired=update.peaks_expired,
            )
    except RegistryError as exc:
        logger.error("registry not updated", error=str(exc))
        return
    outcome.figures.registry_updates = update.problems_added + update.problems_updated + update.peaks_added


def _report(
    c: Components,
    phase: str,
    days: list[date],
    results: list[RangeResult],
    figures: RunFigures,
    now: datetime,
) -> Report:
    start = datetime(days[0].year, days[0].month, days[0].day, tzinfo=UTC)
    end = datetime(days[-1].year, days[-1].month, days[-1].day, tzinfo=UTC) + DAY
    stats = InputStats()
    states: dict[str, ProblemState] = {}
    classes: dict[str, ProblemClass] = {}
    for r in results:
        stats.fetched += r.analysis.stats.fetched
        stats.accepted += r.analysis.stats.accepted
        for reason, n in r.analysis.stats.skipped.items():
            stats.skipped[reason] = stats.skipped.get(reason, 0) + n
        for pid, state in r.states.items():
            states.setdefault(pid, state)
        classes.update(r.classes)
    try:
        registry = {pid: dict(entry) for pid, entry in c.registry.load().items()}
    except RegistryError:
        registry = {}
    return build_report(
        generated_at=now,
        phase=phase,
        start=start,
        end=end,
        incidents=[i for r in results for i in r.analysis.incidents],
        detection=Detection(
            [p for r in results for p in r.detection.peaks],
            [f for r in results for f in r.detection.findings],
        ),
        chains=[ch for r in results for ch in r.chains],
        states=states,
        registry=registry,
        classes=classes,
        stats=stats,
        figures=figures,
        redactor=c.redactor,
    )


def _publish_backfill(
    c: Components, report: Report, results: list[RangeResult], output: Path, now: datetime, logger
) -> tuple[list[str], dict[str, str]]:
    """Publish the report (files always; Confluence and Teams when configured) and deliver what earlier
    runs could not. A failure here never fails the analysis."""
    try:
        incidents = [i for r in results for i in r.analysis.incidents]
        messages = publish.report_messages(report, incidents, c.registry, c.destinations, c.redactor)
        files = publish.FileChannel(output, report_stamp(now))
        published = publish.publish(messages, c.destinations, _outbox(c), files, now)
    except Exception as exc:
        logger.warning("publication failed", error=str(exc))
        return [f"publication failed: {exc}"], c.destinations.status_when_failed()
    return published.lines, published.status


def _publish_alert(
    c: Components, findings: list[Finding], export_dir: Path, now: datetime, logger
) -> tuple[list[str], dict[str, str]]:
    """Alert Teams on the critical findings not alerted recently, and deliver what earlier runs could not."""
    try:
        outbox = _outbox(c)
        messages, held_back = publish.alert_messages(findings, c.destinations, outbox, now, c.redactor)
        published = publish.publish(
            messages, c.destinations, outbox, publish.FileChannel(export_dir, report_stamp(now)), now
        )
    except Exception as exc:
        logger.warning("alert not published", error=str(exc))
        return [f"alert failed: {exc}"], c.destinations.status_when_failed()
    if held_back:
        published.lines.append(
            f"teams: {held_back} finding(s) not alerted again (alerted within the last "
            f"{c.destinations.alert_repeat.total_seconds() / 60:.0f} min without escalation)"
        )
    return published.lines, published.status


def _outbox(c: Components) -> publish.Outbox | None:
    """The outbox in the run's database; none in a dry run, which records nothing."""
    return None if c.destinations.dry_run else publish.Outbox(c.store.engine)
