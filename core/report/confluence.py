"""The Confluence pages in storage format (XHTML with Confluence's macros): the daily page, section by
section as `sections` gives them, and the known-errors and known-peaks pages from the registry.

Every piece of text is redacted (again: the report already is; redaction is idempotent) and
XML-escaped, so log text can never add markup or macros to a page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from core.model import severity_rank, utc
from core.redact import DEFAULT_REDACTOR, Redactor
from core.report import sections
from core.report.model import (
    TOP_DETAILS,
    ProblemSummary,
    Report,
    empty_summary,
    nothing_listed,
    occurrences,
    why_it_matters,
)
from core.report.sections import text

# XML 1.0 forbids these characters even as character references; Confluence rejects a page holding one.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

PROBLEM_COLUMNS = ("#", "Problem", "Severity", "Status", "Events", "First – last", "Where")
"""The top-problems table: few enough columns to read on a laptop; the rest is in each problem's section."""

SEVERITY_COLOURS = {"critical": "Red", "high": "Yellow", "medium": "Blue", "low": "Grey"}
FACT_COLOURS = {"new": "Purple", "regressed": "Red", "recurring": "Grey"}
TRIAGE_COLOURS = {"open": "Grey", "acknowledged": "Blue", "ignored": "Grey", "resolved": "Green"}
"""Status lozenge colours (Confluence offers Grey, Red, Yellow, Green, Blue and Purple)."""


def xml(value: object, redactor: Redactor = DEFAULT_REDACTOR) -> str:
    """Plain text made inert in Confluence storage format, with every secret in it redacted."""
    return html.escape(_NOT_XML.sub("\ufffd", redactor.redact(text(value))), quote=True)


