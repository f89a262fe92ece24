"""The pipeline both entrypoints share.

fetch → normalize → fingerprint → classify (→ aggregate) → detect → propagate → persist → report → publish

`analyse()` runs the stages up to propagate over one range (the hot loop is `core.analysis`);
`backfill()` and `regular_phase()` choose the ranges, give each a verdict (`core.verdict`), persist
each one atomically, keep the registry up to date, and report and publish. The run's outcome is made
from what its ranges returned. Nothing here knows where logs or state live: the source and the store
are injected, in the role objects of `Components`.
"""

from __future__ import annotations

import contextlib
import gc
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path

from core import log, publish
from core.analysis import Analyser
from core.change import ChangeConfig, RolloutSource, explain, subjects
from core.detect import DetectConfig, critical, detect
from core.fetch import SourceUnavailable
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
    Verdict,
    isoformat,
    window_start,
)
from core.propagate import PropagateConfig, propagate, with_chains
from core.redact import Redactor
from core.registry import Registry, RegistryError
from core.report import (
    Report,
    RunFigures,
    build_report,
    executive_summary,
    range_text,
    report_stamp,
    write_reports,
)
from core.report.kibana import link_problems
from core.store import Store, StoreUnavailable
from core.verdict import VerdictConfig, read_verdict, volume_verdict

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Thresholds:
    """What a range's findings and verdict are judged by (docs/detection.md, docs/reliability.md)."""

    detect: DetectConfig = field(default_factory=DetectConfig)
    propagate: PropagateConfig = field(default_factory=PropagateConfig)
    verdict: VerdictConfig = field(default_factory=VerdictConfig)
    change: ChangeConfig = field(default_factory=ChangeConfig)


@dataclass(frozen=True)
class Schedule:
    """How the phases choose the ranges they analyse and how long the store keeps them."""

    baseline_days: int = 7
    ingest_lag: timedelta = timedelta(minutes=5)
    max_catchup_windows: int = 2976
    retention_days: int = 0  # incidents, peaks and run records older than this are removed (0: kept)


@dataclass(frozen=True)
class RunIdentity:
    """Where a run comes from, recorded with it, and where its metrics go."""

    k8s_job: str | None = None
    k8s_pod: str | None = None
    pushgateway_url: str | None = None


@dataclass(frozen=True)
class Publisher:
    """The report's and the alerts' way out: files always, Confluence and Teams when configured, through
    the outbox of the run's database. A failure here never fails the analysis."""

    destinations: publish.Destinations
    redactor: Redactor
    export_dir: Path = Path("reports")  # registry exports and the regular phase's alert files

    def report(
        self,
        report: Report,
        results: list[RangeResult],
        registry: Registry,
        output: Path,
        store: Store,
        now: datetime,
    ) -> tuple[list[str], dict[str, str]]:
        """Publish the report and deliver what earlier runs could not."""
        logger = log.get().bind(step="publish")
        try:
            incidents = [i for r in results for i in r.analysis.incidents]
            messages = publish.report_messages(report, incidents, registry, self.destinations, self.redactor)
            files = publish.FileChannel(output, report_stamp(now))
            published = publish.publish(messages, self.destinations, self._outbox(store), files, now)
        except Exception as exc:
            logger.warning("publication failed", error=str(exc))
            return [f"publication failed: {exc}"], self.destinations.status_when_failed()
        return published.lines, published.status

    def alert(
        self, findings: list[Finding], store: Store, now: datetime, through: datetime | None = None
    ) -> tuple[list[str], dict[str, str], bool]:
        """Alert Teams (or, without Teams, the file copy) on the alert incidents that are new, escalated,
        updated, due again or resolved, and deliver what earlier runs could not; also returns whether the
        findings were handed over (to the outbox or the file copy). `through`: the end of the latest
        analysed window."""
        logger = log.get().bind(step="alert")
        try:
            outbox = self._outbox(store)
            plan = publish.alert_messages(
                findings, self.destinations, outbox, now, self.redactor, through=through
            )
            if plan.noted is not None and outbox is not None:
                outbox.add(plan.noted, now, status="held")
            files = publish.FileChannel(self.export_dir, report_stamp(now))
            published = publish.publish(plan.messages, self.destinations, outbox, files, now)
        except Exception as exc:
            logger.warning("alert not published", error=str(exc))
            failed = [f"alert failed: {exc}; kept to be alerted by the next run"]
            return failed, self.destinations.status_when_failed(), False
        if plan.held_back:
            published.lines.append(
                f"teams: {plan.held_back} incident{'s' if plan.held_back != 1 else ''} not alerted again "
                f"(alerted within the last {self.destinations.alert_repeat.total_seconds() / 60:.0f} min "
                "with nothing new)"
            )
        return published.lines, published.status, published.kept

    def _outbox(self, store: Store) -> publish.Outbox | None:
        """The outbox in the run's database; none in a dry run, which records nothing."""
        return None if self.destinations.dry_run else publish.Outbox(store.engine)


