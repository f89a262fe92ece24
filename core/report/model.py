"""The report model: a range's incidents merged per problem, ranked, with what people know of them."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import Any

from core.model import (
    TRIAGES,
    Chain,
    Detection,
    Finding,
    Incident,
    InputStats,
    Peak,
    ProblemClass,
    ProblemState,
    Verdict,
    Workload,
    isoformat,
    plural,
    utc,
    worst_severity,
)
from core.redact import Redactor

SCHEMA_VERSION = "1.4"
"""Version of the JSON report layout (docs/report-schema.md); bump the major part on breaking changes."""

TOP_DETAILS = 20
"""Problems listed in PROBLEM DETAILS and on the Confluence page."""

MAX_SAMPLE_CHARS = 500
MAX_TEMPLATES = 10

SEVERITY_WEIGHT = {"critical": 8.0, "high": 4.0, "medium": 2.0, "low": 1.0}
FINDING_WEIGHT = {"new": 1.0, "regression": 1.0, "cross_namespace": 1.0, "spike": 0.5, "burst": 0.5}


@dataclass(slots=True)
class RunFigures:
    """What a run did, for the report's RUN section and the Teams summary."""

    days_processed: int = 0
    days_succeeded: int = 0
    days_failed: int = 0
    failed_days: list[str] = field(default_factory=list)  # ISO days (backfill) or window starts (regular)
    events_fetched: int = 0
    events_skipped: dict[str, int] = field(default_factory=dict)  # reason → count
    incidents_saved: int = 0
    registry_updates: int = 0  # registry entries added or updated
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class WorkloadStats:
    """One workload of a problem, with its own count and first and last occurrence in the range."""

    workload: Workload
    count: int
    first_seen: datetime
    last_seen: datetime
    jobs: int = 0  # for a CronJob: how many of its Jobs the figures are of

    @property
    def label(self) -> str:
        """ "Deployment/cards/api", "CronJob/batch/statement-export (24 Jobs)"."""
        return (
            f"{self.workload} ({self.jobs} Job{'s' if self.jobs != 1 else ''})"
            if self.jobs
            else str(self.workload)
        )


@dataclass(slots=True)
class ProblemSummary:
    """One problem over the report range: its incidents merged, its findings, and what people know of it."""

    id: str
    category: str
    flow: str
    error_class: str
    severity: str
    fact: str  # FACTS: new | recurring | regressed, what the pipeline saw
    triage: str  # TRIAGES: open | acknowledged | ignored | resolved, what people decided
    score: float
    count: int
    first_seen: datetime
    last_seen: datetime
    known_since: datetime | None  # first seen before this range; None for a new problem
    namespaces: list[str]
    workloads: list[Workload]
    templates: list[str]  # redacted
    sample: str  # redacted
    findings: list[Finding]  # details redacted
    remediation: list[str]
    owner: str | None = None
    ticket: str | None = None
    notes: str | None = None
    silenced_until: datetime | None = None  # an ignored problem's `until`
    reason: str | None = None  # why people ignore or acknowledge it
    workload_stats: list[WorkloadStats] = field(default_factory=list)  # each workload's own figures
    kibana_url: str | None = None  # a Discover link showing exactly this problem's events
    change: str | None = None  # what changed before it started ("first seen 4 min after … rolled out 1.39.3")
    fingerprint_keys: list[str] = field(default_factory=list)

    @property
    def finding_kinds(self) -> list[str]:
        return sorted({finding.kind for finding in self.findings})

    @property
    def services(self) -> list[str]:
        return services(self.workloads)


def services(workloads: Iterable[Workload]) -> list[str]:
    """The Services cell: each workload, a CronJob's Jobs grouped under it
    ("CronJob/batch/statement-export (24 Jobs)"); a CronJob's one Job keeps its name and says whose
    it is ("Job/batch/nightly-settlement-29936280 of CronJob nightly-settlement")."""
    jobs: dict[tuple[str, str], list[Workload]] = {}
    cronjobs: set[tuple[str, str]] = set()
    others: list[Workload] = []
    for workload in workloads:
        if workload.cronjob:
            jobs.setdefault((workload.namespace, workload.cronjob), []).append(workload)
        elif workload.kind == "CronJob":
            cronjobs.add((workload.namespace, workload.name))
        else:
            others.append(workload)
    cells = [str(workload) for workload in others]
    for namespace, name in cronjobs | set(jobs):
        its_jobs = jobs.get((namespace, name), [])
        if len(its_jobs) == 1 and (namespace, name) not in cronjobs:
            cells.append(its_jobs[0].label)
        else:
            count = f" ({len(its_jobs)} Job{'s' if len(its_jobs) != 1 else ''})" if its_jobs else ""
            cells.append(f"{Workload('CronJob', namespace, name)}{count}")
    return sorted(cells)


