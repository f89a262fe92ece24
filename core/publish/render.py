"""Rendering of what is published beside the report's own pages and cards (`core.report.confluence`,
`core.report.teams`): the regular phase's alert card, the trend chart and the CSV attachment.

Pure functions. Every piece of text is redacted (again: the report already is, redaction is idempotent)
and put into cards as TextRuns, which Teams shows verbatim instead of reading them as Markdown.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from core.alerting import AlertUpdate, group
from core.model import WINDOW, Finding, Incident, isoformat, plural, severity_rank, utc
from core.redact import DEFAULT_REDACTOR, Redactor
from core.report import Report
from core.report.confluence import text as _text
from core.report.teams import MAX_CARD_TEXT_CHARS
from core.report.teams import card as _card
from core.report.teams import heading as _heading
from core.report.teams import literal as _literal


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