@dataclass(frozen=True)
class Components:
    """A run's role objects, built once from the settings (see `core.cli`)."""

    analyser: Analyser
    store: Store
    registry: Registry
    publisher: Publisher
    thresholds: Thresholds = field(default_factory=Thresholds)
    schedule: Schedule = field(default_factory=Schedule)
    identity: RunIdentity = field(default_factory=RunIdentity)


@dataclass
class RangeResult:
    """What the analysis of one range found."""

    analysis: Analysis
    detection: Detection
    chains: list[Chain]
    states: dict[str, ProblemState]
    classes: dict[str, ProblemClass]


@dataclass
class RangeOutcome:
    """One day or window of a run: its verdict and, when it could be analysed, what was found."""

    label: str  # the range as people name it: "2026-12-02", or a window's start
    verdict: Verdict
    result: RangeResult | None = None  # None: the range could not be read
    saved: int = 0  # incidents stored


@dataclass
class RunOutcome:
    """The end of a run, made from what its ranges returned: what the entrypoint prints and how it exits."""

    run_id: str | None
    phase: str
    figures: RunFigures
    verdict: Verdict  # the run's: the worst of its ranges' verdicts and of its own checks
    ranges: list[RangeOutcome] = field(default_factory=list)
    report_files: dict[str, Path] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)  # what was published/written, one line each
    summary: list[str] = field(default_factory=list)  # executive summary lines
    alerts: int = 0
    publish_status: dict[str, str] = field(default_factory=dict)  # channel → ok | failed | skipped

    @property
    def results(self) -> list[RangeResult]:
        """What the ranges that could be read found."""
        return [r.result for r in self.ranges if r.result is not None]

    @property
    def failed(self) -> list[str]:
        """The failed ranges, each with why ("2026-12-02: Elasticsearch … unreachable (timed out)")."""
        return [f"{r.label}: {'; '.join(r.verdict.reasons)}" for r in self.ranges if r.verdict.failed]

    @property
    def ok(self) -> bool:
        return not self.verdict.failed


def analyse(
    c: Components, start: datetime, end: datetime, unstored: Sequence[RangeResult] = ()
) -> RangeResult:
    """fetch → normalize → fingerprint → classify → aggregate, then detect and propagate.

    `unstored`: earlier ranges of this run that were not persisted (a dry run): detect sees them as
    if they had been, so a dry run finds what the real run would."""
    counted = c.analyser.count(start, end, after_fork=partial(c.store.engine.dispose, close=False))
    analysis = counted.aggregator.result(counted.stats)
    history = c.store.history(start - timedelta(days=c.schedule.baseline_days), start)
    states = c.store.problem_states(before=start)
    for earlier in unstored:
        _as_if_stored(earlier.analysis, history, states)
    states = _with_triage(states, c.registry, start, c.store.problem_renames())
    detection = detect(analysis, history, states, c.thresholds.detect)
    chains = propagate(analysis, c.thresholds.propagate)
    detection.findings = with_chains(detection.findings, chains)
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
            states[pid] = replace(states[pid], first_seen=first, last_seen=last)
        else:
            states[pid] = ProblemState(pid, first, last)


