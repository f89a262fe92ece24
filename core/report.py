"""The problem report: a range's incidents merged per problem, ranked, and written as TXT, JSON and CSV."""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import re
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from core.model import (
    Chain,
    ChainMember,
    Detection,
    Finding,
    Incident,
    InputStats,
    Peak,
    ProblemClass,
    ProblemState,
    Verdict,
    Workload,
    finding_to_dict,
    isoformat,
    utc,
)
from core.redact import Redactor

SCHEMA_VERSION = "1.3"
"""Version of the JSON report layout (docs/report-schema.md); bump the major part on breaking changes."""

TOP_DETAILS = 20
"""Problems listed in PROBLEM DETAILS and on the Confluence page."""

MAX_SAMPLE_CHARS = 500
MAX_TEMPLATES = 10

SEVERITY_WEIGHT = {"critical": 8.0, "high": 4.0, "medium": 2.0, "low": 1.0}
FINDING_WEIGHT = {"new": 1.0, "regression": 1.0, "cross_namespace": 1.0, "spike": 0.5, "burst": 0.5}

_SECTION_RULE = "─"


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


@dataclass(slots=True)
class ProblemSummary:
    """One problem over the report range: its incidents merged, its findings, and what people know of it."""

    id: str
    category: str
    flow: str
    error_class: str
    severity: str
    status: str  # new | known | regressed | ignored | … (a human status from the registry)
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


def problem_status(
    *, state: ProblemState | None, registry_status: str | None, finding_kinds: Iterable[str]
) -> str:
    """The status shown for a problem seen in the range; a person's "ignored" always wins."""
    kinds = set(finding_kinds)
    known_status = registry_status or (state.status if state else None)
    if known_status == "ignored":
        return "ignored"
    if "regression" in kinds or known_status == "resolved":
        return "regressed"
    if state is None or "new" in kinds:
        return "new"
    return "known" if known_status in (None, "new") else known_status


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
    problems.sort(key=lambda p: (p.status == "ignored", -p.score, -p.count, p.id))
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
    if report.verdict.failed:
        return "No problems can be reported: the analysis failed (see above)."
    if not report.verdict.ok:
        return "No problems found in what could be read; the analysis is degraded (see above)."
    return "No problems in this range."


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
    severity = max((i.severity for i in incidents), key=lambda s: SEVERITY_WEIGHT.get(s, 0.0))
    count = sum(i.count for i in incidents)
    kinds = {finding.kind for finding in findings}
    templates = list(dict.fromkeys(t for i in incidents for t in i.fingerprints.values()))[:MAX_TEMPLATES]
    # The busiest incident's sample is the most representative one. Redact the whole message before
    # cutting it, so that a secret is never cut into a form the rules no longer recognise.
    busiest = max(incidents, key=lambda i: i.count)
    sample = redactor.redact(busiest.samples[0])[:MAX_SAMPLE_CHARS] if busiest.samples else ""
    return ProblemSummary(
        id=problem_id,
        category=head.category,
        flow=head.flow,
        error_class=head.error_class,
        severity=severity,
        status=problem_status(state=state, registry_status=_text_field(entry, "status"), finding_kinds=kinds),
        score=round(problem_score(severity, kinds, count), 3),
        count=count,
        first_seen=min(utc(i.first_seen or i.window_start) for i in incidents),
        last_seen=max(utc(i.last_seen or i.window_start) for i in incidents),
        known_since=utc(state.first_seen) if state else None,
        namespaces=sorted({i.namespace for i in incidents}),
        workloads=sorted({i.workload for i in incidents}, key=str),
        templates=[redactor.redact(template) for template in templates],
        sample=sample,
        findings=sorted(findings, key=lambda f: (f.window_start, f.kind)),
        remediation=list(problem_class.remediation) if problem_class else [],
        owner=_text_field(entry, "owner"),
        ticket=_text_field(entry, "ticket"),
        notes=_text_field(entry, "notes"),
    )


def _text_field(entry: Mapping[str, Any], key: str) -> str | None:
    # Registry YAML is edited by hand: a ticket may come back as a number, an empty field as None.
    value = entry.get(key)
    return None if value is None or value == "" else str(value)


