"""Teams messages as Adaptive Cards: the daily summary, the regular phase's alert, and the blocks and
size fitting every card uses.

Log text goes into cards as TextRuns, which Teams shows verbatim instead of reading them as Markdown;
every piece of it is redacted (again: the report already is; redaction is idempotent).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.alerting import AlertUpdate, group
from core.model import WINDOW, Finding, isoformat, plural, severity_rank, utc
from core.redact import DEFAULT_REDACTOR, Redactor
from core.report import sections
from core.report.kibana import Kibana
from core.report.model import Report, empty_summary
from core.report.sections import text

MAX_TEAMS_PAYLOAD_BYTES = 28_000
"""Teams rejects larger messages (about 28 KB); cards are cut to fit, with a "see Confluence" note."""

MAX_CARD_TEXT_CHARS = 1_000
ADAPTIVE_CARD_VERSION = "1.4"
SEVERITY_COLOURS = {"critical": "Attention", "high": "Warning"}
"""Text colours of a severity on a card; other severities keep the default colour."""


def literal(text: str, **run: Any) -> dict[str, Any]:
    """Text Teams shows as it is: a TextRun is never read as Markdown (a TextBlock would be)."""
    return {"type": "RichTextBlock", "inlines": [text_run(text, **run)]}


def text_run(text: str, **run: Any) -> dict[str, Any]:
    if len(text) > MAX_CARD_TEXT_CHARS:
        text = text[: MAX_CARD_TEXT_CHARS - 1] + "…"
    return {"type": "TextRun", "text": text, **run}


def heading(text: str) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "weight": "Bolder", "size": "Medium", "wrap": True}


def message(body: list[dict[str, Any]], page_url: str | None) -> dict[str, Any]:
    """The message a Workflows webhook takes: one Adaptive Card attachment."""
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


def payload_text(payload: Mapping[str, Any]) -> str:
    """A payload as it is posted: compact JSON, built once and handed to the channel as it is."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def payload_size(payload: Mapping[str, Any]) -> int:
    """Bytes of a payload as it is posted (compact UTF-8 JSON)."""
    return len(payload_text(payload).encode("utf-8"))


def card(
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
        return message(body, page_url)

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


def link_block(title: str, url: str) -> dict[str, Any]:
    """A button opening `url`, in the card's body (beside the block it belongs to)."""
    return {"type": "ActionSet", "actions": [{"type": "Action.OpenUrl", "title": title, "url": url}]}


def verdict_block(headline: str, failed: bool) -> dict[str, Any]:
    """The first block of a card whose run is not ok, in the attention (failed) or warning colour."""
    return literal(headline, weight="Bolder", color="Attention" if failed else "Warning")


def teams_summary_card(
    report: Report, *, page_url: str | None, redactor: Redactor = DEFAULT_REDACTOR
) -> dict[str, Any]:
    """The backfill's Teams message: the analysed range and how it went, run figures, the top problems
    each with its severity, a NEW or REGRESSED marker and what changed before it when known, and a
    link to the Confluence page."""
    figures = report.figures
    failed = f"{figures.days_failed}" + (
        f" ({', '.join(figures.failed_days)})" if figures.failed_days else ""
    )
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
    items = sections.summary(report)
    verdict = [] if report.verdict.ok else [verdict_block(report.verdict.headline(), report.verdict.failed)]
    head = verdict + [
        # A run that is not ok says so in the block above; the heading then names just the range.
        heading(redactor.redact(sections.title(report) if report.verdict.ok else report.label)),
        {
            "type": "TextBlock",
            "text": f"Generated {isoformat(report.generated_at)}",
            "isSubtle": True,
            "wrap": True,
        },
        {"type": "TextBlock", "text": "Run Summary:", "weight": "Bolder", "wrap": True},
        {"type": "FactSet", "facts": [{"title": t, "value": redactor.redact(str(v))} for t, v in facts]},
        {
            "type": "TextBlock",
            "text": "Top problems:" if items else empty_summary(report),
            "weight": "Bolder",
            "wrap": True,
        },
    ]
    lines = []
    for item in items:
        severity = item.problem.severity
        runs = [
            text_run(severity.upper() + " ", weight="Bolder", color=SEVERITY_COLOURS.get(severity, "Default"))
        ]
        if sections.marker(item.problem):
            runs.append(text_run(sections.marker(item.problem) + " ", weight="Bolder", color="Accent"))
        runs.append(text_run(redactor.redact(item.line)))
        blocks = [{"type": "RichTextBlock", "inlines": runs}]
        if item.problem.change:  # what changed before it: the first thing to look at
            blocks.append(literal(redactor.redact(item.problem.change), isSubtle=True))
        lines.append(blocks)
    return card(head, lines, page_url)


# ----------------------------------------------------------------------------------------------- alert


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
    kibana: Kibana | None = None,
) -> dict[str, Any]:
    """A regular-phase Teams alert: one block per alert incident, most severe first, each with one
    severity, its headline, what it affected before an escalation, a sample and, with `kibana`, a
    link to its events. Findings are grouped into new incidents (core.alerting)."""
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
        blocks = [literal(redactor.redact(alert_headline(update)), weight="Bolder", color=color)]
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
                    {"title": title, "value": redactor.redact(text(value))[:MAX_CARD_TEXT_CHARS]}
                    for title, value in facts
                ],
            }
        )
        sample = context.samples.get(incident.key)
        if sample and update.state != "resolved":
            blocks.append(literal(redactor.redact(sample), fontType="Monospace", isSubtle=True))
        if kibana is not None:
            url = kibana.discover(
                start=incident.started_at,
                end=incident.last_window + WINDOW,
                namespaces=incident.namespaces,
                workloads=incident.workloads,
            )
            blocks.append(link_block("Its events in Kibana", url))
        return blocks

    title = "Log Analyzer alert"
    if context.generated_at:
        title += f" at {utc(context.generated_at):%Y-%m-%d %H:%M:%S} UTC"
    head = [
        heading(title),
        {
            "type": "TextBlock",
            "text": f"Window [{isoformat(context.start)}, {isoformat(context.end)}): "
            f"{plural(len(ordered), 'incident')}",
            "wrap": True,
        },
    ]
    return card(head, [incident_blocks(update) for update in ordered], context.page_url)
