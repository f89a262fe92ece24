"""What is published beside the pages and cards of `core.report` (`confluence`, `teams`): the trend
chart and the CSV attachment. Pure functions; every CSV cell is redacted (again: the report already is,
redaction is idempotent)."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from core.model import Incident, utc
from core.redact import DEFAULT_REDACTOR, Redactor

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# ----------------------------------------------------------------------------------------------- chart


def trend_chart_png(
    incidents: Iterable[Incident],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    empty: str = "No errors in this range.",
) -> bytes:
    """Errors per hour by category over [start, end) (default: the incidents' span) as a PNG image;
    `empty` is written across it when there is none (a failed range's report says why instead).

    Only category names and counts are drawn: no log text reaches the picture."""
    buffer = io.BytesIO()
    trend_figure(incidents, start=start, end=end, empty=empty).savefig(buffer, format="png")
    return buffer.getvalue()


def trend_figure(
    incidents: Iterable[Incident],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    empty: str = "No errors in this range.",
) -> Figure:
    """The figure `trend_chart_png` draws."""
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
        if first < last:
            axes.set_xlim(first, last)  # the range's own dates, also when nothing is drawn
    if per_category:
        axes.legend(loc="upper left", fontsize="small")
    else:
        axes.text(0.5, 0.5, empty, ha="center", va="center", wrap=True, transform=axes.transAxes)
    axes.set_title("Errors per hour by category (UTC)")
    axes.set_ylabel("errors")
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=UTC))
    axes.grid(alpha=0.3)
    return figure


# ------------------------------------------------------------------------------------------------- CSV


def redacted_csv(text: str, redactor: Redactor = DEFAULT_REDACTOR) -> str:
    """A CSV document with every cell redacted, cell by cell so that no rule can reach across the
    quoting and break the rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in csv.reader(io.StringIO(text)):
        writer.writerow([redactor.redact(cell) for cell in row])
    return out.getvalue()
