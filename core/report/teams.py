"""Teams messages as Adaptive Cards: the daily summary, and the blocks and size fitting every card uses.

Log text goes into cards as TextRuns, which Teams shows verbatim instead of reading them as Markdown;
every piece of it is redacted (again: the report already is; redaction is idempotent).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from core.model import isoformat
from core.redact import DEFAULT_REDACTOR, Redactor
from core.report import sections
from core.report.model import Report, empty_summary

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


def verdict_block(headline: str, failed: bool) -> dict[str, Any]:
    """The first block of a card whose run is not ok, in the attention (failed) or warning colour."""
    return literal(headline, weight="Bolder", color="Attention" if failed else "Warning")


def teams_summary_card(
    report: Report, *, page_url: str | None, redactor: Redactor = DEFAULT_REDACTOR
) -> dict[str, Any]:
    """The backfill's Teams message: the analysed range and how it went, run figures, the top problems
    each with its severity and a NEW or REGRESSED marker, and a link to the Confluence page."""
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
        lines.append([{"type": "RichTextBlock", "inlines": runs}])
    return card(head, lines, page_url)
