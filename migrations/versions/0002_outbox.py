"""The publication outbox: each Confluence page update and Teams message, recorded before it is sent.

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-10

A row is `pending` until delivered; `sending` (with an attempt id) while a run sends it; `delivered`,
`unconfirmed` (a chat message whose sender crashed mid-send: never re-sent), `superseded` (a newer
update of the same page) or `expired`. See docs/publishing.md.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP),
        sa.Column("attempt_id", sa.String(36)),
        sa.Column("claimed_at", TIMESTAMP),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("delivered_at", TIMESTAMP),
        sa.Column("location", sa.Text),
        sa.Column("last_error", sa.Text),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("subject", JSON, nullable=False),
    )
    op.create_index("ix_outbox_status_created_at", "outbox", ["status", "created_at"])
    op.create_index("ix_outbox_kind_created_at", "outbox", ["kind", "created_at"])


def downgrade() -> None:
    op.drop_table("outbox")
