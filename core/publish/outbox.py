"""The publication outbox: every message is recorded in the database before it is sent, and the outbox
is the notification log that says what was already sent.

States: `pending` → (claimed with an attempt id) `sending` → `delivered`, or back to `pending` after a
failure. An item left in `sending` longer than a delivery can take was abandoned by a crash between
send and record: an idempotent channel's item (a Confluence page PUT) goes back to `pending`, a chat
message (Teams) becomes `unconfirmed` and is never sent again (at most once). A newer message to the
same target (the same page, the summary of the same report) makes a pending older one `superseded`;
an item past its expiry becomes `expired`.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.model import utc
from core.publish.delivery import Attachment, Message
from core.store import outbox_table as outbox

LIVE = ("pending", "sending", "delivered", "unconfirmed", "filed")
"""States of an item that was or will be sent (or may have been): what the notification log counts.
`filed`: written to the file copy only, Teams not being configured; the log counts it as sent, so the
file copy shows what Teams would have received."""

NOTED = "held"
"""An alert-log entry that was never meant to be sent: an incident held back, a resolution not sent.
It keeps the incident's state (its latest window) in the log."""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    message: Message
    status: str
    created_at: datetime
    attempts: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Notification:
    created_at: datetime
    sent: bool  # False: noted only
    subject: Mapping[str, Any]


class Outbox:
    """The outbox table behind the store's engine; every method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, message: Message, now: datetime, status: str = "pending") -> int:
        """Record `message` as pending (or as `filed` / `held`, which are never sent); a pending older
        message to the same target is superseded by a pending one."""
        now = utc(now)
        with self._engine.begin() as conn:
            if message.target is not None and status == "pending":
                conn.execute(
                    sa.update(outbox)
                    .where(
                        outbox.c.channel == message.channel,
                        outbox.c.target == message.target,
                        outbox.c.status == "pending",
                    )
                    .values(status="superseded", last_error="superseded by a newer message to its target")
                )
            inserted = conn.execute(
                sa.insert(outbox).values(
                    channel=message.channel,
                    kind=message.kind,
                    target=message.target,
                    status=status,
                    created_at=now,
                    expires_at=now + message.expires_after if message.expires_after else None,
                    attempts=0,
                    payload=_payload(message),
                    subject=dict(message.subject),
                )
            )
        return int(inserted.inserted_primary_key[0])

    def recover(self, now: datetime, lease: timedelta, resend: Collection[str]) -> list[OutboxItem]:
        """Settle items abandoned in `sending` (claimed before now − lease) and expired items.

        Items of the `resend` channels go back to pending; the others become `unconfirmed`, which are
        returned so the caller can say so."""
        now = utc(now)
        with self._engine.begin() as conn:
            stale = sa.and_(outbox.c.status == "sending", outbox.c.claimed_at < now - lease)
            unconfirmed = self._items(conn, stale, outbox.c.channel.not_in(resend))
            conn.execute(
                sa.update(outbox)
                .where(stale, outbox.c.channel.in_(resend))
                .values(status="pending", attempt_id=None, last_error="abandoned while sending; sent again")
            )
            conn.execute(
                sa.update(outbox)
                .where(stale, outbox.c.channel.not_in(resend))
                .values(status="unconfirmed", last_error="the sender stopped mid-send; not sent again")
            )
            conn.execute(
                sa.update(outbox)
                .where(outbox.c.status == "pending", outbox.c.expires_at < now)
                .values(status="expired")
            )
        return unconfirmed

    def due(self, channels: Collection[str]) -> list[OutboxItem]:
        """Pending items of these channels, in the order they were made."""
        with self._engine.connect() as conn:
            return self._items(conn, outbox.c.status == "pending", outbox.c.channel.in_(channels))

    def claim(self, item_id: int, now: datetime) -> str | None:
        """Mark a pending item `sending` under a new attempt id; None when another run claimed it first."""
        attempt_id = str(uuid.uuid4())
        with self._engine.begin() as conn:
            claimed = conn.execute(
                sa.update(outbox)
                .where(outbox.c.id == item_id, outbox.c.status == "pending")
                .values(status="sending", attempt_id=attempt_id, claimed_at=utc(now))
            ).rowcount
        return attempt_id if claimed == 1 else None

    def settle(
        self,
        item_id: int,
        attempt_id: str,
        now: datetime,
        *,
        delivered: bool,
        attempts: int,
        location: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record how the claimed attempt ended: delivered, or pending again for a later run."""
        values: dict[str, Any] = {"attempts": outbox.c.attempts + attempts, "attempt_id": None}
        if delivered:
            values |= {
                "status": "delivered",
                "delivered_at": utc(now),
                "location": location,
                "last_error": None,
            }
        else:
            values |= {"status": "pending", "last_error": error}
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(outbox)
                .where(outbox.c.id == item_id, outbox.c.attempt_id == attempt_id)
                .values(values)
            )

    def sent_since(self, kind: str, since: datetime) -> list[Mapping[str, Any]]:
        """The subjects of `kind` messages made since `since` that were, will be or may have been sent."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(outbox.c.subject)
                .where(outbox.c.kind == kind, outbox.c.created_at >= utc(since), outbox.c.status.in_(LIVE))
                .order_by(outbox.c.id)
            )
            return [row.subject for row in rows]

    def notifications(self, kind: str, since: datetime) -> list[Notification]:
        """The notification log of `kind` since `since`: what was (or will be) sent and what was only
        noted, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(outbox.c.subject, outbox.c.created_at, outbox.c.status)
                .where(
                    outbox.c.kind == kind,
                    outbox.c.created_at >= utc(since),
                    outbox.c.status.in_((*LIVE, NOTED)),
                )
                .order_by(outbox.c.id)
            )
            return [Notification(utc(row.created_at), row.status != NOTED, row.subject) for row in rows]

    def items(self) -> list[OutboxItem]:
        """Every item, in the order they were made."""
        with self._engine.connect() as conn:
            return self._items(conn, sa.true())

    @staticmethod
    def _items(conn: sa.Connection, *where: Any) -> list[OutboxItem]:
        rows = conn.execute(sa.select(outbox).where(*where).order_by(outbox.c.id))
        return [
            OutboxItem(
                id=row.id,
                message=_message(row.payload),
                status=row.status,
                created_at=row.created_at,
                attempts=row.attempts,
                last_error=row.last_error,
            )
            for row in rows
        ]


def _payload(message: Message) -> dict[str, Any]:
    return {
        "channel": message.channel,
        "kind": message.kind,
        "body": message.body,
        "format": message.format,
        "target": message.target,
        "attachments": [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "content": base64.b64encode(a.content).decode("ascii"),
            }
            for a in message.attachments
        ],
        "subject": dict(message.subject),
        "title": message.title,
    }


def _message(payload: Mapping[str, Any]) -> Message:
    return Message(
        channel=payload["channel"],
        kind=payload["kind"],
        body=payload["body"],
        format=payload["format"],
        target=payload["target"],
        attachments=tuple(
            Attachment(a["filename"], base64.b64decode(a["content"]), a["content_type"])
            for a in payload["attachments"]
        ),
        subject=payload["subject"],
        title=payload.get("title"),  # absent in rows written before pages had their own titles
    )
