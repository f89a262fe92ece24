"""The TXT report: the PROBLEM_ANALYSIS_REPORT people read on a terminal or in a mail."""

from __future__ import annotations

from core.model import (
    isoformat,
)
from core.report.model import (
    TOP_DETAILS,
    Report,
    empty_summary,
    occurrences,
    summary_problems,
    why_it_matters,
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
        f"Generated: {isoformat(report.generated_at)}",
        f"Range: [{isoformat(report.start)}, {isoformat(report.end)})",
    ]

    lines += _section("EXECUTIVE SUMMARY")
    top = summary_problems(report)
    if not top:
        lines.append(empty_summary(report))
    for position, problem in enumerate(top, start=1):
        lines.append(f"{position}. {problem.id} ({occurrences(problem.count)}) - {why_it_matters(problem)}")

    lines += _section(f"PROBLEM DETAILS (Top {TOP_DETAILS})")
    for rank, problem in enumerate(report.problems[:TOP_DETAILS], start=1):
        lines += [
            "",
            f"#{rank} {problem.id}",
            f"  ID: {problem.id}",
            f"  Count: {occurrences(problem.count)}",
            f"  First: {isoformat(problem.first_seen)}",
            f"  Last: {isoformat(problem.last_seen)}",
            f"  Services: {', '.join(problem.services)}",
            *(
                f"    {stats.workload}: {occurrences(stats.count)}, "
                f"{isoformat(stats.first_seen)} to {isoformat(stats.last_seen)}"
                for stats in problem.workload_stats
            ),
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
            f"  {n}. {isoformat(m.first_seen)} {m.problem_id} in {m.workload} ({occurrences(m.count)})"
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
