"""Publishing a run: render the messages, keep a file copy, record them in the outbox, deliver.

`deliver_pending` is the whole delivery path in one place: settle what a crash left behind → for each
pending item: claim it (the notification log says it is being sent) → send with the one retry policy
→ record delivered, or leave it pending for the next run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from core import alerting
from core.model import WINDOW, Finding, Incident
from core.publish import render
from core.publish.delivery import Attachment, Attempts, Channel, Message, RetryPolicy
from core.publish.files import FileChannel
from core.publish.outbox import Outbox, OutboxItem
from core.redact import DEFAULT_REDACTOR, Redactor
from core.registry import Registry, RegistryError
from core.report import Report, report_to_csv
from core.report.confluence import confluence_daily_page, known_errors_page, known_peaks_page, page_title
from core.report.kibana import Kibana
from core.report.model import nothing_listed
from core.report.teams import payload_text, teams_alert_card, teams_summary_card

if TYPE_CHECKING:
    from core.publish.confluence import ConfluenceChannel

CHANNELS = ("confluence", "teams")
TEAMS_MESSAGE_TTL = timedelta(hours=24)
"""A Teams message not delivered within a day is stale; the daily page is never stale (newer replaces it)."""

CHART_FILENAME = "trend.png"
CSV_FILENAME = "problem_report.csv"


@dataclass(frozen=True)
class Destinations:
    """Where publications go, built from the settings (core.cli). A channel left None is skipped; in a
    dry run nothing is sent, but the channels still shape the messages (the page link in the card)."""

    confluence: ConfluenceChannel | None = None
    teams: Channel | None = None
    daily_page_id: str | None = None
    known_errors_page_id: str | None = None
    known_peaks_page_id: str | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    alert_repeat: timedelta = timedelta(minutes=120)
    alert_resolve_windows: int = 4  # windows without findings after which an alert incident is resolved
    alert_send_resolved: bool = True  # send a "resolved" alert then (else only the log notes it)
    kibana: Kibana | None = None  # links to each problem's and alert's events (KIBANA_URL)
    dry_run: bool = False

    def live(self) -> dict[str, Channel]:
        """The channels messages are really sent to in this run."""
        if self.dry_run:
            return {}
        channels: dict[str, Channel | None] = {"confluence": self.confluence, "teams": self.teams}
        return {name: channel for name, channel in channels.items() if channel is not None}

    def daily_page_url(self) -> str | None:
        if self.confluence is None or self.daily_page_id is None:
            return None
        return self.confluence.page_url(self.daily_page_id)

    def status_when_failed(self) -> dict[str, str]:
        live = self.live()
        return {name: "failed" if name in live else "skipped" for name in CHANNELS}


@dataclass
class PublishOutcome:
    """What a run published: one line per file or delivery, and the status per channel."""

    lines: list[str] = field(default_factory=list)
    status: dict[str, str] = field(default_factory=lambda: dict.fromkeys(CHANNELS, "skipped"))
    kept: bool = True  # every message was written to its file or recorded in the outbox


@dataclass(frozen=True, slots=True)
class Delivery:
    item: OutboxItem
    attempts: Attempts


def deliver_pending(
    outbox: Outbox, channels: Mapping[str, Channel], policy: RetryPolicy, now: datetime
) -> tuple[list[Delivery], list[OutboxItem]]:
    """Deliver every pending item of `channels`, oldest first; returns the deliveries made and the
    items a crash left unconfirmed (chat messages that are never sent twice)."""
    resend = [name for name, channel in channels.items() if channel.idempotent]
    unconfirmed = outbox.recover(now, policy.lease, resend)
    deliveries = []
    for item in outbox.due(channels):
        attempt_id = outbox.claim(item.id, now)
        if attempt_id is None:  # another run is sending it
            continue
        channel = channels[item.message.channel]
        attempts = policy.run(lambda channel=channel, message=item.message: channel.send(message))
        result = attempts.result
        outbox.settle(
            item.id,
            attempt_id,
            now,
            delivered=result.delivered,
            attempts=attempts.attempts,
            location=result.location,
            error=result.error,
        )
        deliveries.append(Delivery(item, attempts))
    return deliveries, unconfirmed


def publish(
    messages: Sequence[Message],
    destinations: Destinations,
    outbox: Outbox | None,
    files: FileChannel,
    now: datetime,
) -> PublishOutcome:
    """Write each message to files, record it in the outbox for its live channel, and deliver everything
    pending (this run's messages and what earlier runs failed to deliver)."""
    logger = structlog.get_logger("ai_log_analyzer").bind(step="publish")
    outcome = PublishOutcome()
    live = destinations.live()
    for message in messages:
        written = files.send(message)
        outcome.lines.append(
            f"file: {written.location}" if written.delivered else f"file FAILED: {written.error}"
        )
        outcome.kept &= written.delivered or (outbox is not None and message.channel in live)
    if outbox is None:
        return outcome
    for message in messages:
        # Without its channel, a message the notification log needs (an alert) is logged as filed:
        # the next run then throttles the file copy as it would throttle Teams.
        if message.channel not in live and message.subject:
            outbox.add(message, now, status="filed")
    if not live:
        return outcome
    for message in messages:
        if message.channel in live and (message.channel != "confluence" or message.target):
            outbox.add(message, now)
    deliveries, unconfirmed = deliver_pending(outbox, live, destinations.policy, now)
    for item in unconfirmed:
        logger.warning(
            "unconfirmed message not sent again", channel=item.message.channel, kind=item.message.kind
        )
        outcome.lines.append(
            f"{item.message.channel}: {item.message.kind} of {item.created_at:%Y-%m-%d %H:%M} UTC "
            "may not have arrived (the sender stopped mid-send); not sent again"
        )
    for delivery in deliveries:
        message, result = delivery.item.message, delivery.attempts.result
        tries = f"{delivery.attempts.attempts} attempt{'s' if delivery.attempts.attempts != 1 else ''}"
        if result.delivered:
            outcome.status[message.channel] = outcome.status[message.channel].replace("skipped", "ok")
            outcome.lines.append(
                f"{message.channel}: {message.kind} delivered to {result.location} ({tries})"
            )
        else:
            outcome.status[message.channel] = "failed"
            logger.warning(
                "publication failed", channel=message.channel, kind=message.kind, error=result.error
            )
            outcome.lines.append(
                f"{message.channel}: {message.kind} FAILED after {tries}: {result.error}; "
                "kept in the outbox for the next run"
            )
    return outcome


# --- the backfill's report ---------------------------------------------------------------------


def report_messages(
    report: Report,
    incidents: Iterable[Incident],
    registry: Registry | None,
    destinations: Destinations,
    redactor: Redactor = DEFAULT_REDACTOR,
) -> list[Message]:
    """The daily page (with the trend chart and the day's CSV attached), the registry pages (see
    `_registry_messages`), and the Teams summary linking to the daily page."""
    attachments = (
        Attachment(
            CHART_FILENAME,
            render.trend_chart_png(
                incidents,
                start=report.start,
                end=report.end,
                empty=nothing_listed(report, "errors", "No errors in this range."),
            ),
            "image/png",
        ),
        Attachment(
            CSV_FILENAME, render.redacted_csv(report_to_csv(report), redactor).encode("utf-8"), "text/csv"
        ),
    )
    messages = [
        Message(
            "confluence",
            "confluence_daily",
            confluence_daily_page(report, chart_filename=CHART_FILENAME, redactor=redactor),
            "xhtml",
            target=destinations.daily_page_id,
            attachments=attachments,
            title=redactor.redact(page_title(report)),
        )
    ]
    if registry is not None:
        messages += _registry_messages(registry, destinations, redactor)
    card = teams_summary_card(report, page_url=destinations.daily_page_url(), redactor=redactor)
    # The report is the summary's target: a republish replaces the summary a failed delivery left pending.
    messages.append(_teams_message("teams_summary", card, target=report.label))
    return messages


def _registry_messages(registry: Registry, destinations: Destinations, redactor: Redactor) -> list[Message]:
    """The known-errors and known-peaks pages. A page is left out while its file does not parse: an
    empty page would wipe what people rely on. The known-errors page lists the registry's issues,
    read from the same files as the pages, so a republish shows them as they are now."""
    issues = [str(issue) for issue in registry.issues()]
    messages: list[Message] = []
    with contextlib.suppress(RegistryError):
        problems = {pid: dict(entry) for pid, entry in registry.load().items()}
        messages.append(
            Message(
                "confluence",
                "confluence_known_errors",
                known_errors_page(problems, issues=issues, redactor=redactor),
                "xhtml",
                target=destinations.known_errors_page_id,
            )
        )
    with contextlib.suppress(RegistryError):
        peaks = {pid: dict(entry) for pid, entry in registry.load_peaks().items()}
        messages.append(
            Message(
                "confluence",
                "confluence_known_peaks",
                known_peaks_page(peaks, redactor=redactor),
                "xhtml",
                target=destinations.known_peaks_page_id,
            )
        )
    return messages


# --- the regular phase's alerts ------------------------------------------------------------------


ALERT_KIND = "teams_alert"
ALERT_LOG_HORIZON = timedelta(days=1)
"""How far back, beyond the repeat interval and the resolution windows, the notification log is read:
an incident with no entry that old is forgotten (its resolution, if unsent, is never sent)."""


@dataclass(frozen=True, slots=True)
class AlertPlan:
    """What the regular phase publishes: the alert messages, the log entry of what is only noted (held
    incidents, resolutions not sent), and how many incidents were held back."""

    messages: list[Message]
    noted: Message | None = None
    held_back: int = 0


def alert_messages(
    findings: Sequence[Finding],
    destinations: Destinations,
    outbox: Outbox | None,
    now: datetime,
    redactor: Redactor = DEFAULT_REDACTOR,
    *,
    through: datetime | None = None,
) -> AlertPlan:
    """One card for the alert incidents of `findings` that are new, escalated, updated, due again
    after `alert_repeat`, or resolved (see core.alerting), judged against the outbox's notification
    log — with Teams or only the file copy alike. `through`: the end of the latest analysed window
    (default: the findings' latest). A dry run has no log: every incident of its windows is new, and
    nothing resolves."""
    incidents = alerting.group(findings)
    if through is None:
        through = max((i.last_window for i in incidents), default=now) + WINDOW
    if outbox is None:
        sent, noted = [alerting.AlertUpdate("new", i) for i in incidents], []
    else:
        horizon = max(destinations.alert_repeat, WINDOW * (destinations.alert_resolve_windows + 1))
        log = [
            alerting.LogEntry(n.created_at, n.sent, n.subject)
            for n in outbox.notifications(ALERT_KIND, now - horizon - ALERT_LOG_HORIZON)
        ]
        sent, noted = alerting.decide(
            incidents,
            log,
            now,
            through=through,
            repeat=destinations.alert_repeat,
            resolve_windows=destinations.alert_resolve_windows,
        )
    if not destinations.alert_send_resolved:
        noted += [u for u in sent if u.state == "resolved"]
        sent = [u for u in sent if u.state != "resolved"]
    held_back = sum(1 for u in noted if u.state != "resolved")
    note = _teams_message(ALERT_KIND, {}, _alert_subject(noted)) if noted else None
    if not sent:
        return AlertPlan([], note, held_back)
    card = teams_alert_card(sent, None, redactor=redactor, kibana=destinations.kibana)
    return AlertPlan([_teams_message(ALERT_KIND, card, _alert_subject(sent))], note, held_back)


def _alert_subject(updates: Iterable[alerting.AlertUpdate]) -> dict[str, Any]:
    """What an alert is about, for the notification log: each incident's key, state and extent."""
    return {"incidents": [alerting.subject(u) for u in updates]}


def _teams_message(
    kind: str, card: Mapping[str, Any], subject: Mapping[str, Any] | None = None, target: str | None = None
) -> Message:
    return Message(
        "teams",
        kind,
        payload_text(card),
        "json",
        target=target,
        subject=subject or {},
        expires_after=TEAMS_MESSAGE_TTL,
    )