def backfill(c: Components, days: list[date], output: Path, *, dry_run: bool, now: datetime) -> RunOutcome:
    """Analyse whole UTC days, each on its own; report and publish the run."""
    logger = log.get().bind(phase="backfill", dry_run=dry_run)
    args = {"days": [d.isoformat() for d in days], "dry_run": dry_run}
    with _run(c.store, c.identity, "backfill", args, dry_run) as run:
        _learn_baseline(c, run, days[0], logger)
        starts = [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in days]
        # One failed day never stops the others.
        ranges = _process(c, run, starts, DAY, "day", stop_at_failure=False, logger=logger)
        _apply_retention(c.store, c.schedule.retention_days, run, now)
        results = [r.result for r in ranges if r.result is not None]
        registry_updates = _update_registry(c, run, logger, now)
        figures = _figures(ranges, len(days), registry_updates, run.elapsed())
        verdicts = [r.verdict for r in ranges] + [_registry_verdict(c.registry)]
        verdict = Verdict.worst(verdicts, range_text(starts[0], starts[-1] + DAY))
        report = _report(c, "backfill", days, results, figures, verdict, [r.verdict for r in ranges], now)
        with run.step("report"):
            report_files = write_reports(report, output)
        published, publish_status = c.publisher.report(report, results, c.registry, output, c.store, now)
        outcome = RunOutcome(
            run.run_id,
            "backfill",
            figures,
            verdict,
            ranges,
            report_files=report_files,
            published=published,
            summary=executive_summary(report),
            publish_status=publish_status,
        )
        run.finish(outcome)
    return outcome


def regular_phase(c: Components, lookback: timedelta, *, dry_run: bool, now: datetime) -> RunOutcome:
    """Analyse every unprocessed 15-minute window up to now − ingest lag; alert only on critical findings."""
    logger = log.get().bind(phase="regular", dry_run=dry_run)
    args = {"lookback_min": lookback.total_seconds() / 60, "dry_run": dry_run}
    with _run(c.store, c.identity, "regular", args, dry_run) as run:
        windows = pending_windows(c.store, c.schedule, lookback, now)
        # Later windows wait after a failure: processing them would leave a hole the catch-up skips.
        ranges = _process(c, run, windows, WINDOW, "window", stop_at_failure=True, logger=logger)
        _apply_retention(c.store, c.schedule.retention_days, run, now)
        results = [r.result for r in ranges if r.result is not None]
        registry_updates = _update_registry(c, run, logger, now)
        figures = _figures(ranges, len(windows), registry_updates, run.elapsed())
        label = range_text(windows[0], windows[-1] + WINDOW) if windows else ""
        verdict = Verdict.worst([r.verdict for r in ranges] + [_registry_verdict(c.registry)], label)
        # What the stored windows left pending, this run's and any earlier run's that died before
        # alerting; a dry run stores nothing and alerts what it found.
        if run.dry_run:
            pending = [(0, f) for r in results for f in critical(r.detection.findings, c.thresholds.detect)]
        else:
            pending = c.store.pending_alerts()
        findings = [finding for _, finding in pending]
        # Also without findings: what earlier runs failed to deliver is delivered now.
        last = c.store.last_processed_window() if not run.dry_run else None
        through = (windows[-1] if run.dry_run and windows else last or now - WINDOW) + WINDOW
        published, publish_status, handed_over = c.publisher.alert(findings, c.store, now, through)
        if handed_over and not run.dry_run:
            c.store.alerts_handed_over([alert_id for alert_id, _ in pending])
        outcome = RunOutcome(
            run.run_id,
            "regular",
            figures,
            verdict,
            ranges,
            published=published,
            alerts=len(findings),
            publish_status=publish_status,
        )
        run.finish(outcome)
    return outcome