@dataclass(slots=True)
class Report:
    """Everything one report shows; log-derived text in it is already redacted."""

    generated_at: datetime
    phase: str  # backfill | regular_phase
    start: datetime
    end: datetime
    problems: list[ProblemSummary]  # ranked, most important first; ignored problems last
    peaks: list[Peak]  # highest ratio first
    findings: list[Finding]  # all findings, including namespace-scoped ones
    chains: list[Chain]  # most confident first
    stats: InputStats
    figures: RunFigures
    verdict: Verdict = field(default_factory=Verdict)  # the run's; not ok: every output says so first
    range_verdicts: list[Verdict] = field(default_factory=list)  # one per day or window analysed

    @property
    def label(self) -> str:
        """The range as people name it: "Backfill Analysis: 2026-02-09"."""
        return f"{self.phase.replace('_', ' ').title()} Analysis: {range_text(self.start, self.end)}"


def range_text(start: datetime, end: datetime) -> str:
    """Whole UTC days as dates ("2026-02-09", "2026-02-08 to 2026-02-09"), any other range as instants."""
    start, end = utc(start), utc(end)
    if start.time() == time() and end.time() == time() and end > start:
        last_day = (end - timedelta(days=1)).date()
        return str(start.date()) if last_day == start.date() else f"{start.date()} to {last_day}"
    return f"{isoformat(start)} to {isoformat(end)}"


def problem_score(severity: str, finding_kinds: Iterable[str], count: int) -> float:
    """The ranking score: severity weight × (1 + Σ weights of the distinct finding kinds) × (1 + log10 count).

    Severity dominates and findings multiply it, while the count only adds its order of magnitude: a
    critical new cross-namespace problem seen 40 times (8 × 3 × 2.6 ≈ 62.4) ranks above a low-severity
    one seen 50 000 times without findings (1 × 1 × 5.7 = 5.7).
    """
    findings_factor = 1.0 + sum(FINDING_WEIGHT.get(kind, 0.0) for kind in set(finding_kinds))
    return SEVERITY_WEIGHT.get(severity, 1.0) * findings_factor * (1.0 + math.log10(max(count, 1)))


def problem_fact(*, state: ProblemState | None, finding_kinds: Iterable[str]) -> str:
    """What the pipeline saw of a problem in the range (FACTS): `regressed` with a regression finding,
    `new` when the store did not know it before the range (even when ignored) or with a new finding,
    else `recurring`."""
    kinds = set(finding_kinds)
    if "regression" in kinds:
        return "regressed"
    return "new" if state is None or "new" in kinds else "recurring"


def problem_triage(*, state: ProblemState | None, entry: Mapping[str, Any]) -> str:
    """What people decided (TRIAGES): the range's state overlaid with the registry, else the entry."""
    if state is not None:
        return state.triage
    triage = str(entry.get("triage") or "open")
    return triage if triage in TRIAGES else "open"


def _finding_targets(finding: Finding, incidents_by_problem: dict[str, list[Incident]]) -> list[str]:
    """The problems a finding is about: its own id or, for a cross-namespace finding written
    `CATEGORY:*:error_class` (the flow differs per namespace), each problem of that class seen in
    one of the namespaces it names."""
    category, wildcard, error_class = finding.problem_id.partition(":*:")
    if not wildcard:
        return [finding.problem_id]
    namespaces = set(finding.namespaces)
    return [
        pid
        for pid, group in incidents_by_problem.items()
        if pid.startswith(f"{category}:")
        and pid.endswith(f":{error_class}")
        and any(incident.namespace in namespaces for incident in group)
    ]