def summary_problems(report: Report, n: int = 5) -> list[ProblemSummary]:
    """The problems for the executive summary: the top `n`, never an ignored one, and a chain's
    dependent problems folded into its root (one outage is one line, not one line per namespace)."""
    shown = [problem for problem in report.problems if problem.status != "ignored"]
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
        line = f"{problem.id} ({_occurrences(problem.count)})"
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
            reasons.append(f"cross-namespace ({len(problem.namespaces)} namespaces)")
        else:
            reasons.append(kind)
    if problem.status == "regressed" and "regression" not in reasons:
        reasons.append("regression")
    return ", ".join(reasons) or f"{problem.severity} severity"


def _occurrences(count: int) -> str:
    return f"{count} occurrence" if count == 1 else f"{count} occurrences"


# ---------------------------------------------------------------------------------------------- JSON


def report_to_dict(report: Report) -> dict[str, Any]:
    """The JSON document of a report, as described in docs/report-schema.md."""
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": isoformat(report.generated_at),
        "phase": report.phase,
        "range": {"start": isoformat(report.start), "end": isoformat(report.end), "label": report.label},
        "verdict": verdict_to_dict(report.verdict, report.range_verdicts),
        "executive_summary": executive_summary(report),
        "problems": [
            _problem_to_dict(rank, problem) for rank, problem in enumerate(report.problems, start=1)
        ],
        "peaks": [_peak_to_dict(peak) for peak in report.peaks],
        "findings": [finding_to_dict(finding) for finding in report.findings],
        "chains": [_chain_to_dict(chain) for chain in report.chains],
        "stats": {
            "fetched": report.stats.fetched,
            "accepted": report.stats.accepted,
            "skipped": dict(sorted(report.stats.skipped.items())),
            "skipped_total": report.stats.skipped_total,
            "truncated": report.stats.truncated,
            "joined_lines": report.stats.joined_lines,
        },
        "run": {
            "days_processed": report.figures.days_processed,
            "days_succeeded": report.figures.days_succeeded,
            "days_failed": report.figures.days_failed,
            "failed_days": list(report.figures.failed_days),
            "events_fetched": report.figures.events_fetched,
            "events_skipped": dict(sorted(report.figures.events_skipped.items())),
            "incidents_saved": report.figures.incidents_saved,
            "registry_updates": report.figures.registry_updates,
            "duration_s": round(report.figures.duration_s, 3),
        },
    }


def verdict_to_dict(verdict: Verdict, ranges: Iterable[Verdict]) -> dict[str, Any]:
    """The report's `verdict`: the run's status and headline, and each analysed range's."""
    return {
        "status": verdict.status,
        "label": verdict.label,
        "headline": verdict.headline(),
        "reasons": list(verdict.reasons),
        "ranges": [{"label": v.label, "status": v.status, "reasons": list(v.reasons)} for v in ranges],
    }


def _problem_to_dict(rank: int, problem: ProblemSummary) -> dict[str, Any]:
    return {
        "rank": rank,
        "id": problem.id,
        "category": problem.category,
        "flow": problem.flow,
        "error_class": problem.error_class,
        "severity": problem.severity,
        "status": problem.status,
        "score": problem.score,
        "count": problem.count,
        "first_seen": isoformat(problem.first_seen),
        "last_seen": isoformat(problem.last_seen),
        "known_since": isoformat(problem.known_since) if problem.known_since else None,
        "namespaces": problem.namespaces,
        "workloads": [
            {"kind": w.kind, "namespace": w.namespace, "name": w.name, "cronjob": w.cronjob}
            for w in problem.workloads
        ],
        "services": problem.services,
        "templates": problem.templates,
        "sample": problem.sample,
        "findings": [finding_to_dict(finding) for finding in problem.findings],
        "remediation": problem.remediation,
        "owner": problem.owner,
        "ticket": problem.ticket,
        "notes": problem.notes,
    }


def _peak_to_dict(peak: Peak) -> dict[str, Any]:
    return {
        "kind": peak.kind,
        "scope": peak.scope,
        "scope_id": peak.scope_id,
        "window_start": isoformat(peak.window_start),
        "window_end": isoformat(peak.window_end),
        "observed": peak.observed,
        "baseline": peak.baseline,
        "ratio": peak.ratio,
        "problem_id": peak.problem_id,
        "namespace": peak.namespace,
    }


