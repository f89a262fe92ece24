"""Pending alerts: the critical findings of a stored window, kept until the alert channels hold them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

Written in the transaction that stores the window (core/store.py `replace_range`), so a run that dies
after storing a window, or cannot write its alerts, still has them alerted by the next run.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pending_alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("window_start", TIMESTAMP, nullable=False),
        sa.Column("run_id", sa.String(36)),
        sa.Column("finding", JSON, nullable=False),
    )
    op.create_index("ix_pending_alerts_window_start", "pending_alerts", ["window_start"])


def downgrade() -> None:
    op.drop_table("pending_alerts")