def build_report(
    *,
    generated_at: datetime,
    phase: str,
    start: datetime,
    end: datetime,
    incidents: list[Incident],
    detection: Detection,
    chains: list[Chain],
    states: Mapping[str, ProblemState],
    registry: Mapping[str, Mapping[str, Any]],
    classes: Mapping[str, ProblemClass],
    stats: InputStats,
    figures: RunFigures,
    redactor: Redactor,
    verdict: Verdict | None = None,
    range_verdicts: Iterable[Verdict] = (),
) -> Report:
    """Merge the range's incidents per problem, attach findings and human fields, and rank them."""
    incidents_by_problem: dict[str, list[Incident]] = defaultdict(list)
    for incident in incidents:
        incidents_by_problem[incident.problem_id].append(incident)
    findings = [replace(finding, detail=redactor.redact(finding.detail)) for finding in detection.findings]
    findings_by_problem: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        for problem_id in _finding_targets(finding, incidents_by_problem):
            findings_by_problem[problem_id].append(finding)

    problems = [
        _summarize(
            problem_id,
            group,
            findings=findings_by_problem.get(problem_id, []),
            state=states.get(problem_id),
            entry=registry.get(problem_id, {}),
            problem_class=classes.get(problem_id),
            redactor=redactor,
        )
        for problem_id, group in incidents_by_problem.items()
    ]
    problems.sort(key=lambda p: (p.triage == "ignored", -p.score, -p.count, p.id))
    return Report(
        generated_at=utc(generated_at),
        phase=phase,
        start=utc(start),
        end=utc(end),
        problems=problems,
        peaks=sorted(detection.peaks, key=lambda peak: (-peak.ratio, peak.window_start, peak.scope_id)),
        findings=findings,
        chains=[
            replace(chain, evidence=tuple(redactor.redact(line) for line in chain.evidence))
            for chain in sorted(chains, key=lambda chain: -chain.confidence)
        ],
        stats=stats,
        figures=figures,
        verdict=_redacted(verdict or Verdict(), redactor),
        range_verdicts=[_redacted(v, redactor) for v in range_verdicts],
    )


def _redacted(verdict: Verdict, redactor: Redactor) -> Verdict:
    """A source's error may quote what it failed on (a field value): reasons are redacted like samples."""
    return replace(verdict, reasons=tuple(redactor.redact(reason) for reason in verdict.reasons))


def empty_summary(report: Report) -> str:
    """What the executive summary says when it lists no problem: never "No problems" for a range that
    could not be read."""
    return nothing_listed(report, "problems", "No problems in this range.")


def nothing_listed(report: Report, what: str, ok: str | None = None) -> str:
    """What a section that lists no `what` (problems, peaks, chains) says: that there are none only
    where the range was read (`ok`, default "No <what>."); where it failed, that none can be reported;
    where it is degraded, that none were found in what could be read."""
    if report.verdict.failed:
        return f"No {what} can be reported: the analysis failed (see above)."
    if not report.verdict.ok:
        return f"No {what} found in what could be read; the analysis is degraded (see above)."
    return ok or f"No {what}."


def _summarize(
    problem_id: str,
    incidents: list[Incident],
    *,
    findings: list[Finding],
    state: ProblemState | None,
    entry: Mapping[str, Any],
    problem_class: ProblemClass | None,
    redactor: Redactor,
) -> ProblemSummary:
    incidents = sorted(incidents, key=lambda i: i.first_seen or i.window_start)
    head = incidents[0]
    # One severity everywhere: a problem whose finding pages as critical is critical in the report too.
    severity = worst_severity([*(i.severity for i in incidents), *(f.severity for f in findings)])
    count = sum(i.count for i in incidents)
    kinds = {finding.kind for finding in findings}
    templates = list(dict.fromkeys(t for i in incidents for t in i.fingerprints.values()))[:MAX_TEMPLATES]
    # The busiest incident's sample is the most representative one. Redact the whole message before
    # cutting it, so that a secret is never cut into a form the rules no longer recognise.
    busiest = max(incidents, key=lambda i: i.count)
    fact = problem_fact(state=state, finding_kinds=kinds)
    triage = problem_triage(state=state, entry=entry)
    if fact == "regressed" and triage == "resolved":
        triage = "open"  # reopened, as the registry's next update writes it
    sample = redactor.redact(busiest.samples[0])[:MAX_SAMPLE_CHARS] if busiest.samples else ""
    return ProblemSummary(
        id=problem_id,
        category=head.category,
        flow=head.flow,
        error_class=head.error_class,
        severity=severity,
        fact=fact,
        triage=triage,
        score=round(problem_score(severity, kinds, count), 3),
        count=count,
        first_seen=min(utc(i.first_seen or i.window_start) for i in incidents),
        last_seen=max(utc(i.last_seen or i.window_start) for i in incidents),
        known_since=utc(state.first_seen) if state else None,
        namespaces=sorted({i.namespace for i in incidents}),
        workloads=sorted({i.workload for i in incidents}, key=str),
        workload_stats=workload_stats(incidents),
        fingerprint_keys=sorted({key for i in incidents for key in i.fingerprints}),
        templates=[redactor.redact(template) for template in templates],
        sample=sample,
        findings=sorted(findings, key=lambda f: (f.window_start, f.kind)),
        remediation=list(problem_class.remediation) if problem_class else [],
        owner=_text_field(entry, "owner"),
        ticket=_text_field(entry, "ticket"),
        notes=_text_field(entry, "notes"),
        silenced_until=state.until if state and triage == "ignored" else None,
        reason=_text_field(entry, "reason"),
    )