def _member_to_dict(member: ChainMember) -> dict[str, Any]:
    return {
        "problem_id": member.problem_id,
        "namespace": member.namespace,
        "workload": member.workload,
        "first_seen": isoformat(member.first_seen),
        "count": member.count,
    }


def _chain_to_dict(chain: Chain) -> dict[str, Any]:
    return {
        "members": [_member_to_dict(member) for member in chain.members],
        "root": _member_to_dict(chain.root),
        "evidence": list(chain.evidence),
        "confidence": chain.confidence,
    }


# ----------------------------------------------------------------------------------------------- CSV

CSV_COLUMNS = (
    "rank",
    "id",
    "category",
    "flow",
    "error_class",
    "severity",
    "status",
    "score",
    "count",
    "first_seen",
    "last_seen",
    "known_since",
    "namespaces",
    "workloads",
    "findings",
    "sample",
    "remediation",
    "owner",
    "ticket",
)
CSV_LIST_SEPARATOR = "; "


# Control characters a CSV reader takes for a row end (a lone CR is not quoted by the csv module
# when the line terminator is LF) or stops at (NUL); a log line may contain any of them.
_CSV_CONTROL = re.compile(r"\r\n?|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def csv_text(value: object) -> object:
    """A CSV cell that reads back as one cell: line breaks become LF (quoted by the writer), other
    control characters become U+FFFD."""
    if not isinstance(value, str):
        return value
    return _CSV_CONTROL.sub(lambda m: "\n" if m.group().startswith("\r") else "\ufffd", value)


def report_to_csv(report: Report) -> str:
    """One row per problem, in rank order: the JSON record's columns, list fields joined with "; "."""
    buffer = io.StringIO()
    if not report.verdict.ok:
        # A spreadsheet shows it in the first cell; readers skip it as a comment ("#").
        buffer.write("# " + csv_text(report.verdict.headline()).replace("\n", " ") + "\n")
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for rank, problem in enumerate(report.problems, start=1):
        record = _problem_to_dict(rank, problem)
        record["workloads"] = record["services"]
        record["findings"] = problem.finding_kinds
        writer.writerow({column: csv_text(_csv_cell(record[column])) for column in CSV_COLUMNS})
    return buffer.getvalue()


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, list):
        return CSV_LIST_SEPARATOR.join(map(str, value))
    return value


# ----------------------------------------------------------------------------------------------- TXT


def _section(title: str) -> list[str]:
    return ["", title, _SECTION_RULE * len(title)]


def _indented(text: str, prefix: str) -> str:
    # Multi-line samples (stack traces) stay inside their problem block.
    return text.replace("\n", "\n" + prefix)


