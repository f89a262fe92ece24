"""Rendering of what is published: Confluence pages, Teams cards, the trend chart and the CSV attachment.

Pure functions. Every piece of text is redacted (again: the report already is, redaction is idempotent)
and escaped for its target: XML-escaped on Confluence pages, put into Teams cards as TextRuns, which
Teams shows verbatim instead of reading them as Markdown.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from core.alerting import AlertUpdate, group
from core.model import WINDOW, Finding, Incident, isoformat, plural, severity_rank, utc
from core.redact import DEFAULT_REDACTOR, Redactor
from core.report import (
    TOP_DETAILS,
    Report,
    empty_summary,
    executive_summary,
    summary_problems,
    why_it_matters,
)

MAX_TEAMS_PAYLOAD_BYTES = 28_000
"""Teams rejects larger messages (about 28 KB); cards are cut to fit, with a "see Confluence" note."""

MAX_CARD_TEXT_CHARS = 1_000
ADAPTIVE_CARD_VERSION = "1.4"

# XML 1.0 forbids these characters even as character references; Confluence rejects a page holding one.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: object) -> str:
    """Any value as plain text for a page or card cell."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple | set):
        return ", ".join(_text(item) for item in value)
    return str(value)


def _xml(value: object, redactor: Redactor = DEFAULT_REDACTOR) -> str:
    """Plain text made inert in Confluence storage format, with every secret in it redacted."""
    return html.escape(_NOT_XML.sub("\ufffd", redactor.redact(_text(value))), quote=True)


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], redactor: Redactor) -> str:
    head = "".join(f"<th>{_xml(header)}</th>" for header in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{_xml(cell, redactor)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tbody><tr>{head}</tr>{body}</tbody></table>"


# ------------------------------------------------------------------------------------------ Confluence

PROBLEM_COLUMNS = (
    "#", "ID", "Severity", "Status", "Count", "First", "Last", "Services", "Findings", "Sample",
    "Remediation", "Owner", "Ticket",
)  # fmt: skip
PEAK_COLUMNS = ("Kind", "Scope", "Scope id", "Window start", "Window end", "Observed", "Baseline", "Ratio")


def confluence_daily_page(
    report: Report, *, chart_filename: str | None, redactor: Redactor = DEFAULT_REDACTOR
) -> str:
    """The daily page body in Confluence storage format (XHTML); the chart is an attachment by name."""

    def x(value: object) -> str:
        return _xml(value, redactor)

    parts = [] if report.verdict.ok else [_verdict_macro(report, x)]
    parts += [
        "<h1>PROBLEM_ANALYSIS_REPORT</h1>",
        f"<p><strong>{x(report.label)}</strong></p>",
        f"<p>Range [{x(report.start)}, {x(report.end)}), generated {x(report.generated_at)}</p>",
        "<h2>Executive summary</h2>",
    ]
    top = summary_problems(report)
    if top:
        items = "".join(
            f"<li><strong>{x(line)}</strong> – {x(why_it_matters(problem))}</li>"
            for line, problem in zip(executive_summary(report), top, strict=True)
        )
        parts.append(f"<ol>{items}</ol>")
    else:
        parts.append(f"<p>{x(empty_summary(report))}</p>")

    if chart_filename:
        parts += [
            "<h2>Errors per hour</h2>",
            f'<p><ac:image ac:width="900"><ri:attachment ri:filename="{x(chart_filename)}" /></ac:image></p>',
        ]

    parts.append(f"<h2>Top {TOP_DETAILS} problems</h2>")
    parts.append(
        _table(
            PROBLEM_COLUMNS,
            (
                [
                    rank,
                    p.id,
                    p.severity,
                    p.status,
                    p.count,
                    p.first_seen,
                    p.last_seen,
                    p.services,
                    p.finding_kinds,
                    p.sample,
                    "; ".join(p.remediation),
                    p.owner,
                    p.ticket,
                ]
                for rank, p in enumerate(report.problems[:TOP_DETAILS], start=1)
            ),
            redactor,
        )
    )

    parts.append("<h2>Peaks</h2>")
    parts.append(
        _table(
            PEAK_COLUMNS,
            (
                [
                    peak.kind,
                    peak.scope,
                    peak.scope_id,
                    peak.window_start,
                    peak.window_end,
                    peak.observed,
                    peak.baseline,
                    round(peak.ratio, 1),
                ]
                for peak in report.peaks
            ),
            redactor,
        )
        if report.peaks
        else "<p>No peaks.</p>"
    )

    parts.append("<h2>Propagation chains</h2>")
    if not report.chains:
        parts.append("<p>No chains.</p>")
    for number, chain in enumerate(report.chains, start=1):
        members = "".join(
            f"<li>{x(m.first_seen)} {x(m.problem_id)} in {x(m.workload)} ({x(m.count)})</li>"
            for m in chain.members
        )
        evidence = "".join(f"<li>{x(line)}</li>" for line in chain.evidence)
        parts += [
            f"<h3>Chain {number}: root {x(chain.root.problem_id)} in {x(chain.root.workload)} "
            f"(confidence {chain.confidence:.2f})</h3>",
            f"<ol>{members}</ol>",
            f"<p>Evidence:</p><ul>{evidence}</ul>",
        ]

    stats = report.stats
    parts += [
        "<h2>Input</h2>",
        f"<p>Events read {stats.fetched}, accepted {stats.accepted}, skipped {stats.skipped_total}, "
        f"truncated {stats.truncated}</p>",
    ]
    if stats.skipped:
        parts.append(_table(["Skipped because", "Events"], sorted(stats.skipped.items()), redactor))
    return "\n".join(parts) + "\n"


KNOWN_ERROR_COLUMNS = (
    ("ID", None),
    ("Status", "status"),
    ("Severity", "severity"),
    ("Occurrences", "occurrences"),
    ("First seen", "first_seen"),
    ("Last seen", "last_seen"),
    ("Namespaces", "namespaces"),
    ("Owner", "owner"),
    ("Ticket", "ticket"),
    ("Notes", "notes"),
    ("Sample", "sample"),
)
"""Columns of the known-errors page and the registry entry keys they show (None: the entry's id)."""

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


def _registry_page(
    title: str,
    entries: Mapping[str, Mapping[str, Any]],
    columns: Sequence[tuple[str, str | None]],
    *,
    newest_by: str,
    issues: Sequence[str] = (),
    redactor: Redactor,
) -> str:
    # Registry text (samples, notes) is raw and hand-edited; _table redacts every cell before it leaves.
    def cell(entry_id: str, entry: Mapping[str, Any], key: str | None) -> object:
        return entry_id if key is None else entry.get(key)

    ordered = sorted(entries.items(), key=lambda item: _text(item[1].get(newest_by)), reverse=True)
    # A stable sort keeps newest-first within each group and moves ignored entries to the end.
    ordered.sort(key=lambda item: item[1].get("status") == "ignored")
    rows = [[cell(entry_id, entry, key) for _, key in columns] for entry_id, entry in ordered]
    return (
        "\n".join(
            [
                *([_registry_warning(issues, redactor)] if issues else []),
                f"<h1>{_xml(title)}</h1>",
                f"<p>{len(entries)} entries from the registry.</p>",
                _table([header for header, _ in columns], rows, redactor),
            ]
        )
        + "\n"
    )


def _registry_warning(issues: Sequence[str], redactor: Redactor) -> str:
    """A warning box listing what people wrote in the registry that the pipeline cannot use: the page
    is where they look, not the run's log."""
    items = "".join(f"<li>{_xml(issue, redactor)}</li>" for issue in issues)
    return (
        '<ac:structured-macro ac:name="warning">'
        '<ac:parameter ac:name="title">Registry edits the pipeline cannot use</ac:parameter>'
        "<ac:rich-text-body><p>Until they are fixed, an entry with an unknown status counts with the "
        "pipeline's own status, and a file that does not parse is not updated.</p>"
        f"<ul>{items}</ul></ac:rich-text-body></ac:structured-macro>"
    )


def known_errors_page(
    entries: Mapping[str, Mapping[str, Any]],
    *,
    issues: Sequence[str] = (),
    redactor: Redactor = DEFAULT_REDACTOR,
) -> str:
    """The known-errors page from registry problem entries (problem id → fields), newest first; the
    registry's `issues` (what people wrote that cannot be used), if any, in a warning box on top."""
    return _registry_page(
        "Known errors",
        entries,
        KNOWN_ERROR_COLUMNS,
        newest_by="last_seen",
        issues=issues,
        redactor=redactor,
    )


def known_peaks_page(
    entries: Mapping[str, Mapping[str, Any]], *, redactor: Redactor = DEFAULT_REDACTOR
) -> str:
    """The known-peaks page from registry peak entries (peak id → fields), newest first."""
    return _registry_page(
        "Known peaks", entries, KNOWN_PEAK_COLUMNS, newest_by="window_start", redactor=redactor
    )


# ----------------------------------------------------------------------------------------------- Teams


def _literal(text: str, **run: Any) -> dict[str, Any]:
    """Text Teams shows as it is: a TextRun is never read as Markdown (a TextBlock would be)."""
    if len(text) > MAX_CARD_TEXT_CHARS:
        text = text[: MAX_CARD_TEXT_CHARS - 1] + "…"
    return {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": text, **run}]}


def _heading(text: str) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "weight": "Bolder", "size": "Medium", "wrap": True}


def _message(body: list[dict[str, Any]], page_url: str | None) -> dict[str, Any]:
    content: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    if page_url:
        content["actions"] = [{"type": "Action.OpenUrl", "title": "Open in Confluence", "url": page_url}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": content}
        ],
    }


def payload_size(payload: Mapping[str, Any]) -> int:
    """Bytes of a payload as it is posted (compact UTF-8 JSON)."""
    return len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _card(
    head: list[dict[str, Any]], items: Sequence[list[dict[str, Any]]], page_url: str | None
) -> dict[str, Any]:
    """A message of `head` and as many `items` (each a list of blocks) as stay under the Teams limit.

    Items that do not fit are replaced by a "… N more, see Confluence" note. Sizes are measured once
    per item and summed, so fitting stays linear in the number of items.
    """

    def build(shown: int) -> dict[str, Any]:
        hidden = len(items) - shown
        where = "see Confluence" if page_url else "see the report"
        note = [{"type": "TextBlock", "text": f"… {hidden} more, {where}.", "isSubtle": True, "wrap": True}]
        body = head + [block for item in items[:shown] for block in item] + (note if hidden else [])
        return _message(body, page_url)

    budget = MAX_TEAMS_PAYLOAD_BYTES - payload_size(build(0))
    shown = 0
    for item in items:
        cost = sum(payload_size(block) + 1 for block in item)  # each block with its comma
        if cost > budget:
            break
        budget -= cost
        shown += 1
    # The sum is exact and the note was budgeted at its longest, so only a head that alone is too big
    # can still break the limit.
    payload = build(shown)
    if payload_size(payload) > MAX_TEAMS_PAYLOAD_BYTES:
        raise ValueError("a Teams card without any items exceeds the payload limit")
    return payload


def teams_summary_card(
    report: Report, *, page_url: str | None, redactor: Redactor = DEFAULT_REDACTOR
) -> dict[str, Any]:
    """The backfill's Teams message: run time, run figures, top problems, link to the Confluence page."""
    figures = report.figures
    failed = f"{figures.days_failed}" + (f" ({_text(figures.failed_days)})" if figures.failed_days else "")
    facts = [
        ("Range", report.label),
        ("Days processed", figures.days_processed),
        ("Days succeeded", figures.days_succeeded),
        ("Days failed", failed),
        ("Events fetched", figures.events_fetched),
        ("Events skipped", sum(figures.events_skipped.values())),
        ("Incidents saved", figures.incidents_saved),
        ("Registry updates", figures.registry_updates),
        ("Duration", f"{figures.duration_s / 60:.1f} min"),
    ]
    lines = executive_summary(report)
    verdict = [] if report.verdict.ok else [_verdict_block(report.verdict.headline(), report.verdict.failed)]
    head = verdict + [
        _heading(f"Log Analyzer run at {utc(report.generated_at):%Y-%m-%d %H:%M:%S} UTC"),
        {"type": "TextBlock", "text": "Run Summary:", "weight": "Bolder", "wrap": True},
        {
            "type": "FactSet",
            "facts": [{"title": title, "value": redactor.redact(_text(value))} for title, value in facts],
        },
        {
            "type": "TextBlock",
            "text": "Top problems:" if lines else empty_summary(report),
            "weight": "Bolder",
            "wrap": True,
        },
    ]
    return _card(head, [[_literal(redactor.redact(line))] for line in lines], page_url)


def _verdict_block(headline: str, failed: bool) -> dict[str, Any]:
    """The first block of a card whose run is not ok, in the attention (failed) or warning colour."""
    return _literal(headline, weight="Bolder", color="Attention" if failed else "Warning")


@dataclass(frozen=True, slots=True)
class AlertContext:
    """What a regular-phase alert says beside its findings: the window, counts and raw samples."""

    start: datetime
    end: datetime
    generated_at: datetime | None = None
    counts: Mapping[str, int] = field(default_factory=dict)  # problem id → occurrences in the window
    samples: Mapping[str, str] = field(default_factory=dict)  # problem id → a sample (redacted on render)
    page_url: str | None = None

    @classmethod
    def from_report(cls, report: Report, page_url: str | None = None) -> AlertContext:
        return cls(
            start=report.start,
            end=report.end,
            generated_at=report.generated_at,
            counts={problem.id: problem.count for problem in report.problems},
            samples={problem.id: problem.sample for problem in report.problems},
            page_url=page_url,
        )

    @classmethod
    def from_updates(cls, updates: Sequence[AlertUpdate]) -> AlertContext:
        """The windows the incidents were seen in, when the caller has nothing more to say."""
        if not updates:
            raise ValueError("an alert without incidents needs a context")
        return cls(
            start=min(u.incident.started_at for u in updates),
            end=max(u.incident.last_window for u in updates) + WINDOW,
        )


STATE_WORDS = {
    "new": "",
    "escalated": "ESCALATED ",
    "updated": "UPDATED ",
    "ongoing": "STILL ACTIVE ",
    "resolved": "RESOLVED ",
}


def alert_headline(update: AlertUpdate) -> str:
    """ "CRITICAL DATABASE:payments:too_many_connections (spike): started …", with the state before the
    severity when it is not a new incident ("RESOLVED", "ESCALATED")."""
    incident = update.incident
    return f"{STATE_WORDS[update.state]}{incident.severity.upper()} {incident.headline()}"


def teams_alert_card(
    updates: Sequence[AlertUpdate] | Sequence[Finding],
    context: Report | AlertContext | None = None,
    *,
    redactor: Redactor = DEFAULT_REDACTOR,
) -> dict[str, Any]:
    """A regular-phase Teams alert: one block per alert incident, most severe first, each with one
    severity, its headline, what it affected before an escalation, and a sample. Findings are grouped
    into new incidents (core.alerting)."""
    if updates and isinstance(updates[0], Finding):
        updates = [AlertUpdate("new", incident) for incident in group(updates)]  # type: ignore[arg-type]
    shown: list[AlertUpdate] = list(updates)  # type: ignore[arg-type]
    if context is None:
        context = AlertContext.from_updates(shown)
    elif isinstance(context, Report):
        context = AlertContext.from_report(context)
    # Resolutions last: what needs people now comes first.
    ordered = sorted(
        shown,
        key=lambda u: (u.state == "resolved", severity_rank(u.incident.severity), u.incident.key),
    )

    def incident_blocks(update: AlertUpdate) -> list[dict[str, Any]]:
        incident = update.incident
        color = "Good" if update.state == "resolved" else "Attention"
        blocks = [_literal(redactor.redact(alert_headline(update)), weight="Bolder", color=color)]
        facts = [("Since", isoformat(incident.started_at)), ("Last window", isoformat(incident.last_window))]
        if incident.namespaces:
            facts.append(("Namespaces", ", ".join(incident.namespaces)))
        if incident.workloads:
            facts.append(("Workloads", ", ".join(incident.workloads)))
        if len(incident.members) > 1:
            facts.append(("Findings of", ", ".join(incident.members)))
        facts.append(("Size", incident.magnitude))
        if update.state == "escalated":
            before = f"{(update.previous_severity or '').upper()} in " + (
                ", ".join(update.previous_namespaces) or "no namespace"
            )
            facts.append(("Before", before))
        count = context.counts.get(incident.key)
        if count is not None:
            facts.append(("Occurrences in range", str(count)))
        blocks.append(
            {
                "type": "FactSet",
                "facts": [
                    {"title": title, "value": redactor.redact(_text(value))[:MAX_CARD_TEXT_CHARS]}
                    for title, value in facts
                ],
            }
        )
        sample = context.samples.get(incident.key)
        if sample and update.state != "resolved":
            blocks.append(_literal(redactor.redact(sample), fontType="Monospace", isSubtle=True))
        return blocks

    title = "Log Analyzer alert"
    if context.generated_at:
        title += f" at {utc(context.generated_at):%Y-%m-%d %H:%M:%S} UTC"
    head = [
        _heading(title),
        {
            "type": "TextBlock",
            "text": f"Window [{isoformat(context.start)}, {isoformat(context.end)}): "
            f"{plural(len(ordered), 'incident')}",
            "wrap": True,
        },
    ]
    return _card(head, [incident_blocks(update) for update in ordered], context.page_url)


# ----------------------------------------------------------------------------------------------- chart


def trend_chart_png(
    incidents: Iterable[Incident], *, start: datetime | None = None, end: datetime | None = None
) -> bytes:
    """Errors per hour by category over [start, end) (default: the incidents' span) as a PNG image.

    Only category names and counts are drawn: no log text reaches the picture."""
    # Imported here: matplotlib takes half a second to import, and only a published report has a chart.
    from matplotlib import dates as mdates
    from matplotlib.figure import Figure

    per_category: dict[str, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    for incident in incidents:
        hour = utc(incident.window_start).replace(minute=0, second=0, microsecond=0)
        per_category[incident.category][hour] += incident.count
    seen_hours = [hour for counts in per_category.values() for hour in counts]
    first = utc(start).replace(minute=0, second=0, microsecond=0) if start else min(seen_hours, default=None)
    last = utc(end) - timedelta(microseconds=1) if end else max(seen_hours, default=None)

    # Figure without pyplot: no global state and no GUI backend, safe in a worker thread.
    figure = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    axes = figure.subplots()
    if first is not None and last is not None:
        hours = [first + timedelta(hours=n) for n in range(int((last - first) / timedelta(hours=1)) + 1)]
        for category in sorted(per_category):
            axes.plot(hours, [per_category[category].get(hour, 0) for hour in hours], label=category)
    if per_category:
        axes.legend(loc="upper left", fontsize="small")
    else:
        axes.text(0.5, 0.5, "No errors in this range", ha="center", va="center", transform=axes.transAxes)
    axes.set_title("Errors per hour by category (UTC)")
    axes.set_ylabel("errors")
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=UTC))
    axes.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------- CSV


def redacted_csv(text: str, redactor: Redactor = DEFAULT_REDACTOR) -> str:
    """A CSV document with every cell redacted, cell by cell so that no rule can reach across the
    quoting and break the rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in csv.reader(io.StringIO(text)):
        writer.writerow([redactor.redact(cell) for cell in row])
    return out.getvalue()
