"""Masking rules v2: stored incidents re-keyed, unclassified problems renamed, their renames recorded.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

MASKING_RULES_VERSION 2 changes every fingerprint key and the error class of unclassified problems
(the constant words of the template, no hash). core/rekey.py fingerprints the stored samples again
with the current rules and moves each problem's history to its new id; `problem_renames` tells the
registry where people's entries go.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "problem_renames",
        sa.Column("old_id", sa.Text, primary_key=True),
        sa.Column("new_id", sa.Text, nullable=False),
        sa.Column("masking_rules_version", sa.Integer, nullable=False),
    )
    from core.rekey import rekey  # the current rules: the keys a run of this release computes

    rekey(op.get_bind(), datetime.now(UTC))


def downgrade() -> None:
    # The old keys are not kept: a downgrade leaves the data re-keyed and only drops the record.
    op.drop_table("problem_renames")