def report_to_text(report: Report) -> str:
    """The human-readable PROBLEM_ANALYSIS_REPORT; a run that is not ok says so on its first line."""
    lines = [] if report.verdict.ok else [report.verdict.headline(), ""]
    lines += [
        "PROBLEM_ANALYSIS_REPORT",
        report.label,
        f"Generated: {isoformat(report.generated_at)}",
        f"Range: [{isoformat(report.start)}, {isoformat(report.end)})",
    ]

    lines += _section("EXECUTIVE SUMMARY")
    top = summary_problems(report)
    if not top:
        lines.append(empty_summary(report))
    for position, problem in enumerate(top, start=1):
        lines.append(f"{position}. {problem.id} ({_occurrences(problem.count)}) - {why_it_matters(problem)}")

    lines += _section(f"PROBLEM DETAILS (Top {TOP_DETAILS})")
    for rank, problem in enumerate(report.problems[:TOP_DETAILS], start=1):
        lines += [
            "",
            f"#{rank} {problem.id}",
            f"  ID: {problem.id}",
            f"  Count: {_occurrences(problem.count)}",
            f"  First: {isoformat(problem.first_seen)}",
            f"  Last: {isoformat(problem.last_seen)}",
            f"  Services: {', '.join(problem.services)}",
            f"  Status: {problem.status}"
            + (f" (known since {isoformat(problem.known_since)})" if problem.known_since else ""),
            f"  Severity: {problem.severity} (score {problem.score:g})",
            f"  Findings: {', '.join(problem.finding_kinds) or 'none'}",
            f"  Sample: {_indented(problem.sample, '          ')}",
        ]
        if problem.owner or problem.ticket:
            lines.append(f"  Owner: {problem.owner or '-'}  Ticket: {problem.ticket or '-'}")
        if problem.remediation:
            lines.append("  Remediation:")
            lines += [f"    - {step}" for step in problem.remediation]
    if len(report.problems) > TOP_DETAILS:
        lines += ["", f"… {len(report.problems) - TOP_DETAILS} more problems in the JSON and CSV reports."]

    lines += _section("PEAKS")
    if not report.peaks:
        lines.append("No peaks.")
    lines += [
        f"{peak.kind} {peak.scope} {peak.scope_id} [{isoformat(peak.window_start)}, "
        f"{isoformat(peak.window_end)}) observed {peak.observed:g}, baseline {peak.baseline:g}, "
        f"ratio {peak.ratio:.1f}"
        for peak in report.peaks
    ]

    lines += _section("PROPAGATION CHAINS")
    if not report.chains:
        lines.append("No chains.")
    for number, chain in enumerate(report.chains, start=1):
        lines.append(
            f"Chain {number}: root {chain.root.problem_id} in {chain.root.workload} "
            f"(confidence {chain.confidence:.2f})"
        )
        lines += [
            f"  {n}. {isoformat(m.first_seen)} {m.problem_id} in {m.workload} ({_occurrences(m.count)})"
            for n, m in enumerate(chain.members, start=1)
        ]
        lines += [f"  evidence: {line}" for line in chain.evidence]

    lines += _section("INPUT")
    stats = report.stats
    lines.append(
        f"Events read: {stats.fetched}, accepted: {stats.accepted}, truncated: {stats.truncated}, "
        f"joined into stack traces: {stats.joined_lines}"
    )
    lines.append(f"Skipped: {stats.skipped_total}")
    lines += [f"  {reason}: {count}" for reason, count in sorted(stats.skipped.items())]

    lines += _section("RUN")
    figures = report.figures
    lines += [
        f"Days processed: {figures.days_processed} (succeeded {figures.days_succeeded}, "
        f"failed {figures.days_failed})",
        f"Events fetched: {figures.events_fetched}",
        f"Incidents saved: {figures.incidents_saved}",
        f"Registry updates: {figures.registry_updates}",
        f"Duration: {figures.duration_s:.1f} s",
    ]
    if figures.failed_days:
        lines.append("Failed days: " + ", ".join(figures.failed_days))
    lines += [
        f"{v.label}: {v.status.upper()}: {'; '.join(v.reasons)}" for v in report.range_verdicts if not v.ok
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------- files


def write_atomic(path: Path, content: str | bytes) -> Path:
    """Write `content` to `path` through a temporary file and a rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; reports are redacted and meant to be read by the people on the volume.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def report_stamp(generated_at: datetime) -> str:
    """The file-name timestamp of a report: 2026-02-10T091532 (UTC)."""
    return utc(generated_at).strftime("%Y-%m-%dT%H%M%S")


class ReportWriteError(Exception):
    """The reports could not be written; the message names the folder and why (e.g. no space left)."""


def write_reports(report: Report, output_dir: Path) -> dict[str, Path]:
    """Write problem_report_<stamp>.txt|.json|.csv into `output_dir`; returns the paths by format.

    A file system error is a `ReportWriteError` naming the folder; a file is either written whole
    or not at all (`write_atomic`), so a full disk leaves no truncated report behind."""
    base = output_dir / f"problem_report_{report_stamp(report.generated_at)}"
    document = json.dumps(report_to_dict(report), indent=2, ensure_ascii=False) + "\n"
    try:
        return {
            "txt": write_atomic(base.with_suffix(".txt"), report_to_text(report)),
            "json": write_atomic(base.with_suffix(".json"), document),
            "csv": write_atomic(base.with_suffix(".csv"), report_to_csv(report)),
        }
    except OSError as exc:
        reason = "no space left" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc)).lower()
        raise ReportWriteError(f"problem reports not written: {reason} on {output_dir}") from exc