def workload_stats(incidents: Iterable[Incident]) -> list[WorkloadStats]:
    """Each workload's own count and first and last occurrence, busiest first: the problem's totals
    alone hide which workload started it and which one carries it. The Jobs of one CronJob are one
    row, as in the Services cell, when there are several of them."""
    incidents = list(incidents)
    jobs: dict[Workload, set[Workload]] = defaultdict(set)
    for incident in incidents:
        if cronjob := incident.workload.cronjob:
            jobs[Workload("CronJob", incident.workload.namespace, cronjob)].add(incident.workload)
    by_workload: dict[Workload, list[Incident]] = defaultdict(list)
    for incident in incidents:
        workload, cronjob = incident.workload, incident.workload.cronjob
        owner = Workload("CronJob", workload.namespace, cronjob) if cronjob else None
        by_workload[owner if owner and len(jobs[owner]) > 1 else workload].append(incident)
    stats = [
        WorkloadStats(
            workload=workload,
            count=sum(i.count for i in group),
            first_seen=min(utc(i.first_seen or i.window_start) for i in group),
            last_seen=max(utc(i.last_seen or i.window_start) for i in group),
            jobs=len(jobs[workload]) if workload.kind == "CronJob" else 0,
        )
        for workload, group in by_workload.items()
    ]
    return sorted(stats, key=lambda s: (-s.count, s.first_seen, str(s.workload)))


def _text_field(entry: Mapping[str, Any], key: str) -> str | None:
    # Registry YAML is edited by hand: a ticket may come back as a number, an empty field as None.
    value = entry.get(key)
    return None if value is None or value == "" else str(value)


def summary_problems(report: Report, n: int = 5) -> list[ProblemSummary]:
    """The problems for the executive summary: the top `n`, never an ignored one, and a chain's
    dependent problems folded into its root (one outage is one line, not one line per namespace)."""
    shown = [problem for problem in report.problems if problem.triage != "ignored"]
    listed = {problem.id for problem in shown}
    caused = chain_dependents(report)
    folded = {pid for root, dependents in caused.items() if root in listed for pid in dependents}
    return [problem for problem in shown if problem.id not in folded or problem.id in caused][:n]


def chain_dependents(report: Report) -> dict[str, list[str]]:
    """Root problem id → the other problems of its propagation chains, in order of first occurrence."""
    dependents: dict[str, list[str]] = {}
    for chain in report.chains:
        root = chain.root.problem_id
        members = dependents.setdefault(root, [])
        for member in chain.members:
            if member.problem_id != root and member.problem_id not in members:
                members.append(member.problem_id)
    return dependents


def executive_summary(report: Report, n: int = 5) -> list[str]:
    """Lines like "BUSINESS:card_servicing:validation_error (245 occurrences)" for Teams and stdout;
    a chain's root says how many dependent problems it explains."""
    caused = chain_dependents(report)
    lines = []
    for problem in summary_problems(report, n):
        line = f"{problem.id} ({occurrences(problem.count)})"
        if caused.get(problem.id):
            count = len(caused[problem.id])
            line += f" - likely root of {count} dependent problem{'s' if count > 1 else ''}"
        lines.append(line)
    return lines


def why_it_matters(problem: ProblemSummary) -> str:
    """The reasons behind a problem's rank, e.g. "critical, new, cross-namespace (3 namespaces)"."""
    reasons = [problem.severity] if problem.severity in ("critical", "high") else []
    for kind in problem.finding_kinds:
        if kind == "cross_namespace":
            # The finding is about the problem's class across namespaces: count those, not the
            # problem's own (one, when each namespace has its own flow and so its own problem id).
            spread = max(len(f.namespaces) for f in problem.findings if f.kind == kind)
            if spread >= 2:
                reasons.append(f"cross-namespace ({plural(spread, 'namespace')})")
        else:
            reasons.append(kind)
    if problem.fact == "regressed" and "regression" not in reasons:
        reasons.append("regression")
    return ", ".join(reasons) or f"{problem.severity} severity"


def occurrences(count: int) -> str:
    return f"{count} occurrence" if count == 1 else f"{count} occurrences"
