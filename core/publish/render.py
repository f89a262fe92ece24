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

from core.model import WINDOW, Finding, Incident, isoformat, utc
from core.redact import DEFAULT_REDACTOR, Redactor
from core.report import Report
from core.report.teams import card as _card
from core.report.teams import heading as _heading
from core.report.teams import literal as _literal

SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


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
    def from_findings(cls, findings: Sequence[Finding]) -> AlertContext:
        """The windows the findings were made in, when the caller has nothing more to say."""
        if not findings:
            raise ValueError("an alert without findings needs a context")
        starts = [utc(finding.window_start) for finding in findings]
        return cls(start=min(starts), end=max(starts) + WINDOW)


def teams_alert_card(
    findings: Sequence[Finding],
    context: Report | AlertContext | None = None,
    *,
    redactor: Redactor = DEFAULT_REDACTOR,
) -> dict[str, Any]:
    """A critical-alert Teams message for the findings the caller decided to alert on, most severe first."""
    if context is None:
        context = AlertContext.from_findings(findings)
    elif isinstance(context, Report):
        context = AlertContext.from_report(context)
    ordered = sorted(findings, key=lambda f: (SEVERITY_ORDER.get(f.severity, 9), f.problem_id, f.kind))

    def finding_blocks(finding: Finding) -> list[dict[str, Any]]:
        count = context.counts.get(finding.problem_id)
        where = f" in {', '.join(finding.namespaces)}" if finding.namespaces else ""
        headline = f"{finding.severity.upper()} {finding.kind}: {finding.problem_id}"
        headline += (f" ({count} occurrences)" if count is not None else "") + where
        blocks = [
            _literal(redactor.redact(headline), weight="Bolder"),
            _literal(redactor.redact(finding.detail)),
        ]
        sample = context.samples.get(finding.problem_id)
        if sample:
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
            f"{len(ordered)} finding{'s' if len(ordered) != 1 else ''}",
            "wrap": True,
        },
    ]
    return _card(head, [finding_blocks(finding) for finding in ordered], context.page_url)


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
