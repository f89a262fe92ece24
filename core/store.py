"""Persistence: runs, processed windows, incidents, peaks and problems in SQLite or PostgreSQL.

The schema is built by the Alembic migrations in `migrations/`; this module holds the table
definitions the queries use, the phase lock, `replace_range`, the one-transaction write, and
`purge_before`, the retention.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import filelock
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from core.model import (
    WINDOW,
    Finding,
    History,
    Incident,
    Peak,
    ProblemRecord,
    ProblemState,
    finding_from_dict,
    finding_to_dict,
    utc,
    window_start,
)
from core.redact import redact as default_redact

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SCHEMA_REVISION = "0004"
"""The newest migration (tests/test_store.py checks it is Alembic's head). A SQLite store already at it
is not migrated when opened: that spares every run importing Alembic."""
DAY = timedelta(days=1)
MAX_TEMPLATES = 10
"""Templates kept per problem, the most frequent first."""

_IN_CHUNK = 500  # ids per IN (...) list: well below SQLite's and PostgreSQL's parameter limits
_PHASE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_ABANDONED = "abandoned: the process ended before it finished the run"
_NOT_FOLDED = {"trace_ids", "apps", "window_end", "run_id"}  # incident columns problem facts do not use
# Outbox states no delivery changes any more (core/publish/outbox.py): what retention may delete.
_SETTLED = ("delivered", "unconfirmed", "superseded", "expired", "filed", "held")


class StoreError(Exception):
    """Base of the store's errors."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or used; the message names the host, never the password."""


class SchemaMissing(StoreError):
    """The database has no schema, or not the one this version needs: `log-analyzer migrate` makes it."""


class LockHeld(StoreError):
    """Another run of the same phase holds the phase lock."""

    def __init__(self, phase: str) -> None:
        super().__init__(f"another {phase} run is in progress (phase lock held)")
        self.phase = phase


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back as an aware UTC datetime (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else utc(value)


JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

metadata = sa.MetaData()

runs_table = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("phase", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("args", JSONDocument, nullable=False),
    sa.Column("k8s_job", sa.String(253)),
    sa.Column("k8s_pod", sa.String(253)),
    sa.Column("hostname", sa.String(253)),
    sa.Column("counts", JSONDocument, nullable=False),
    sa.Column("error", sa.Text),
    sa.Index("ix_runs_phase_started_at", "phase", "started_at"),
    sa.Index("ix_runs_k8s_job", "k8s_job"),
    sa.Index("ix_runs_k8s_pod", "k8s_pod"),
)

run_steps_table = sa.Table(
    "run_steps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("step", sa.String(255), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("counts", JSONDocument, nullable=False),
    sa.Column("error", sa.Text),
    sa.Index("ix_run_steps_run_id", "run_id"),
)

windows_table = sa.Table(
    "windows",
    metadata,
    sa.Column("window_start", UTCDateTime, primary_key=True),
    sa.Column("window_end", UTCDateTime, nullable=False),
    sa.Column("phase", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(36)),
    sa.Column("processed_at", UTCDateTime, nullable=False),
)

incidents_table = sa.Table(
    "incidents",
    metadata,
    # The natural key is the primary key: one problem in one window in one workload.
    sa.Column("problem_id", sa.Text, primary_key=True),
    sa.Column("window_start", UTCDateTime, primary_key=True),
    sa.Column("namespace", sa.String(253), primary_key=True),
    sa.Column("workload_kind", sa.String(32), primary_key=True),
    sa.Column("workload_name", sa.String(253), primary_key=True),
    sa.Column("category", sa.String(64), nullable=False),
    sa.Column("flow", sa.String(128), nullable=False),
    sa.Column("error_class", sa.String(128), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("window_end", UTCDateTime, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
    sa.Column("samples", JSONDocument, nullable=False),
    sa.Column("fingerprints", JSONDocument, nullable=False),
    sa.Column("trace_ids", JSONDocument, nullable=False),
    sa.Column("apps", JSONDocument, nullable=False),
    sa.Column("run_id", sa.String(36)),
    sa.Index("ix_incidents_window_start", "window_start"),
)

peaks_table = sa.Table(
    "peaks",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("scope", sa.String(16), primary_key=True),
    sa.Column("scope_id", sa.Text, primary_key=True),
    sa.Column("window_start", UTCDateTime, primary_key=True),
    sa.Column("window_end", UTCDateTime, nullable=False),
    sa.Column("observed", sa.Float, nullable=False),
    sa.Column("baseline", sa.Float, nullable=False),
    sa.Column("ratio", sa.Float, nullable=False),
    sa.Column("problem_id", sa.Text),
    sa.Column("namespace", sa.String(253)),
    sa.Column("run_id", sa.String(36)),
    sa.Index("ix_peaks_window_start", "window_start"),
)

# Per-problem facts of one UTC day, recomputed from that day's incidents: `problems` and
# `problem_states` fold these instead of scanning every incident a problem ever had.
# Retention keeps them (without their samples) after the incidents are gone.
problem_days_table = sa.Table(
    "problem_days",
    metadata,
    sa.Column("problem_id", sa.Text, primary_key=True),
    sa.Column("day", UTCDateTime, primary_key=True),
    sa.Column("category", sa.String(64), nullable=False),
    sa.Column("flow", sa.String(128), nullable=False),
    sa.Column("error_class", sa.String(128), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("namespaces", JSONDocument, nullable=False),
    sa.Column("workloads", JSONDocument, nullable=False),
    sa.Column("templates", JSONDocument, nullable=False),  # template → events of incidents showing it
    sa.Column("sample", sa.Text, nullable=False),
    sa.Column("sample_seen", UTCDateTime),
    sa.Index("ix_problem_days_day", "day"),
)

problems_table = sa.Table(
    "problems",
    metadata,
    sa.Column("problem_id", sa.Text, primary_key=True),
    sa.Column("category", sa.String(64), nullable=False),
    sa.Column("flow", sa.String(128), nullable=False),
    sa.Column("error_class", sa.String(128), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
    sa.Column("total_count", sa.BigInteger, nullable=False),
    sa.Column("namespaces", JSONDocument, nullable=False),
    sa.Column("workloads", JSONDocument, nullable=False),
    sa.Column("templates", JSONDocument, nullable=False),
    sa.Column("sample", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)


# The publication outbox (core/publish/outbox.py): every message is recorded here before it is sent.
outbox_table = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),  # also the order of sending
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("target", sa.String(255)),
    # pending | sending | delivered | unconfirmed | superseded | expired | filed | held
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime),
    sa.Column("attempt_id", sa.String(36)),
    sa.Column("claimed_at", UTCDateTime),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("delivered_at", UTCDateTime),
    sa.Column("location", sa.Text),
    sa.Column("last_error", sa.Text),
    sa.Column("payload", JSONDocument, nullable=False),
    sa.Column("subject", JSONDocument, nullable=False),
    sa.Index("ix_outbox_status_created_at", "status", "created_at"),
    sa.Index("ix_outbox_kind_created_at", "kind", "created_at"),
)

# Critical findings of stored windows not yet handed to the alert channels: written in the transaction
# that stores their window, so a run that dies after storing still has them alerted by the next run.
pending_alerts_table = sa.Table(
    "pending_alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),  # also the order of alerting
    sa.Column("window_start", UTCDateTime, nullable=False),  # of the finding; a range rewrite replaces it
    sa.Column("run_id", sa.String(36)),
    sa.Column("finding", JSONDocument, nullable=False),
    sa.Index("ix_pending_alerts_window_start", "window_start"),
)

# Problem ids a change of the masking rules renamed (core/rekey.py, run by the migration of that change):
# the registry moves people's entries along them, oldest rule version first.
problem_renames_table = sa.Table(
    "problem_renames",
    metadata,
    sa.Column("old_id", sa.Text, primary_key=True),
    sa.Column("new_id", sa.Text, nullable=False),
    sa.Column("masking_rules_version", sa.Integer, nullable=False),
)


@dataclass(frozen=True, slots=True)
class StepRecord:
    step: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, Any]
    error: str | None


@dataclass(slots=True)
class RunRecord:
    """One recorded run of a phase, with its steps in the order they were recorded."""

    id: str
    phase: str
    status: str  # running | succeeded | failed | partial
    started_at: datetime
    finished_at: datetime | None
    args: dict[str, Any]
    k8s_job: str | None
    k8s_pod: str | None
    hostname: str | None
    counts: dict[str, Any]
    error: str | None
    steps: list[StepRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WriteResult:
    incidents_saved: int
    peaks_saved: int
    problems_updated: int


class Store:
    """The database behind the pipeline; build it with `Store.from_url`.

    `redact` is applied to the log text written with incidents (samples and templates), so that the
    database holds no more personal data than the published reports; None stores it as logged
    (STORE_RAW_SAMPLES)."""

    def __init__(self, engine: Engine, redact: Callable[[str], str] | None = default_redact) -> None:
        self._engine = engine
        self._redact = redact
        self._local_locks: set[str] = set()

    @classmethod
    def from_url(
        cls, url: str, *, migrate: bool | None = None, redact: Callable[[str], str] | None = default_redact
    ) -> Store:
        """Open the database at `url`; SQLite is migrated by default when behind the newest schema,
        PostgreSQL only when asked (there the DDL user runs `log-analyzer migrate`). Unreachable →
        `StoreUnavailable`."""
        parsed = make_url(url)
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        sqlite = parsed.get_backend_name() == "sqlite"
        store = cls(_sqlite_engine(parsed) if sqlite else _server_engine(parsed), redact)
        with store._connect():
            pass
        if migrate or (migrate is None and sqlite and store._revision() != SCHEMA_REVISION):
            store.migrate()
        return store

    @property
    def engine(self) -> Engine:
        """The engine, for modules that keep a table of their own here (the publication outbox)."""
        return self._engine

    @property
    def url(self) -> str:
        """The database URL with the password masked."""
        return self._engine.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Store({self.url})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._engine.dispose()

    def migrate(self, role: str | None = None) -> None:
        """Upgrade the schema to the newest migration (`role`: PostgreSQL role to own the objects)."""
        from alembic import command  # imported only when migrating: most runs open an up-to-date schema

        config = alembic_config()
        path = self._sqlite_path()
        # Two processes opening a new SQLite file at once must not both create the tables.
        guard = filelock.FileLock(f"{path}.migrate.lock", timeout=60) if path else nullcontext()
        try:
            with guard, self._begin() as conn:
                if role:
                    conn.execute(sa.text(f"SET ROLE {conn.dialect.identifier_preparer.quote(role)}"))
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except sa.exc.DBAPIError as exc:
            # Typically a user without DDL rights (the application user): one line, not a traceback.
            raise StoreError(self._describe(exc, "migration failed")) from exc

    def require_schema(self) -> None:
        """Raise `SchemaMissing` unless the schema is at `SCHEMA_REVISION`: a run on a PostgreSQL
        database that was never migrated would otherwise do its work and fail at the first write."""
        revision = self._revision()
        if revision != SCHEMA_REVISION:
            found = "no schema" if revision is None else f"schema revision {revision}"
            raise SchemaMissing(
                f"the database {self.url} has {found}, this version needs {SCHEMA_REVISION}: "
                "run `log-analyzer migrate` (as the DDL user)"
            )

    def _revision(self) -> str | None:
        """The schema's Alembic revision; None before the first migration."""
        with self._connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.scalar(sa.text("SELECT version_num FROM alembic_version"))

    # --- the phase lock --------------------------------------------------------------------

    @contextmanager
    def phase_lock(self, phase: str) -> Iterator[None]:
        """Hold the lock of `phase` for the block; raise `LockHeld` at once if another run has it.

        While the lock is held no other run of the phase is alive, so runs of the phase still
        marked running were abandoned (killed) and are marked failed.
        """
        if not _PHASE.fullmatch(phase):
            raise ValueError(f"invalid phase name {phase!r}")
        if self._engine.dialect.name == "postgresql":
            lock = self._advisory_lock(phase)
        elif self._sqlite_path() is not None:
            lock = self._file_lock(phase)
        else:
            lock = self._local_lock(phase)
        with lock:
            with self._begin() as conn:
                conn.execute(
                    sa.update(runs_table)
                    .where(runs_table.c.phase == phase, runs_table.c.status == "running")
                    .values(status="failed", error=_ABANDONED)
                )
            yield

    @contextmanager
    def _file_lock(self, phase: str) -> Iterator[None]:
        # An OS file lock: released by the kernel if the process dies.
        lock = filelock.FileLock(f"{self._sqlite_path()}.{phase}.lock")
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            raise LockHeld(phase) from None
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def _advisory_lock(self, phase: str) -> Iterator[None]:
        key = int.from_bytes(
            hashlib.sha256(f"ai-log-analyzer:{phase}".encode()).digest()[:8], "big", signed=True
        )
        with self._connect() as conn:
            # Autocommit: the session-level lock is held without an idle open transaction.
            conn.execution_options(isolation_level="AUTOCOMMIT")
            if not conn.scalar(sa.select(sa.func.pg_try_advisory_lock(key))):
                raise LockHeld(phase)
            try:
                yield
            finally:
                try:
                    conn.scalar(sa.select(sa.func.pg_advisory_unlock(key)))
                except sa.exc.DBAPIError:
                    conn.invalidate()  # the session is gone, and its lock with it

    @contextmanager
    def _local_lock(self, phase: str) -> Iterator[None]:
        # An in-memory database lives in this process only, so an in-process lock is enough.
        if phase in self._local_locks:
            raise LockHeld(phase)
        self._local_locks.add(phase)
        try:
            yield
        finally:
            self._local_locks.discard(phase)

    # --- runs ------------------------------------------------------------------------------

    def start_run(self, phase: str, args: dict[str, Any], k8s_job: str | None, k8s_pod: str | None) -> str:
        run_id = str(uuid.uuid4())
        with self._begin() as conn:
            conn.execute(
                sa.insert(runs_table).values(
                    id=run_id,
                    phase=phase,
                    status="running",
                    started_at=datetime.now(UTC),
                    args=_jsonable(args),
                    k8s_job=k8s_job,
                    k8s_pod=k8s_pod,
                    hostname=socket.gethostname(),
                    counts={},
                )
            )
        return run_id

    def record_step(
        self,
        run_id: str,
        step: str,
        status: str,
        started_at: datetime,
        finished_at: datetime | None,
        counts: dict[str, Any],
        error: str | None,
    ) -> None:
        with self._begin() as conn:
            conn.execute(
                sa.insert(run_steps_table).values(
                    run_id=run_id,
                    step=step,
                    status=status,
                    started_at=started_at,
                    finished_at=finished_at,
                    counts=_jsonable(counts),
                    error=error,
                )
            )

    def finish_run(self, run_id: str, status: str, counts: dict[str, Any], error: str | None) -> None:
        with self._begin() as conn:
            conn.execute(
                sa.update(runs_table)
                .where(runs_table.c.id == run_id)
                .values(status=status, finished_at=datetime.now(UTC), counts=_jsonable(counts), error=error)
            )

    def recent_runs(self, limit: int = 20, phase: str | None = None) -> list[RunRecord]:
        """The newest runs first, each with its steps."""
        query = sa.select(runs_table).order_by(runs_table.c.started_at.desc(), runs_table.c.id).limit(limit)
        if phase is not None:
            query = query.where(runs_table.c.phase == phase)
        return self._runs_with_steps(query)

    def find_runs(self, ref: str, limit: int = 10) -> list[RunRecord]:
        """The runs `ref` names: the run with this run id, else the newest run of this Kubernetes Job or
        pod name, else the newest `limit` runs whose id starts with `ref` (people copy the first
        characters of an id). One run, unless a prefix is ambiguous; none when nothing matches."""
        named = sa.or_(runs_table.c.id == ref, runs_table.c.k8s_job == ref, runs_table.c.k8s_pod == ref)
        found = self._runs_with_steps(
            sa.select(runs_table)
            .where(named)
            .order_by((runs_table.c.id == ref).desc(), runs_table.c.started_at.desc())
            .limit(1)
        )
        if found:
            return found
        return self._runs_with_steps(
            sa.select(runs_table)
            .where(runs_table.c.id.startswith(ref.lower(), autoescape=True))  # run ids are lower case
            .order_by(runs_table.c.started_at.desc(), runs_table.c.id)
            .limit(limit)
        )

    def _runs_with_steps(self, query: sa.Select) -> list[RunRecord]:
        with self._connect() as conn:
            records = [RunRecord(**row, steps=[]) for row in conn.execute(query).mappings()]
            by_id = {r.id: r for r in records}
            if by_id:
                steps = conn.execute(
                    sa.select(run_steps_table)
                    .where(run_steps_table.c.run_id.in_(by_id))
                    .order_by(run_steps_table.c.id)
                ).mappings()
                for s in steps:
                    by_id[s["run_id"]].steps.append(
                        StepRecord(
                            s["step"], s["status"], s["started_at"], s["finished_at"], s["counts"], s["error"]
                        )
                    )
        return records

    # --- the analysis write ------------------------------------------------------------------

    def replace_range(
        self,
        start: datetime,
        end: datetime,
        incidents: Sequence[Incident],
        peaks: Sequence[Peak],
        run_id: str | None,
        phase: str,
        alerts: Sequence[Finding] = (),
    ) -> WriteResult:
        """Make [start, end) hold exactly these incidents and peaks, and these critical findings as
        pending alerts (`pending_alerts`), in one transaction.

        `start` and `end` are window-aligned; every incident and peak must start inside the range.
        The range's windows are marked processed and the affected problems recomputed from the
        incidents, so writing the same range twice leaves the same database as writing it once.
        """
        start, end = _aligned_range(start, end)
        # Once per text: a template recurs in every window and workload of its problem.
        at_rest = functools.cache(self._redact) if self._redact else _as_logged
        incident_rows = [_incident_row(i, run_id, at_rest) for i in incidents]
        peak_rows = [_peak_row(p, run_id) for p in peaks]
        _check_rows(
            incident_rows,
            ("problem_id", "window_start", "namespace", "workload_kind", "workload_name"),
            start,
            end,
        )
        _check_rows(peak_rows, ("kind", "scope", "scope_id", "window_start"), start, end)
        alert_rows = [
            {"window_start": utc(f.window_start), "run_id": run_id, "finding": finding_to_dict(f)}
            for f in alerts
        ]
        if any(not start <= row["window_start"] < end for row in alert_rows):
            raise ValueError(f"a pending alert starts outside [{start.isoformat()}, {end.isoformat()})")
        now = datetime.now(UTC)
        window_rows = [
            {
                "window_start": w,
                "window_end": w + WINDOW,
                "phase": phase,
                "run_id": run_id,
                "processed_at": now,
            }
            for w in _windows(start, end)
        ]
        with self._begin() as conn:
            affected = set(
                conn.scalars(
                    sa.select(incidents_table.c.problem_id)
                    .where(incidents_table.c.window_start >= start, incidents_table.c.window_start < end)
                    .distinct()
                )
            )
            affected.update(r["problem_id"] for r in incident_rows)
            for table in (incidents_table, peaks_table, windows_table, pending_alerts_table):
                conn.execute(
                    sa.delete(table).where(table.c.window_start >= start, table.c.window_start < end)
                )
            for table, rows in (
                (incidents_table, incident_rows),
                (peaks_table, peak_rows),
                (windows_table, window_rows),
                (pending_alerts_table, alert_rows),
            ):
                _insert(conn, table, rows)
            _recompute_problems(conn, sorted(affected), incident_rows, start, end, now)
        return WriteResult(len(incident_rows), len(peak_rows), len(affected))

    # --- retention ---------------------------------------------------------------------------

    def purge_before(self, cutoff: datetime) -> dict[str, int]:
        """Delete the incidents, peaks and processed windows of windows starting before `cutoff`, the
        runs started before it with their steps, and the settled outbox items created before it, in
        one transaction; return the rows deleted per table.

        The per-problem fold (`problem_days`, `problems`) stays: it holds each problem's first
        sighting and total count, so a problem seen long ago and again today is recurring, not new.
        Only the samples of its days starting before the cutoff are cleared (`problem_day_samples`);
        each problem keeps the one sample of its `problems` row. Pending outbox items stay: they are
        still to be sent. Each statement but the one on `runs` (about a hundred rows a day) is a range
        on an index, so a run removes only what aged out since the previous one.
        """
        cutoff = utc(cutoff)
        old_runs = sa.select(runs_table.c.id).where(runs_table.c.started_at < cutoff)
        statements: dict[str, sa.Executable] = {
            table.name: sa.delete(table).where(table.c.window_start < cutoff)
            for table in (incidents_table, peaks_table, windows_table)
        }
        statements |= {
            "run_steps": sa.delete(run_steps_table).where(run_steps_table.c.run_id.in_(old_runs)),
            "runs": sa.delete(runs_table).where(runs_table.c.started_at < cutoff),
            "outbox": sa.delete(outbox_table).where(
                outbox_table.c.status.in_(_SETTLED), outbox_table.c.created_at < cutoff
            ),
        }
        with self._begin() as conn:
            # A day's facts are written from its incidents, and each purge clears the days before its
            # cutoff: the days left to clear start at the oldest incident, however long retention ran.
            oldest = conn.scalar(sa.select(sa.func.min(incidents_table.c.window_start)))
            deleted = {name: conn.execute(statement).rowcount for name, statement in statements.items()}
            deleted["problem_day_samples"] = (
                0
                if oldest is None
                else conn.execute(
                    sa.update(problem_days_table)
                    .where(
                        problem_days_table.c.day >= _day(oldest),
                        problem_days_table.c.day < cutoff,
                        problem_days_table.c.sample != "",
                    )
                    .values(sample="", sample_seen=None)
                ).rowcount
            )
        return deleted

    # --- reads -------------------------------------------------------------------------------

    def processed_windows(self, start: datetime, end: datetime) -> set[datetime]:
        with self._connect() as conn:
            return set(
                conn.scalars(
                    sa.select(windows_table.c.window_start).where(
                        windows_table.c.window_start >= start, windows_table.c.window_start < end
                    )
                )
            )

    def last_processed_window(self) -> datetime | None:
        with self._connect() as conn:
            return conn.scalar(sa.select(sa.func.max(windows_table.c.window_start)))

    def problem_states(self, before: datetime) -> dict[str, ProblemState]:
        """First and last sighting of every problem in incidents of windows before `before`."""
        day = _day(before)
        seen: dict[str, tuple[datetime, datetime]] = {}
        with self._connect() as conn:
            whole_days = (
                sa.select(
                    problem_days_table.c.problem_id,
                    sa.func.min(problem_days_table.c.first_seen),
                    sa.func.max(problem_days_table.c.last_seen),
                )
                .where(problem_days_table.c.day < day)
                .group_by(problem_days_table.c.problem_id)
            )
            part_day = (
                sa.select(
                    incidents_table.c.problem_id,
                    sa.func.min(incidents_table.c.first_seen),
                    sa.func.max(incidents_table.c.last_seen),
                )
                .where(incidents_table.c.window_start >= day, incidents_table.c.window_start < before)
                .group_by(incidents_table.c.problem_id)
            )
            for query in (whole_days, part_day):
                for pid, first, last in conn.execute(query):
                    old = seen.get(pid)
                    seen[pid] = (min(first, old[0]), max(last, old[1])) if old else (first, last)
        return {pid: ProblemState(pid, first, last) for pid, (first, last) in seen.items()}

    def history(self, start: datetime, end: datetime) -> History:
        """Event counts per window in [start, end), per problem and per namespace."""
        in_range = (incidents_table.c.window_start >= start, incidents_table.c.window_start < end)
        total = sa.func.sum(incidents_table.c.count)
        by_problem: dict[str, dict[datetime, int]] = {}
        by_namespace: dict[str, dict[datetime, int]] = {}
        with self._connect() as conn:
            for scope_column, counts in (
                (incidents_table.c.problem_id, by_problem),
                (incidents_table.c.namespace, by_namespace),
            ):
                query = (
                    sa.select(scope_column, incidents_table.c.window_start, total)
                    .where(*in_range)
                    .group_by(scope_column, incidents_table.c.window_start)
                )
                for scope_id, window, n in conn.execute(query):
                    counts.setdefault(scope_id, {})[window] = int(n)
        return History(utc(start), utc(end), by_problem, by_namespace)

    def problems(self, ids: Iterable[str] | None = None) -> list[ProblemRecord]:
        """All problems, or those with these ids, ordered by id."""
        query = sa.select(problems_table).order_by(problems_table.c.problem_id)
        with self._connect() as conn:
            if ids is None:
                rows = list(conn.execute(query).mappings())
            else:
                rows = [
                    row
                    for chunk in _chunks(sorted(set(ids)))
                    for row in conn.execute(query.where(problems_table.c.problem_id.in_(chunk))).mappings()
                ]
        return [
            ProblemRecord(**{k: v for k, v in row.items() if k != "updated_at"})
            for row in sorted(rows, key=lambda r: r["problem_id"])
        ]

    def problem_renames(self) -> dict[str, str]:
        """Old problem id → the id it has now, across every change of the masking rules so far."""
        query = sa.select(problem_renames_table).order_by(
            problem_renames_table.c.masking_rules_version, problem_renames_table.c.old_id
        )
        with self._connect() as conn:
            rows = list(conn.execute(query).mappings())
        renames: dict[str, str] = {}
        for row in rows:  # a later rename moves the earlier ones' targets along
            renames = {old: row["new_id"] if new == row["old_id"] else new for old, new in renames.items()}
            renames[row["old_id"]] = row["new_id"]
        return {old: new for old, new in renames.items() if old != new}

    def pending_alerts(self) -> list[tuple[int, Finding]]:
        """The critical findings stored with their windows and not yet alerted, oldest first, with the
        ids `alerts_handed_over` takes."""
        with self._connect() as conn:
            rows = conn.execute(sa.select(pending_alerts_table).order_by(pending_alerts_table.c.id))
            return [(row.id, finding_from_dict(row.finding)) for row in rows]

    def alerts_handed_over(self, ids: Sequence[int]) -> None:
        """Forget pending alerts once the alert channels hold them (the outbox, the file copy)."""
        with self._begin() as conn:
            for first in range(0, len(ids), _IN_CHUNK):
                chunk = list(ids[first : first + _IN_CHUNK])
                conn.execute(sa.delete(pending_alerts_table).where(pending_alerts_table.c.id.in_(chunk)))

    def peaks_between(self, start: datetime, end: datetime) -> list[Peak]:
        query = (
            sa.select(*(c for c in peaks_table.c if c.name != "run_id"))
            .where(peaks_table.c.window_start >= start, peaks_table.c.window_start < end)
            .order_by(
                peaks_table.c.window_start, peaks_table.c.kind, peaks_table.c.scope, peaks_table.c.scope_id
            )
        )
        with self._connect() as conn:
            return [Peak(**row) for row in conn.execute(query).mappings()]

    def incidents_between(self, start: datetime, end: datetime) -> list[Incident]:
        query = (
            sa.select(*(c for c in incidents_table.c if c.name != "run_id"))
            .where(incidents_table.c.window_start >= start, incidents_table.c.window_start < end)
            .order_by(incidents_table.c.window_start, *incidents_table.primary_key.columns)
        )
        with self._connect() as conn:
            return [Incident(**row) for row in conn.execute(query).mappings()]

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """The analysed content, canonically ordered, without who wrote it or when: equal
        snapshots mean equal analysis state."""
        bookkeeping = {"run_id", "processed_at", "phase", "updated_at"}
        dump: dict[str, list[dict[str, Any]]] = {}
        with self._connect() as conn:
            for table in (windows_table, incidents_table, peaks_table, problem_days_table, problems_table):
                columns = [c for c in table.c if c.name not in bookkeeping]
                key = [c.name for c in table.primary_key.columns]
                # Sorted here: a PostgreSQL collation may order text differently from SQLite.
                rows = sorted(conn.execute(sa.select(*columns)).mappings(), key=lambda r: [r[k] for k in key])
                dump[table.name] = [
                    {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
                    for row in rows
                ]
        return dump

    # --- connections -------------------------------------------------------------------------

    def _sqlite_path(self) -> Path | None:
        """The database file of a file-backed SQLite store; None for PostgreSQL and in-memory."""
        url = self._engine.url
        if url.get_backend_name() != "sqlite" or _sqlite_in_memory(url):
            return None
        return Path(url.database).resolve()

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        with self._unavailable_as_error(), self._engine.connect() as conn:
            yield conn

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        with self._unavailable_as_error(), self._engine.begin() as conn:
            yield conn

    @contextmanager
    def _unavailable_as_error(self) -> Iterator[None]:
        try:
            yield
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise StoreUnavailable(self._describe(exc)) from exc

    def _describe(self, exc: sa.exc.DBAPIError, what: str = "database unavailable") -> str:
        url = self._engine.url
        where = (
            str(self._sqlite_path() or ":memory:")
            if url.get_backend_name() == "sqlite"
            else (f"{url.host}:{url.port or 5432}/{url.database}")
        )
        reason = (str(exc.orig).strip().splitlines() or ["unknown error"])[0]
        if url.password:
            reason = reason.replace(str(url.password), "***")
        return f"{what} at {where}: {reason}"


def alembic_config() -> Config:
    """Alembic configured for `migrations/` without an alembic.ini; pass a connection in
    `config.attributes["connection"]` (migrations/env.py needs one)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _sqlite_in_memory(url: URL) -> bool:
    return not url.database or url.database == ":memory:"


def _sqlite_engine(url: URL) -> Engine:
    if _sqlite_in_memory(url):
        # One shared connection: each new connection would otherwise be a new, empty database.
        engine = sa.create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}, hide_parameters=True
        )
    else:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling delays BEGIN; SQLAlchemy's documented recipe takes
        # it over so a transaction covers every statement, reads included.
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE: take the write lock at the start; a read transaction that later writes could
        # otherwise fail with "database is locked" when the other phase writes at the same time.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _server_engine(url: URL) -> Engine:
    connect_args = {"connect_timeout": 10} if url.get_backend_name() == "postgresql" else {}
    # hide_parameters: log samples in statements must never reach error messages or logs.
    return sa.create_engine(url, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args)


def _aligned_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    start, end = utc(start), utc(end)
    if start >= end or window_start(start) != start or window_start(end) != end:
        raise ValueError(f"range must be whole {WINDOW} windows: [{start.isoformat()}, {end.isoformat()})")
    return start, end


def _check_rows(rows: list[dict[str, Any]], key: tuple[str, ...], start: datetime, end: datetime) -> None:
    """Rows outside the range would survive a re-run of it, duplicates would fail the insert."""
    seen: set[tuple[Any, ...]] = set()
    for row in rows:
        k = tuple(row[c] for c in key)
        if not start <= row["window_start"] < end:
            raise ValueError(f"{k} starts outside [{start.isoformat()}, {end.isoformat()})")
        if k in seen:
            raise ValueError(f"duplicate {k}")
        seen.add(k)


def _windows(start: datetime, end: datetime) -> Iterator[datetime]:
    w = start
    while w < end:
        yield w
        w += WINDOW


def _day(ts: datetime) -> datetime:
    return window_start(ts, DAY)


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), _IN_CHUNK):
        yield items[i : i + _IN_CHUNK]


def _jsonable(value: Mapping[str, Any]) -> dict[str, Any]:
    """Run args and counts as JSON: values JSON cannot hold (dates, paths) become strings."""
    return json.loads(
        json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))
    )


def _insert(conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows in bulk. PostgreSQL gets one COPY stream: a day of incidents is tens of thousands
    of rows, and COPY writes them faster than even a pipelined executemany of INSERTs."""
    if not rows:
        return
    dialect = conn.dialect
    if dialect.name != "postgresql":
        conn.execute(sa.insert(table), rows)
        return
    # Imported here, as SQLAlchemy imports its driver: a run on SQLite never loads psycopg.
    import psycopg
    from psycopg import sql as psycopg_sql

    # COPY bypasses SQLAlchemy's statement compiling, so the column types' bind processing
    # (UTC datetimes, JSON documents) is applied here, exactly as an INSERT would apply it.
    columns = [
        (c.name, c.type.dialect_impl(dialect).bind_processor(dialect)) for c in table.c if c.name in rows[0]
    ]
    statement = psycopg_sql.SQL("COPY {} ({}) FROM STDIN").format(
        psycopg_sql.Identifier(table.name),
        psycopg_sql.SQL(", ").join(psycopg_sql.Identifier(name) for name, _ in columns),
    )
    # The driver connection is inside the transaction SQLAlchemy began, so the COPY commits with it.
    try:
        with conn.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([row[name] if p is None else p(row[name]) for name, p in columns])
    except psycopg.Error as exc:
        # The server's CONTEXT quotes the offending row, and log data must never reach an error
        # message or a log line (for statements, `hide_parameters` sees to that).
        raise StoreError(f"bulk write of {table.name} failed: {exc.diag.message_primary}") from None


def _as_logged(text: str) -> str:
    return text


def _incident_row(i: Incident, run_id: str | None, at_rest: Callable[[str], str]) -> dict[str, Any]:
    """The row of an incident, its log text passed through `at_rest`; the keys and counts stay as they are."""
    first = utc(i.first_seen or i.window_start)
    return {
        "problem_id": i.problem_id,
        "window_start": utc(i.window_start),
        "namespace": i.namespace,
        "workload_kind": i.workload_kind,
        "workload_name": i.workload_name,
        "category": i.category,
        "flow": i.flow,
        "error_class": i.error_class,
        "severity": i.severity,
        "window_end": utc(i.window_end),
        "count": i.count,
        "first_seen": first,
        "last_seen": utc(i.last_seen or first),
        "samples": [at_rest(sample) for sample in i.samples],
        "fingerprints": {key: at_rest(template) for key, template in i.fingerprints.items()},
        "trace_ids": list(i.trace_ids),
        "apps": list(i.apps),
        "run_id": run_id,
    }


def _peak_row(p: Peak, run_id: str | None) -> dict[str, Any]:
    return {
        "kind": p.kind,
        "scope": p.scope,
        "scope_id": p.scope_id,
        "window_start": utc(p.window_start),
        "window_end": utc(p.window_end),
        "observed": float(p.observed),
        "baseline": float(p.baseline),
        "ratio": float(p.ratio),
        "problem_id": p.problem_id,
        "namespace": p.namespace,
        "run_id": run_id,
    }


def _incident_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c.name] for c in incidents_table.primary_key.columns)


@dataclass(slots=True)
class _Facts:
    """Folds incidents (or day rows) of one problem into one row; parts must arrive in key order
    so that ties resolve the same way on every run."""

    category: str = ""
    flow: str = ""
    error_class: str = ""
    severity: str = ""
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    count: int = 0
    namespaces: set[str] = field(default_factory=set)
    workloads: set[str] = field(default_factory=set)
    templates: Counter[str] = field(default_factory=Counter)
    sample: str = ""
    sample_seen: datetime | None = None

    def add(self, part: Mapping[str, Any], sample: str, sample_seen: datetime | None) -> None:
        # The newest part decides the classification: it reflects the current taxonomy.
        if self.last_seen is None or part["last_seen"] > self.last_seen:
            self.category, self.flow = part["category"], part["flow"]
            self.error_class, self.severity = part["error_class"], part["severity"]
            self.last_seen = part["last_seen"]
        self.first_seen = min(self.first_seen or part["first_seen"], part["first_seen"])
        self.count += part["count"]
        if sample and (
            self.sample_seen is None or (sample_seen is not None and sample_seen > self.sample_seen)
        ):
            self.sample, self.sample_seen = sample, sample_seen

    def row(self, templates: Any) -> dict[str, Any]:
        return {
            "category": self.category,
            "flow": self.flow,
            "error_class": self.error_class,
            "severity": self.severity,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "namespaces": sorted(self.namespaces),
            "workloads": sorted(self.workloads),
            "templates": templates,
            "sample": self.sample,
        }


def _recompute_problems(
    conn: Connection,
    problem_ids: list[str],
    written: Sequence[Mapping[str, Any]],
    start: datetime,
    end: datetime,
    now: datetime,
) -> None:
    """Rebuild `problem_days` of the days the range touches and `problems` for these problems.

    `written` are the incident rows just written to [start, end): they are folded from memory, and
    only the rest of the touched days is read back (nothing at all when the range is whole days).
    """
    lo, hi = _day(start), _day(end - WINDOW) + DAY
    by_problem: dict[str, list[Mapping[str, Any]]] = {}
    for row in written:
        by_problem.setdefault(row["problem_id"], []).append(row)
    for chunk in _chunks(problem_ids):
        conn.execute(
            sa.delete(problem_days_table).where(
                problem_days_table.c.problem_id.in_(chunk),
                problem_days_table.c.day >= lo,
                problem_days_table.c.day < hi,
            )
        )
        days: dict[tuple[str, datetime], _Facts] = {}
        rows = [row for pid in chunk for row in by_problem.get(pid, ())]
        if lo < start or end < hi:
            rows.extend(
                conn.execute(
                    sa.select(*(c for c in incidents_table.c if c.name not in _NOT_FOLDED)).where(
                        incidents_table.c.problem_id.in_(chunk),
                        incidents_table.c.window_start >= lo,
                        incidents_table.c.window_start < hi,
                        sa.or_(incidents_table.c.window_start < start, incidents_table.c.window_start >= end),
                    )
                ).mappings()
            )
        # Sorted here, not by the database: the fold's ties must resolve the same way on SQLite and on
        # a PostgreSQL whose collation does not order text by code point.
        rows.sort(key=_incident_key)
        for row in rows:
            facts = days.setdefault((row["problem_id"], _day(row["window_start"])), _Facts())
            facts.add(row, row["samples"][-1] if row["samples"] else "", row["last_seen"])
            facts.namespaces.add(row["namespace"])
            facts.workloads.add(f"{row['workload_kind']}/{row['namespace']}/{row['workload_name']}")
            facts.templates.update(dict.fromkeys(row["fingerprints"].values(), row["count"]))
        day_rows = [
            {
                "problem_id": pid,
                "day": day,
                "count": f.count,
                "sample_seen": f.sample_seen,
                **f.row(dict(f.templates)),
            }
            for (pid, day), f in days.items()
        ]
        _insert(conn, problem_days_table, day_rows)

        totals: dict[str, _Facts] = {}
        day_facts = conn.execute(
            sa.select(problem_days_table).where(problem_days_table.c.problem_id.in_(chunk))
        ).mappings()
        for row in sorted(day_facts, key=lambda r: (r["problem_id"], r["day"])):
            facts = totals.setdefault(row["problem_id"], _Facts())
            facts.add(row, row["sample"], row["sample_seen"])
            facts.namespaces.update(row["namespaces"])
            facts.workloads.update(row["workloads"])
            facts.templates.update(row["templates"])
        conn.execute(sa.delete(problems_table).where(problems_table.c.problem_id.in_(chunk)))
        problem_rows = [
            {
                "problem_id": pid,
                "total_count": f.count,
                "updated_at": now,
                **f.row(
                    [
                        t
                        for t, _ in sorted(f.templates.items(), key=lambda tw: (-tw[1], tw[0]))[
                            :MAX_TEMPLATES
                        ]
                    ]
                ),
            }
            for pid, f in totals.items()
        ]
        _insert(conn, problems_table, problem_rows)
