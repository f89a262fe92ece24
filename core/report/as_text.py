"""The TXT report: the PROBLEM_ANALYSIS_REPORT people read on a terminal or in a mail."""

from __future__ import annotations

from core.model import isoformat
from core.report import sections
from core.report.model import (
    TOP_DETAILS,
    ProblemSummary,
    Report,
    empty_summary,
    nothing_listed,
    occurrences,
)

_SECTION_RULE = "─"


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
        sections.title(report),
        f"Generated: {isoformat(report.generated_at)}",
        f"Range: [{isoformat(report.start)}, {isoformat(report.end)})",
    ]

    lines += _section("EXECUTIVE SUMMARY")
    items = sections.summary(report)
    if not items:
        lines.append(empty_summary(report))
    for position, item in enumerate(items, start=1):
        lines.append(f"{position}. {item.problem.id} ({occurrences(item.problem.count)}) - {item.why}")

    lines += _section(f"PROBLEM DETAILS (Top {TOP_DETAILS})")
    details = sections.details(report)
    if not details.problems:
        lines.append(nothing_listed(report, "problems"))
    for rank, problem in enumerate(details.problems, start=1):
        lines += ["", f"#{rank} {problem.id}", *_problem_lines(problem)]
    if details.more:
        lines += ["", f"… {details.more} more problems in the JSON and CSV reports."]

    lines += _section("PEAKS")
    if not report.peaks:
        lines.append(nothing_listed(report, "peaks"))
    lines += [
        f"{kind} {scope} {scope_id} [{isoformat(start)}, {isoformat(end)}) observed {observed:g}, "
        f"baseline {baseline:g}, ratio {ratio:.1f}"
        for kind, scope, scope_id, start, end, observed, baseline, ratio in sections.peaks(report)
    ]

    lines += _section("PROPAGATION CHAINS")
    if not report.chains:
        lines.append(nothing_listed(report, "chains"))
    for item in sections.chains(report):
        root = item.chain.root
        lines.append(
            f"Chain {item.number}: root {root.problem_id} in {root.workload} "
            f"(confidence {item.chain.confidence:.2f})"
        )
        lines.append(f"  {item.line}")
        lines += [
            f"  {n}. {isoformat(m.first_seen)} {m.problem_id} in {m.workload} ({occurrences(m.count)})"
            for n, m in enumerate(item.chain.members, start=1)
        ]
        lines += [f"  evidence: {line}" for line in item.chain.evidence]

    lines += _section("INPUT")
    health = sections.input_health(report)
    lines.append("Events " + ", ".join(f"{what}: {count}" for what, count in health.figures))
    lines += [f"  {reason}: {count}" for reason, count in health.skipped]

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


def _problem_lines(problem: ProblemSummary) -> list[str]:
    lines = [
        f"  ID: {problem.id}",
        f"  Count: {occurrences(problem.count)}",
        f"  First: {isoformat(problem.first_seen)}",
        f"  Last: {isoformat(problem.last_seen)}",
        f"  Services: {', '.join(problem.services)}",
        f"  Fact: {problem.fact}"
        + (f" (known since {isoformat(problem.known_since)})" if problem.known_since else ""),
        f"  Triage: {problem.triage}"
        + (f", silenced until {isoformat(problem.silenced_until)}" if problem.silenced_until else "")
        + (f" ({problem.reason})" if problem.reason else ""),
        f"  Severity: {problem.severity} (score {problem.score:g})",
        f"  Findings: {', '.join(problem.finding_kinds) or 'none'}",
    ]
    if problem.change:
        lines.append(f"  What changed: {problem.change}")
    if problem.workload_stats:
        lines.append("  Workloads:")
        lines += [
            f"    - {w.label}: {occurrences(w.count)}, {isoformat(w.first_seen)} to {isoformat(w.last_seen)}"
            for w in problem.workload_stats
        ]
    if problem.kibana_url:
        lines.append(f"  Events: {problem.kibana_url}")
    lines.append(f"  Sample: {_indented(problem.sample, '          ')}")
    if problem.owner or problem.ticket:
        lines.append(f"  Owner: {problem.owner or '-'}  Ticket: {problem.ticket or '-'}")
    if problem.remediation:
        lines.append("  Remediation:")
        lines += [f"    - {step}" for step in problem.remediation]
    return lines
