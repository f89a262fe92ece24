"""The Teams channel: posts a message to a Power Automate Workflows webhook (an Adaptive Card, answered
202: the default) or to a classic Office 365 connector webhook (a MessageCard built with pymsteams).

The webhook URL carries its own signature, so it is a secret: it never appears in a result or a log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pymsteams
import requests

from core.publish.delivery import DeliveryResult, Message, connection_failure, http_failure
from core.report.teams import MAX_TEAMS_PAYLOAD_BYTES

HINTS = {
    400: "the webhook rejected the card",
    401: "check TEAMS_WEBHOOK_URL (its signature)",
    403: "check TEAMS_WEBHOOK_URL (its signature) and the flow's permissions",
    404: "check TEAMS_WEBHOOK_URL: the workflow or connector may have been deleted",
    413: "the message is too large",
}


@dataclass
class TeamsChannel:
    webhook_url: str = field(repr=False)
    kind: Literal["workflows", "connector"] = "workflows"
    timeout_s: float = 30.0
    name: str = "teams"
    idempotent: bool = False

    def send(self, message: Message) -> DeliveryResult:
        if self.kind == "connector":
            try:
                card = connector_card(json.loads(message.body), self.webhook_url, self.timeout_s)
                return self._send_connector(card)
            except ValueError as exc:
                return DeliveryResult(delivered=False, error=f"Teams connector: {exc}")
        # The body is the payload as rendered (core.report.teams.payload_text): posted as it is.
        body = message.body.encode("utf-8")
        if len(body) > MAX_TEAMS_PAYLOAD_BYTES:
            return DeliveryResult(
                delivered=False, error=f"Teams: the card is {len(body)} bytes, over the limit"
            )
        try:
            response = requests.post(
                self.webhook_url,
                data=body,
                headers={"Content-Type": "application/json; charset=utf-8"},
                timeout=self.timeout_s,
            )
        except requests.RequestException as exc:
            return connection_failure(exc, "Teams")
        if 200 <= response.status_code < 300:
            return DeliveryResult(delivered=True, location=f"Teams ({response.status_code})")
        return http_failure(response.status_code, response.headers, HINTS, "Teams")

    def _send_connector(self, card: pymsteams.connectorcard) -> DeliveryResult:
        try:
            card.send()
        except pymsteams.TeamsWebhookException:
            response = card.last_http_response
            return http_failure(response.status_code, response.headers, HINTS, "Teams connector")
        except requests.RequestException as exc:
            return connection_failure(exc, "Teams connector")
        return DeliveryResult(
            delivered=True, location=f"Teams connector ({card.last_http_response.status_code})"
        )


def connector_card(message: Mapping[str, Any], webhook_url: str, timeout_s: float) -> pymsteams.connectorcard:
    """The classic connector's MessageCard for an Adaptive Card message: the first heading is the title,
    facts stay facts, every other block becomes a section of plain text (markdown off: log text shows
    as it is)."""
    content = message["attachments"][0]["content"]
    blocks = content["body"]
    card = pymsteams.connectorcard(webhook_url, http_timeout=timeout_s)
    headings = [b for b in blocks if b["type"] == "TextBlock" and b.get("size") == "Medium"]
    title = headings[0]["text"] if headings else "Log Analyzer"
    card.title(title)
    card.summary(title)
    for block in blocks:
        if headings and block is headings[0]:
            continue
        section = pymsteams.cardsection()
        section.disableMarkdown()
        if block["type"] == "FactSet":
            for fact in block["facts"]:
                section.addFact(fact["title"], fact["value"])
        elif block["type"] == "ActionSet":
            for action in block["actions"]:
                section.linkButton(action["title"], action["url"])
        else:
            section.text(_block_text(block))
        card.addSection(section)
    for action in content.get("actions", []):
        card.addLinkButton(action["title"], action["url"])
    # Fewer bytes per line than the Adaptive Card it comes from, which is cut to fit; this only guards.
    if len(json.dumps(card.payload).encode("utf-8")) > MAX_TEAMS_PAYLOAD_BYTES:
        raise ValueError("the connector card exceeds the Teams payload limit")
    return card


def _block_text(block: Mapping[str, Any]) -> str:
    """A TextBlock's text, or a RichTextBlock's runs joined."""
    if block["type"] == "RichTextBlock":
        return "".join(run["text"] for run in block["inlines"])
    return block["text"]