def _process(
    c: Components,
    run: _Run,
    starts: list[datetime],
    size: timedelta,
    name: str,
    *,
    stop_at_failure: bool,
    logger,
) -> list[RangeOutcome]:
    """Analyse and persist each range [start, start + size) atomically, with its verdict.

    A range the source could not deliver (unreachable, a failed shard, no index) is not stored, so a
    later run analyses it again. A range that was read but held no logs or nothing readable is
    stored as read, and its verdict says it failed."""
    ranges: list[RangeOutcome] = []
    for start in log.progress(starts, total=len(starts), desc=f"{run.phase} {name}s"):
        end = start + size
        label = start.date().isoformat() if size == DAY else isoformat(start)
        unstored = [r.result for r in ranges if r.result is not None] if run.dry_run else ()
        try:
            with run.step(f"{name} {label}") as step:
                arrived = volume_verdict(c.analyser.source, start, end, label, c.thresholds.verdict)
                result = analyse(c, start, end, unstored)
                read = read_verdict(result.analysis.stats, label, c.thresholds.verdict)
                verdict = Verdict.worst([arrived, read], label)
                # The regular phase's critical findings are stored with their window, to be alerted.
                alerts = critical(result.detection.findings, c.thresholds.detect) if name == "window" else []
                saved = run.persist(result, start, end, alerts)
                _release_stored_details(result)
                step.verdict = verdict
                step.counts.update(events=result.analysis.stats.fetched, incidents=saved)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, SourceUnavailable) else f"{type(exc).__name__}: {exc}"
            logger.error(f"{name} failed", range=label, error=reason)
            ranges.append(RangeOutcome(label, Verdict("failed", (reason,), label)))
            if stop_at_failure:
                break
            continue
        if not verdict.ok:
            logger.warning(f"{name} {verdict.status}", range=label, reasons=list(verdict.reasons))
        ranges.append(RangeOutcome(label, verdict, result, saved))
    return ranges


def _figures(
    ranges: list[RangeOutcome], requested: int, registry_updates: int, duration_s: float
) -> RunFigures:
    """The run's figures, from what its ranges returned."""
    stats = InputStats()
    for r in ranges:
        if r.result is not None:
            stats.merge(r.result.analysis.stats)
    failed = [r.label for r in ranges if r.verdict.failed]
    return RunFigures(
        days_processed=requested,
        days_succeeded=len(ranges) - len(failed),
        days_failed=len(failed),
        failed_days=failed,
        events_fetched=stats.fetched,
        events_skipped=dict(stats.skipped),
        incidents_saved=sum(r.saved for r in ranges),
        registry_updates=registry_updates,
        duration_s=duration_s,
    )


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


def pending_windows(store: Store, schedule: Schedule, lookback: timedelta, now: datetime) -> list[datetime]:
    """Aligned windows not yet processed, oldest first: from the last processed one (or `lookback`
    ago on a first run) up to now − ingest lag. Capped per run; the rest is caught up next run."""
    end = window_start(now - schedule.ingest_lag)
    last = store.last_processed_window()
    begin = window_start(end - lookback)
    if last is not None:
        begin = min(begin, last + WINDOW)
    done = store.processed_windows(begin, end)
    windows = []
    cursor = begin
    while cursor < end and len(windows) < schedule.max_catchup_windows:
        if cursor not in done:
            windows.append(cursor)
        cursor += WINDOW
    return windows


# --- the run record -------------------------------------------------------------------------


@dataclass
class _Step:
    """What a step of the run records besides its time: counts, and the verdict of a range."""

    counts: dict = field(default_factory=dict)
    verdict: Verdict | None = None