def _cdata(value: str, redactor: Redactor) -> str:
    """Text for a macro's plain-text body: CDATA, with any "]]>" in it split across two sections."""
    clean = _NOT_XML.sub("\ufffd", redactor.redact(value))
    return "<![CDATA[" + clean.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], redactor: Redactor) -> str:
    head = "".join(f"<th>{xml(header)}</th>" for header in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{xml(cell, redactor)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tbody><tr>{head}</tr>{body}</tbody></table>"


def _markup_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table whose cells are already storage format (escaped text, lozenges, links)."""
    head = "".join(f"<th>{xml(header)}</th>" for header in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tbody><tr>{head}</tr>{body}</tbody></table>"


def lozenge(value: object, colours: Mapping[str, str]) -> str:
    """A status macro: the value in capitals on its colour (Grey for one not in `colours`)."""
    word = text(value)
    return (
        '<ac:structured-macro ac:name="status">'
        f'<ac:parameter ac:name="colour">{colours.get(word, "Grey")}</ac:parameter>'
        f'<ac:parameter ac:name="title">{xml(word.upper())}</ac:parameter>'
        "</ac:structured-macro>"
    )


def _link(url: str | None, label: str, redactor: Redactor) -> str:
    if not url:
        return xml(label)
    return f'<a href="{xml(url, redactor)}">{xml(label)}</a>'


def _code_in_expand(title: str, code: str, redactor: Redactor) -> str:
    return (
        '<ac:structured-macro ac:name="expand">'
        f'<ac:parameter ac:name="title">{xml(title)}</ac:parameter><ac:rich-text-body>'
        '<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">text</ac:parameter>'
        f"<ac:plain-text-body>{_cdata(code, redactor)}</ac:plain-text-body></ac:structured-macro>"
        "</ac:rich-text-body></ac:structured-macro>"
    )


# ---------------------------------------------------------------------------------------- daily page


def page_title(report: Report) -> str:
    """The daily page's title: the analysed day and how it went."""
    return sections.title(report)


def confluence_daily_page(
    report: Report, *, chart_filename: str | None, redactor: Redactor = DEFAULT_REDACTOR
) -> str:
    """The daily page body in Confluence storage format (XHTML); the chart is an attachment by name."""

    def x(value: object) -> str:
        return xml(value, redactor)

    parts = [] if report.verdict.ok else [_verdict_macro(report, x)]
    # The status line is the page's title, which Confluence shows above the body.
    parts += [
        f"<p>{x(report.label)}. Range [{x(report.start)}, {x(report.end)}), generated "
        f"{x(report.generated_at)}. Times are UTC.</p>",
        "<h2>Executive summary</h2>",
        _summary(report, x),
    ]
    if chart_filename:
        parts += [
            "<h2>Errors per hour</h2>",
            f'<p><ac:image ac:width="900"><ri:attachment ri:filename="{x(chart_filename)}" /></ac:image></p>',
        ]
    details = sections.details(report)
    parts += [
        f"<h2>Top {TOP_DETAILS} problems</h2>",
        _problem_table(details.problems, utc(report.start).date(), redactor)
        if details.problems
        else f"<p>{x(nothing_listed(report, 'problems'))}</p>",
        *(_problem_section(rank, p, redactor) for rank, p in enumerate(details.problems, start=1)),
    ]
    if details.more:
        parts.append(f"<p>… {details.more} more problems in the JSON and CSV reports.</p>")
    parts += ["<h2>Peaks</h2>", _peaks(report, redactor)]
    parts += ["<h2>Propagation chains</h2>", _chains(report, x)]
    parts += ["<h2>Input</h2>", _input_health(report, redactor)]
    return "\n".join(parts) + "\n"


def _summary(report: Report, x: Callable[[object], str]) -> str:
    items = sections.summary(report)
    if not items:
        return f"<p>{x(empty_summary(report))}</p>"
    lines = []
    for item in items:
        marker = sections.marker(item.problem)
        badge = f" {lozenge(marker.lower(), FACT_COLOURS)}" if marker else ""
        lines.append(f"<li><strong>{x(item.line)}</strong> – {x(item.why)}{badge}</li>")
    return "<ol>" + "".join(lines) + "</ol>"


def _status_cell(problem: ProblemSummary, redactor: Redactor) -> str:
    """The fact and, unless the problem is simply open, people's triage."""
    fact, triage = problem.fact, problem.triage
    badges = ([lozenge(fact, FACT_COLOURS)] if fact else []) + (
        [lozenge(triage, TRIAGE_COLOURS)] if triage != "open" else []
    )
    cell = " ".join(badges)
    if problem.silenced_until:
        cell += f" silenced until {xml(problem.silenced_until, redactor)}"
    return cell


def _problem_table(problems: Sequence[ProblemSummary], report_day: date, redactor: Redactor) -> str:
    def x(value: object) -> str:
        return xml(value, redactor)

    rows = [
        [
            x(rank),
            x(p.id),
            lozenge(p.severity, SEVERITY_COLOURS),
            _status_cell(p, redactor),
            _link(p.kibana_url, str(p.count), redactor),
            x(sections.times(p.first_seen, p.last_seen, report_day)),
            x(", ".join(p.services)),
        ]
        for rank, p in enumerate(problems, start=1)
    ]
    return _markup_table(PROBLEM_COLUMNS, rows)


def _problem_section(rank: int, problem: ProblemSummary, redactor: Redactor) -> str:
    """One problem in full: why it ranks, what changed, its workloads, its sample, what to do."""

    def x(value: object) -> str:
        return xml(value, redactor)

    parts = [
        f"<h3>#{x(rank)} {x(problem.id)}</h3>",
        f"<p>{lozenge(problem.severity, SEVERITY_COLOURS)} {_status_cell(problem, redactor)} "
        f"{x(occurrences(problem.count))}: {x(why_it_matters(problem))}. "
        f"Findings: {x(', '.join(problem.finding_kinds) or 'none')}.</p>",
    ]
    if problem.change:
        parts.append(f"<p><strong>What changed:</strong> {x(problem.change)}</p>")
    if problem.kibana_url:
        parts.append(f"<p>{_link(problem.kibana_url, 'Its events in Kibana', redactor)}</p>")
    if problem.workload_stats:
        parts.append(
            _table(
                ["Workload", "Events", "First seen", "Last seen"],
                ([w.label, w.count, w.first_seen, w.last_seen] for w in problem.workload_stats),
                redactor,
            )
        )
    if problem.owner or problem.ticket:
        parts.append(f"<p>Owner: {x(problem.owner or '-')}, ticket: {x(problem.ticket or '-')}</p>")
    if sections.is_trace(problem.sample):
        first_line = problem.sample.strip().splitlines()[0]
        parts.append(_code_in_expand(f"Stack trace: {first_line[:120]}", problem.sample, redactor))
    elif problem.sample:
        parts.append(f"<p>Sample: <code>{x(problem.sample)}</code></p>")
    if problem.remediation:
        parts.append(
            "<p>Remediation:</p><ul>"
            + "".join(f"<li>{x(step)}</li>" for step in problem.remediation)
            + "</ul>"
        )
    return "\n".join(parts)


def _peaks(report: Report, redactor: Redactor) -> str:
    rows = sections.peaks(report)
    if not rows:
        return f"<p>{xml(nothing_listed(report, 'peaks'), redactor)}</p>"
    return _table(sections.PEAK_COLUMNS, rows, redactor)


def _chains(report: Report, x: Callable[[object], str]) -> str:
    items = sections.chains(report)
    if not items:
        return f"<p>{x(nothing_listed(report, 'chains'))}</p>"
    parts = []
    for item in items:
        members = "".join(
            f"<li>{x(m.first_seen)} {x(m.problem_id)} in {x(m.workload)} ({x(occurrences(m.count))})</li>"
            for m in item.chain.members
        )
        evidence = "".join(f"<li>{x(line)}</li>" for line in item.chain.evidence)
        parts += [
            f"<h3>Chain {item.number} (confidence {item.chain.confidence:.2f})</h3>",
            f"<p><strong>{x(item.line)}</strong></p>",
            f"<ol>{members}</ol>",
            f"<p>Evidence:</p><ul>{evidence}</ul>",
        ]
    return "\n".join(parts)


def _input_health(report: Report, redactor: Redactor) -> str:
    health = sections.input_health(report)
    figures = ", ".join(f"{what} {count}" for what, count in health.figures)
    part = f"<p>Events {xml(figures, redactor)}</p>"
    if health.skipped:
        part += "\n" + _table(["Skipped because", "Events"], health.skipped, redactor)
    return part


def _verdict_macro(report: Report, x: Callable[[object], str]) -> str:
    """The first thing on the page of a run that is not ok: a warning (failed) or note (degraded) panel
    with the headline, and one line per range that is not ok."""
    macro = "warning" if report.verdict.failed else "note"
    ranges = "".join(
        f"<li>{x(v.label)}: {x(v.status)}: {x('; '.join(v.reasons))}</li>"
        for v in report.range_verdicts
        if not v.ok
    )
    return (
        f'<ac:structured-macro ac:name="{macro}"><ac:rich-text-body>'
        f"<p><strong>{x(report.verdict.headline())}</strong></p>"
        + (f"<ul>{ranges}</ul>" if ranges else "")
        + "</ac:rich-text-body></ac:structured-macro>"
    )


# ------------------------------------------------------------------------------------ registry pages

Entry = Mapping[str, Any]

KNOWN_ERROR_COLUMNS = (
    "ID", "Severity", "Fact", "Triage", "Occurrences", "First seen", "Last seen", "Namespaces", "Owner",
    "Ticket", "Notes", "Sample",
)  # fmt: skip

KNOWN_PEAK_COLUMNS = (
    ("ID", None),
    ("Kind", "kind"),
    ("Scope", "scope"),
    ("Scope id", "scope_id"),
    ("Window start", "window_start"),
    ("Window end", "window_end"),
    ("Observed", "observed"),
    ("Baseline", "baseline"),
    ("Ratio", "ratio"),
    ("Status", "status"),
    ("Notes", "notes"),
)
"""Columns of the known-peaks page and the registry entry keys they show (None: the entry's id)."""


def _count(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


def known_errors_page(
    entries: Mapping[str, Entry],
    *,
    issues: Sequence[str] = (),
    redactor: Redactor = DEFAULT_REDACTOR,
) -> str:
    """The known-errors page from registry problem entries (problem id → fields), most severe first,
    then most frequent, with both the pipeline's fact and people's triage; the registry's `issues` (what
    people wrote that cannot be used), if any, in a warning box on top."""

    def x(value: object) -> str:
        return xml(value, redactor)

    ordered = sorted(
        entries.items(),
        key=lambda item: (
            severity_rank(item[1].get("severity")),
            -_count(item[1].get("occurrences")),
            item[0],
        ),
    )
    rows = []
    for entry_id, entry in ordered:
        triage = lozenge(text(entry.get("triage") or "open"), TRIAGE_COLOURS)
        if entry.get("until"):
            triage += f" until {x(entry['until'])}"
        if entry.get("reason"):
            triage += f": {x(entry['reason'])}"
        rows.append(
            [
                x(entry_id),
                lozenge(text(entry.get("severity")), SEVERITY_COLOURS) if entry.get("severity") else "",
                lozenge(text(entry["fact"]), FACT_COLOURS) if entry.get("fact") else "",
                triage,
                *(
                    x(entry.get(key))
                    for key in ("occurrences", "first_seen", "last_seen", "namespaces", "owner", "ticket")
                ),
                x(entry.get("notes")),
                x(entry.get("sample")),
            ]
        )
    # Registry text (samples, notes) is raw and hand-edited: every cell is redacted and escaped above.
    return _registry_page(
        "Known errors", len(entries), _markup_table(KNOWN_ERROR_COLUMNS, rows), issues, redactor
    )


def known_peaks_page(entries: Mapping[str, Entry], *, redactor: Redactor = DEFAULT_REDACTOR) -> str:
    """The known-peaks page from registry peak entries (peak id → fields), newest first."""
    ordered = sorted(entries.items(), key=lambda item: text(item[1].get("window_start")), reverse=True)
    ordered.sort(key=lambda item: item[1].get("status") == "ignored")
    rows = [
        [entry_id if key is None else entry.get(key) for _, key in KNOWN_PEAK_COLUMNS]
        for entry_id, entry in ordered
    ]
    table = _table([header for header, _ in KNOWN_PEAK_COLUMNS], rows, redactor)
    return _registry_page("Known peaks", len(entries), table, (), redactor)


def _registry_page(title: str, count: int, table: str, issues: Sequence[str], redactor: Redactor) -> str:
    return (
        "\n".join(
            [
                *([_registry_warning(issues, redactor)] if issues else []),
                f"<h1>{xml(title)}</h1>",
                f"<p>{count} {'entry' if count == 1 else 'entries'} from the registry.</p>",
                table,
            ]
        )
        + "\n"
    )


def _registry_warning(issues: Sequence[str], redactor: Redactor) -> str:
    """A warning box listing what people wrote in the registry that the pipeline cannot use: the page
    is where they look, not the run's log."""
    items = "".join(f"<li>{xml(issue, redactor)}</li>" for issue in issues)
    return (
        '<ac:structured-macro ac:name="warning">'
        '<ac:parameter ac:name="title">Registry edits the pipeline cannot use</ac:parameter>'
        "<ac:rich-text-body><p>Until they are fixed, an entry with an unknown status counts with the "
        "pipeline's own status, and a file that does not parse is not updated.</p>"
        f"<ul>{items}</ul></ac:rich-text-body></ac:structured-macro>"
    )
