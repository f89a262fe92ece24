"""The report's sections as data, in the order people read them: summary, details, peaks, chains and
input health. The TXT report and the Confluence page both render these, so they show the same things."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from core.model import Chain, ChainMember, Peak, isoformat, plural, utc
from core.report.model import (
    TOP_DETAILS,
    ProblemSummary,
    Report,
    executive_summary,
    range_text,
    summary_problems,
    why_it_matters,
)


@dataclass(frozen=True, slots=True)
class SummaryItem:
    """One line of the executive summary: the problem, its line and why it is there."""

    problem: ProblemSummary
    line: str  # "DATABASE:x:pool (40 occurrences) - likely root of 2 dependent problems"
    why: str  # "critical, new"


@dataclass(frozen=True, slots=True)
class Details:
    """The problems shown in detail, most important first, and how many more the JSON and CSV hold."""

    problems: list[ProblemSummary]
    more: int


@dataclass(frozen=True, slots=True)
class ChainItem:
    """One propagation chain, read as "root → affected"."""

    number: int
    chain: Chain
    affected: list[ChainMember]  # the members other than the root, in order of first occurrence

    @property
    def line(self) -> str:
        root = member_text(self.chain.root)
        return f"{root} → {', '.join(member_text(m) for m in self.affected)}" if self.affected else root


@dataclass(frozen=True, slots=True)
class InputHealth:
    """What was read and what could not be used."""

    figures: list[tuple[str, int]]  # (what, events)
    skipped: list[tuple[str, int]]  # (reason, events), by reason


PEAK_COLUMNS = ("Kind", "Scope", "Scope id", "Window start", "Window end", "Observed", "Baseline", "Ratio")


def text(value: object) -> str:
    """Any value as plain text for a page cell or a card fact: what both renderers show."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple | set):
        return ", ".join(text(item) for item in value)
    return str(value)


def title(report: Report) -> str:
    """What the report is about and how it went, on one line: "Log analysis 2026-02-09: 5 problems, …"."""
    return f"Log analysis {range_text(report.start, report.end)}: {status_line(report)}"


def status_line(report: Report) -> str:
    """The run's verdict when it is not ok, else how many problems and of which kind."""
    if not report.verdict.ok:
        return report.verdict.headline()
    shown = [problem for problem in report.problems if problem.triage != "ignored"]
    if not shown:
        return "no problems"
    counts = {
        "critical": sum(problem.severity == "critical" for problem in shown),
        "new": sum(problem.fact == "new" for problem in shown),
        "regressed": sum(problem.fact == "regressed" for problem in shown),
    }
    notes = ", ".join(f"{count} {what}" for what, count in counts.items() if count)
    return plural(len(shown), "problem") + (f" ({notes})" if notes else "")


def times(first: datetime, last: datetime, day: date) -> str:
    """First and last time, as "03:01 – 05:14" within the analysed `day`, else with their dates."""
    first, last = utc(first), utc(last)
    if first.date() == last.date() == day:
        return f"{first:%H:%M} – {last:%H:%M}"
    return f"{first:%Y-%m-%d %H:%M} – {last:%Y-%m-%d %H:%M}"


def marker(problem: ProblemSummary) -> str:
    """ "NEW" or "REGRESSED" for a problem people have not seen in this form before, else ""."""
    return problem.fact.upper() if problem.fact in ("new", "regressed") else ""


def summary(report: Report) -> list[SummaryItem]:
    return [
        SummaryItem(problem, line, why_it_matters(problem))
        for line, problem in zip(executive_summary(report), summary_problems(report), strict=True)
    ]


def details(report: Report) -> Details:
    return Details(report.problems[:TOP_DETAILS], max(0, len(report.problems) - TOP_DETAILS))


def peaks(report: Report) -> list[tuple[object, ...]]:
    """One row per peak, in PEAK_COLUMNS order."""
    return [peak_row(peak) for peak in report.peaks]


def peak_row(peak: Peak) -> tuple[object, ...]:
    return (
        peak.kind,
        peak.scope,
        peak.scope_id,
        peak.window_start,
        peak.window_end,
        peak.observed,
        peak.baseline,
        round(peak.ratio, 1),
    )


def chains(report: Report) -> list[ChainItem]:
    return [
        ChainItem(number, chain, [m for m in chain.members if m != chain.root])
        for number, chain in enumerate(report.chains, start=1)
    ]


def member_text(member: ChainMember) -> str:
    return f"{member.problem_id} in {member.workload}"


def input_health(report: Report) -> InputHealth:
    stats = report.stats
    return InputHealth(
        figures=[
            ("read", stats.fetched),
            ("accepted", stats.accepted),
            ("truncated", stats.truncated),
            ("joined into stack traces", stats.joined_lines),
            ("skipped", stats.skipped_total),
        ],
        skipped=sorted(stats.skipped.items()),
    )


def is_trace(sample: str) -> bool:
    """A multi-line sample (a stack trace) is shown as code, not as a line of text."""
    return "\n" in sample.strip()