class _Run:
    """Records the run and its steps in the store (nothing in a dry run) and times its database writes."""

    def __init__(
        self, store: Store, identity: RunIdentity, phase: str, run_id: str | None, dry_run: bool
    ) -> None:
        self.store, self.identity = store, identity
        self.phase, self.run_id, self.dry_run = phase, run_id, dry_run
        self.started_at = datetime.now(UTC)
        self.db_write_seconds = 0.0
        self.db_up: bool | None = None if dry_run else True

    def elapsed(self) -> float:
        return round((datetime.now(UTC) - self.started_at).total_seconds(), 1)

    @contextmanager
    def step(self, name: str) -> Iterator[_Step]:
        step = _Step()
        started = datetime.now(UTC)
        try:
            yield step
        except Exception as exc:
            self._record(name, "failed", started, step.counts, str(exc))
            raise
        verdict = step.verdict or Verdict()
        status = "succeeded" if verdict.ok else verdict.status
        self._record(name, status, started, step.counts, "; ".join(verdict.reasons) or None)

    def _record(self, name: str, status: str, started: datetime, counts: dict, error: str | None) -> None:
        if self.run_id is not None:
            self.store.record_step(self.run_id, name, status, started, datetime.now(UTC), counts, error)

    def persist(
        self, result: RangeResult, start: datetime, end: datetime, alerts: Sequence[Finding] = ()
    ) -> int:
        """Replace the range in the store in one transaction, with the critical findings to alert;
        returns the incidents saved."""
        if self.dry_run:
            return 0
        analysis = result.analysis
        began = time.monotonic()
        try:
            written = self.store.replace_range(
                start, end, analysis.incidents, result.detection.peaks, self.run_id, self.phase, alerts
            )
        except StoreUnavailable:
            self.db_up = False
            raise
        finally:
            self.db_write_seconds += time.monotonic() - began
        return written.incidents_saved

    def finish(self, outcome: RunOutcome) -> None:
        """Record how the run ended and push its metrics."""
        if self.run_id is not None:
            figures = outcome.figures
            if outcome.verdict.failed:
                status = "partial" if figures.days_succeeded else "failed"
            else:
                status = "succeeded" if outcome.verdict.ok else "degraded"
            counts = {
                "events_fetched": figures.events_fetched,
                "incidents_saved": figures.incidents_saved,
                "registry_updates": figures.registry_updates,
                "ranges": figures.days_processed,
                "failed": figures.failed_days,
                "alerts": outcome.alerts,
                "verdict": outcome.verdict.status,
            }
            self.store.finish_run(self.run_id, status, counts, "; ".join(outcome.verdict.reasons) or None)
        _push_metrics(self, outcome)


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
def _run(store: Store, identity: RunIdentity, phase: str, args: dict, dry_run: bool) -> Iterator[_Run]:
    """Hold the phase lock and record the run; a crash marks it failed and pushes failed metrics.
    The phase ends a run that did not crash with `_Run.finish`."""
    with _rare_collections():
        if dry_run:
            yield _Run(store, identity, phase, None, dry_run)
            return
        with store.phase_lock(phase):
            pod = identity.k8s_pod or socket.gethostname()
            run_id = store.start_run(phase, args, identity.k8s_job, pod)
            log.get().info("run started", phase=phase, run_id=run_id, k8s_job=identity.k8s_job, k8s_pod=pod)
            run = _Run(store, identity, phase, run_id, dry_run)
            try:
                yield run
            except BaseException as exc:
                reason = f"{type(exc).__name__}: {exc}"
                with contextlib.suppress(Exception):  # the database may be what failed
                    store.finish_run(run_id, "failed", {}, reason)
                crashed = RunOutcome(run_id, phase, RunFigures(), Verdict("failed", (reason,)))
                _push_metrics(run, crashed)
                raise


def _push_metrics(run: _Run, outcome: RunOutcome) -> None:
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
        run.identity.pushgateway_url,
    )


