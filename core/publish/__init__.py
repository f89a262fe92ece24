"""Publication: Confluence pages and Teams messages rendered from a run, recorded in an outbox and
delivered by one channel per module behind one retry policy (see docs/publishing.md).

render → (files copy) → outbox → deliver: claim → send with retries → record.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from core.publish.delivery import Attachment, Channel, DeliveryResult, Message, RetryPolicy
from core.publish.files import FileChannel
from core.publish.outbox import Outbox, OutboxItem
from core.publish.publisher import (
    AlertPlan,
    Destinations,
    PublishOutcome,
    alert_messages,
    deliver_pending,
    publish,
    report_messages,
)
from core.publish.render import redacted_csv, trend_chart_png, trend_figure
from core.report import ReportFileError, StoredReport, newest_complete_report, read_report
from core.report.confluence import confluence_daily_page, known_errors_page, known_peaks_page
from core.report.teams import AlertContext, payload_size, teams_alert_card, teams_summary_card

if TYPE_CHECKING:
    from core.publish.confluence import ConfluenceChannel
    from core.publish.teams import TeamsChannel

# A channel's module is imported when the channel is first used: the client libraries (atlassian,
# requests, pymsteams) take a quarter of a second to import, and a run needs only those of the
# channels it is configured for (the regular phase never uses Confluence).
_CHANNELS = {"ConfluenceChannel": "core.publish.confluence", "TeamsChannel": "core.publish.teams"}


def __getattr__(name: str) -> Any:
    if name in _CHANNELS:
        return getattr(importlib.import_module(_CHANNELS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AlertContext",
    "AlertPlan",
    "Attachment",
    "Channel",
    "ConfluenceChannel",
    "DeliveryResult",
    "Destinations",
    "FileChannel",
    "Message",
    "Outbox",
    "OutboxItem",
    "PublishOutcome",
    "ReportFileError",
    "RetryPolicy",
    "StoredReport",
    "TeamsChannel",
    "alert_messages",
    "confluence_daily_page",
    "deliver_pending",
    "known_errors_page",
    "known_peaks_page",
    "newest_complete_report",
    "payload_size",
    "publish",
    "read_report",
    "redacted_csv",
    "report_messages",
    "teams_alert_card",
    "teams_summary_card",
    "trend_chart_png",
    "trend_figure",
]
