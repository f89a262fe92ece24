"""The initial schema: runs and their steps, processed windows, incidents, peaks, problems.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Portable types only, so the same migration builds SQLite and PostgreSQL: timestamps are
`DateTime(timezone=True)` holding UTC, documents are JSON (JSONB on PostgreSQL).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("phase", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP),
        sa.Column("args", JSON, nullable=False),
        sa.Column("k8s_job", sa.String(253)),
        sa.Column("k8s_pod", sa.String(253)),
        sa.Column("hostname", sa.String(253)),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_runs_phase_started_at", "runs", ["phase", "started_at"])
    op.create_index("ix_runs_k8s_job", "runs", ["k8s_job"])
    op.create_index("ix_runs_k8s_pod", "runs", ["k8s_pod"])

    op.create_table(
        "run_steps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("step", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_run_steps_run_id", "run_steps", ["run_id"])

    op.create_table(
        "windows",
        sa.Column("window_start", TIMESTAMP, primary_key=True),
        sa.Column("window_end", TIMESTAMP, nullable=False),
        sa.Column("phase", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(36)),
        sa.Column("processed_at", TIMESTAMP, nullable=False),
    )

    op.create_table(
        "incidents",
        sa.Column("problem_id", sa.Text, primary_key=True),
        sa.Column("window_start", TIMESTAMP, primary_key=True),
        sa.Column("namespace", sa.String(253), primary_key=True),
        sa.Column("workload_kind", sa.String(32), primary_key=True),
        sa.Column("workload_name", sa.String(253), primary_key=True),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("flow", sa.String(128), nullable=False),
        sa.Column("error_class", sa.String(128), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("window_end", TIMESTAMP, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("first_seen", TIMESTAMP, nullable=False),
        sa.Column("last_seen", TIMESTAMP, nullable=False),
        sa.Column("samples", JSON, nullable=False),
        sa.Column("fingerprints", JSON, nullable=False),
        sa.Column("trace_ids", JSON, nullable=False),
        sa.Column("apps", JSON, nullable=False),
        sa.Column("run_id", sa.String(36)),
    )
    op.create_index("ix_incidents_window_start", "incidents", ["window_start"])

    op.create_table(
        "peaks",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("scope", sa.String(16), primary_key=True),
        sa.Column("scope_id", sa.Text, primary_key=True),
        sa.Column("window_start", TIMESTAMP, primary_key=True),
        sa.Column("window_end", TIMESTAMP, nullable=False),
        sa.Column("observed", sa.Float, nullable=False),
        sa.Column("baseline", sa.Float, nullable=False),
        sa.Column("ratio", sa.Float, nullable=False),
        sa.Column("problem_id", sa.Text),
        sa.Column("namespace", sa.String(253)),
        sa.Column("run_id", sa.String(36)),
    )
    op.create_index("ix_peaks_window_start", "peaks", ["window_start"])

    op.create_table(
        "problem_days",
        sa.Column("problem_id", sa.Text, primary_key=True),
        sa.Column("day", TIMESTAMP, primary_key=True),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("flow", sa.String(128), nullable=False),
        sa.Column("error_class", sa.String(128), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("first_seen", TIMESTAMP, nullable=False),
        sa.Column("last_seen", TIMESTAMP, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("namespaces", JSON, nullable=False),
        sa.Column("workloads", JSON, nullable=False),
        sa.Column("templates", JSON, nullable=False),
        sa.Column("sample", sa.Text, nullable=False),
        sa.Column("sample_seen", TIMESTAMP),
    )
    op.create_index("ix_problem_days_day", "problem_days", ["day"])

    op.create_table(
        "problems",
        sa.Column("problem_id", sa.Text, primary_key=True),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("flow", sa.String(128), nullable=False),
        sa.Column("error_class", sa.String(128), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("first_seen", TIMESTAMP, nullable=False),
        sa.Column("last_seen", TIMESTAMP, nullable=False),
        sa.Column("total_count", sa.BigInteger, nullable=False),
        sa.Column("namespaces", JSON, nullable=False),
        sa.Column("workloads", JSON, nullable=False),
        sa.Column("templates", JSON, nullable=False),
        sa.Column("sample", sa.Text, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )


def downgrade() -> None:
    for table in ("problems", "problem_days", "peaks", "incidents", "windows", "run_steps", "runs"):
        op.drop_table(table)