def _learn_baseline(c: Components, run: _Run, first_day: date, logger) -> None:
    """On a first run, analyse the baseline days before the first requested day, so that
    yesterday's problems are compared with a real history instead of all being "new". A first run
    killed half-way learns the days still missing on the next run."""
    if run.dry_run or c.schedule.baseline_days == 0:
        return
    days = [first_day - timedelta(days=n) for n in range(c.schedule.baseline_days, 0, -1)]
    starts = [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in days]
    missing = [s for s in starts if len(c.store.processed_windows(s, s + DAY)) < DAY // WINDOW]
    if not missing or (len(missing) == len(starts) and c.store.last_processed_window() is not None):
        return  # learned already, or the store has a history of its own (the regular phase's)
    logger.info("learning the baseline first", days=len(missing), before=first_day.isoformat())
    for start in log.progress(missing, total=len(missing), desc="learning baseline"):
        try:
            with run.step(f"baseline {start.date().isoformat()}"):
                run.persist(analyse(c, start, start + DAY), start, start + DAY)
        except SourceUnavailable as exc:
            # The requested days meet the same source and fail with this reason in their verdicts.
            logger.error("baseline not learned", error=str(exc))
            return


def _registry_verdict(registry: Registry) -> Verdict:
    """`degraded` while what people wrote in the registry cannot be used (a YAML error, an unknown
    status): the run goes on with the store's facts and leaves their files as written."""
    issues = tuple(str(issue) for issue in registry.issues())
    return Verdict("degraded", issues) if issues else Verdict()


def _with_triage(
    states: dict[str, ProblemState], registry: Registry, at: datetime, renames: Mapping[str, str]
) -> dict[str, ProblemState]:
    """The store knows the facts, people know the triage: overlay the registry's. An ignore whose
    `until` is not after `at` (the range's start) has ended and reads as open; an entry the registry
    has not yet moved to its problem's new id (`renames`, old → new) counts for the new id."""
    try:
        triages = registry.triages()
    except RegistryError as exc:
        log.get().error("registry unreadable; using database state", error=str(exc))
        return states
    for old, new in sorted(renames.items()):
        if old in triages and new not in triages:
            triages[new] = triages[old]
    merged = dict(states)
    for pid, entry in triages.items():
        ended = entry.triage == "ignored" and entry.until is not None and entry.until <= at
        state = states.get(pid)
        if state is None:
            if entry.triage != "ignored" or ended:
                continue  # the store has not seen it: new, whatever the registry says
            # Ignored before the store saw it (a day analysed again, a store started afresh).
            state = ProblemState(pid, entry.first_seen or at, entry.last_seen or at)
        merged[pid] = replace(
            state,
            triage="open" if ended else entry.triage,
            resolved_at=entry.resolved_at,
            until=None if ended else entry.until,
        )
    return merged


def _apply_retention(store: Store, retention_days: int, run: _Run, now: datetime) -> None:
    """Remove what is older than `RETENTION_DAYS` (never in a dry run); problems keep their first sighting."""
    if run.dry_run or not retention_days:
        return
    with run.step("retention") as step:
        step.counts.update(store.purge_before(now - timedelta(days=retention_days)))


def _update_registry(c: Components, run: _Run, logger, now: datetime) -> int:
    """Bring the registry and its CSV exports up to date with the store (never in a dry run); returns
    the entries added or updated.

    From the store, not only from this run's results: what a killed run stored reaches the
    registry with the next run."""
    if run.dry_run:
        return 0
    last = c.store.last_processed_window()
    peaks = (
        []
        if last is None
        else c.store.peaks_between(last - c.schedule.baseline_days * DAY - DAY, last + WINDOW)
    )
    try:
        with run.step("registry") as step:
            renames = c.store.problem_renames()
            update = c.registry.update(c.store.problems(), peaks, now, renames=renames)
            c.registry.export_csv(c.publisher.export_dir)
            step.counts.update(
                added=update.problems_added,
                updated=update.problems_updated,
                peaks=update.peaks_added,
                peaks_expired=update.peaks_expired,
            )
    except RegistryError as exc:
        logger.error("registry not updated", error=str(exc))
        return 0
    return update.problems_added + update.problems_updated + update.peaks_added


def _report(
    c: Components,
    phase: str,
    days: list[date],
    results: list[RangeResult],
    figures: RunFigures,
    verdict: Verdict,
    range_verdicts: list[Verdict],
    now: datetime,
) -> Report:
    start = datetime(days[0].year, days[0].month, days[0].day, tzinfo=UTC)
    end = datetime(days[-1].year, days[-1].month, days[-1].day, tzinfo=UTC) + DAY
    stats = InputStats()
    states: dict[str, ProblemState] = {}
    classes: dict[str, ProblemClass] = {}
    for r in results:
        stats.merge(r.analysis.stats)
        for pid, state in r.states.items():
            states.setdefault(pid, state)
        classes.update(r.classes)
    try:
        registry = {pid: dict(entry) for pid, entry in c.registry.load().items()}
    except RegistryError:
        registry = {}
    report = build_report(
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
        redactor=c.publisher.redactor,
        verdict=verdict,
        range_verdicts=range_verdicts,
    )
    what_changed(report, c.analyser, c.thresholds.change, c.publisher.redactor)
    if c.publisher.destinations.kibana is not None:
        link_problems(report, c.publisher.destinations.kibana)
    return report


def what_changed(report: Report, analyser: Analyser, config: ChangeConfig, redactor: Redactor) -> None:
    """Say which rollout each new or regressed problem followed (`core.change`). The source failing
    here costs those sentences only, never the report."""
    source = analyser.source
    if config.window <= timedelta(0) or not isinstance(source, RolloutSource):
        return
    try:
        changes = explain(subjects(report.problems), source, config, analyser.fields)
    except Exception as exc:
        log.get().bind(step="report").warning("what changed before new problems is unknown", error=str(exc))
        return
    for problem in report.problems:
        if problem.id in changes:
            problem.change = redactor.redact(changes[problem.id])
