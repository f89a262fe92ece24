"""Tests of core/store.py on SQLite; tests/integration/test_store_postgres.py runs them on PostgreSQL too."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from core.model import WINDOW, Incident, Peak
from core.redact import Redactor
from core.store import (
    SCHEMA_REVISION,
    LockHeld,
    Store,
    StoreUnavailable,
    alembic_config,
    outbox_table,
    problem_days_table,
    run_steps_table,
    runs_table,
)

DAY0 = datetime(2024, 5, 1, tzinfo=UTC)


def incident(
    problem_id: str = "DATABASE:card_servicing:connection_pool",
    window: int = 0,
    namespace: str = "cards",
    workload: str = "card-api",
    count: int = 5,
    sample: str = "Connection to db.example.com refused",
    template: str = "Connection to <HOST> refused",
    severity: str = "high",
    day: datetime = DAY0,
) -> Incident:
    start = day + window * WINDOW
    category, flow, error_class = problem_id.split(":")
    return Incident(
        problem_id=problem_id,
        category=category,
        flow=flow,
        error_class=error_class,
        severity=severity,
        window_start=start,
        window_end=start + WINDOW,
        namespace=namespace,
        workload_kind="Deployment",
        workload_name=workload,
        count=count,
        first_seen=start + timedelta(minutes=1),
        last_seen=start + timedelta(minutes=14),
        samples=[sample],
        fingerprints={"a1b2c3d4e5f60718": template},
        trace_ids=["4bf92f3577b34da6a3ce929d0e0e4736"],
        apps=[workload],
    )


def peak(scope_id: str = "cards", window: int = 0, observed: float = 120.0) -> Peak:
    start = DAY0 + window * WINDOW
    return Peak(
        "spike", "namespace", scope_id, start, start + WINDOW, observed, 10.0, observed / 10.0, None, scope_id
    )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/state/analyzer.db"


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    """The store of the tests below; tests/integration/test_store_postgres.py reruns them on PostgreSQL."""
    with Store.from_url(sqlite_url) as opened:
        yield opened


# --- schema ----------------------------------------------------------------------------------


def test_sqlite_store_creates_its_folder_and_schema(sqlite_url: str) -> None:
    with Store.from_url(sqlite_url):
        pass
    engine = sa.create_engine(sqlite_url)
    tables = set(sa.inspect(engine).get_table_names())
    with engine.connect() as conn:
        version = conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
    engine.dispose()
    assert {"runs", "run_steps", "windows", "incidents", "peaks", "problems", "problem_days"} <= tables
    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_reopening_a_migrated_database_keeps_its_data(sqlite_url: str) -> None:
    with Store.from_url(sqlite_url) as first:
        first.replace_range(DAY0, DAY0 + WINDOW, [incident()], [], None, "regular_phase")
    with Store.from_url(sqlite_url) as again:
        assert again.last_processed_window() == DAY0


def test_schema_revision_is_the_newest_migration() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == SCHEMA_REVISION


def test_an_up_to_date_sqlite_store_opens_without_migrating(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Store.from_url(sqlite_url).close()

    def refuse(self: Store, role: str | None = None) -> None:
        raise AssertionError("migrated again")

    monkeypatch.setattr(Store, "migrate", refuse)
    with Store.from_url(sqlite_url) as again:
        assert again.last_processed_window() is None


def test_a_sqlite_store_behind_the_newest_schema_is_migrated_when_opened(sqlite_url: str) -> None:
    with Store.from_url(sqlite_url, migrate=False) as old, old.engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    with Store.from_url(sqlite_url) as opened:
        tables = set(sa.inspect(opened.engine).get_table_names())
        with opened.engine.connect() as conn:
            version = conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
    assert "outbox" in tables
    assert version == SCHEMA_REVISION


def test_in_memory_store_works_for_dry_runs() -> None:
    with Store.from_url("sqlite://") as memory:
        memory.replace_range(DAY0, DAY0 + WINDOW, [incident()], [], None, "regular_phase")
        assert [i.count for i in memory.incidents_between(DAY0, DAY0 + WINDOW)] == [5]
        with memory.phase_lock("backfill"), pytest.raises(LockHeld), memory.phase_lock("backfill"):
            pass


# --- replace_range ---------------------------------------------------------------------------


def test_replacing_a_range_twice_leaves_the_same_database(store: Store) -> None:
    day = [incident(window=w, namespace=ns) for w in range(4) for ns in ("cards", "payments")]
    store.replace_range(DAY0, DAY0 + timedelta(hours=1), day, [peak()], "run-1", "backfill")
    first = store.snapshot()
    result = store.replace_range(DAY0, DAY0 + timedelta(hours=1), day, [peak()], "run-2", "backfill")
    assert store.snapshot() == first
    assert (result.incidents_saved, result.peaks_saved, result.problems_updated) == (8, 1, 1)
    assert len(first["incidents"]) == 8


def test_replacing_a_range_with_other_content_removes_the_old_rows(store: Store) -> None:
    old = "DATABASE:card_servicing:connection_pool"
    new = "AUTH:card_opening:access_denied"
    store.replace_range(
        DAY0, DAY0 + timedelta(hours=1), [incident(old, 0), incident(old, 1)], [peak()], None, "backfill"
    )
    result = store.replace_range(DAY0, DAY0 + timedelta(hours=1), [incident(new, 2)], [], None, "backfill")

    assert [
        (i.problem_id, i.window_start) for i in store.incidents_between(DAY0, DAY0 + timedelta(days=1))
    ] == [(new, DAY0 + 2 * WINDOW)]
    assert store.peaks_between(DAY0, DAY0 + timedelta(days=1)) == []
    assert [p.problem_id for p in store.problems()] == [new]  # the old problem has no incidents left
    assert result.problems_updated == 2


def test_a_range_outside_is_left_alone(store: Store) -> None:
    store.replace_range(
        DAY0, DAY0 + 2 * WINDOW, [incident(window=0), incident(window=1)], [], None, "backfill"
    )
    store.replace_range(DAY0 + WINDOW, DAY0 + 2 * WINDOW, [], [], None, "regular_phase")
    assert [i.window_start for i in store.incidents_between(DAY0, DAY0 + timedelta(days=1))] == [DAY0]
    assert store.problems()[0].total_count == 5


def test_problems_are_recomputed_from_all_incidents(store: Store) -> None:
    pid = "DATABASE:card_servicing:connection_pool"
    day1 = DAY0 + timedelta(days=1)
    store.replace_range(
        DAY0,
        DAY0 + timedelta(days=1),
        [
            incident(pid, 0, "cards", count=3, template="Connection to <HOST> refused"),
            incident(
                pid,
                5,
                "payments",
                "pay-worker",
                count=4,
                sample="pool exhausted",
                template="Pool <NUM> exhausted",
            ),
        ],
        [],
        None,
        "backfill",
    )
    store.replace_range(
        day1,
        day1 + timedelta(days=1),
        [incident(pid, 2, count=20, severity="critical", day=day1)],
        [],
        None,
        "backfill",
    )

    (problem,) = store.problems([pid])
    assert problem.total_count == 27
    assert problem.first_seen == DAY0 + timedelta(minutes=1)
    assert problem.last_seen == day1 + 2 * WINDOW + timedelta(minutes=14)
    assert problem.namespaces == ["cards", "payments"]
    assert problem.workloads == ["Deployment/cards/card-api", "Deployment/payments/pay-worker"]
    assert problem.templates == ["Connection to <HOST> refused", "Pool <NUM> exhausted"]  # by events, 23 vs 4
    assert problem.severity == "critical"  # the newest incident's classification
    assert problem.sample == "Connection to db.example.com refused"

    # Re-running the first day with less leaves the totals as if only that had ever been written.
    store.replace_range(DAY0, DAY0 + timedelta(days=1), [incident(pid, 0, count=1)], [], None, "backfill")
    (problem,) = store.problems([pid])
    assert problem.total_count == 21
    assert problem.namespaces == ["cards"]
    assert problem.templates == ["Connection to <HOST> refused"]


def test_windows_of_the_range_are_marked_processed(store: Store) -> None:
    assert store.last_processed_window() is None
    store.replace_range(DAY0, DAY0 + timedelta(hours=1), [], [], "run-1", "regular_phase")
    assert store.processed_windows(DAY0, DAY0 + timedelta(days=1)) == {DAY0 + n * WINDOW for n in range(4)}
    assert store.processed_windows(DAY0 + WINDOW, DAY0 + 2 * WINDOW) == {DAY0 + WINDOW}
    assert store.last_processed_window() == DAY0 + 3 * WINDOW
    assert store.last_processed_window().tzinfo is not None


def test_incidents_and_peaks_read_back_as_written(store: Store) -> None:
    written = incident(window=3)
    store.replace_range(DAY0, DAY0 + timedelta(hours=1), [written], [peak(window=3)], None, "backfill")
    (read,) = store.incidents_between(DAY0, DAY0 + timedelta(hours=1))
    assert read == written
    assert read.first_seen.tzinfo is not None and read.first_seen.utcoffset() == timedelta(0)
    assert store.peaks_between(DAY0, DAY0 + timedelta(hours=1)) == [peak(window=3)]


@pytest.mark.parametrize(
    ("start", "end", "incidents"),
    [
        (DAY0 + timedelta(minutes=5), DAY0 + WINDOW, []),  # not aligned
        (DAY0 + WINDOW, DAY0, []),  # empty
        (DAY0, DAY0 + WINDOW, [incident(window=1)]),  # an incident outside the range
        (DAY0, DAY0 + WINDOW, [incident(), incident()]),  # a duplicate key
    ],
)
def test_invalid_writes_are_refused_before_anything_changes(
    sqlite_url: str, start: datetime, end: datetime, incidents: list[Incident]
) -> None:
    with Store.from_url(sqlite_url) as store:
        with pytest.raises(ValueError):
            store.replace_range(start, end, incidents, [], None, "backfill")
        assert store.last_processed_window() is None


def test_a_failing_write_leaves_the_previous_state(store: Store) -> None:
    store.replace_range(DAY0, DAY0 + WINDOW, [incident()], [], None, "backfill")
    before = store.snapshot()
    unserialisable = incident()
    unserialisable.apps = [object()]  # fails inside the transaction, after the delete
    with pytest.raises((TypeError, sa.exc.StatementError)):  # the JSON error, as each driver wraps it
        store.replace_range(DAY0, DAY0 + WINDOW, [unserialisable], [], None, "backfill")
    assert store.snapshot() == before


# --- personal data at rest --------------------------------------------------------------------

# Obviously fake: a test card number, a reserved e-mail domain, a made-up password and customer id.
PERSONAL = "charge of card 4111 1111 1111 1111 for user@example.com failed, db password=hunter2"
PERSONAL_VALUES = ("4111 1111 1111 1111", "user@example.com", "hunter2", "CUST-0042")


def _stored_text(store: Store) -> str:
    """Everything log-derived the store holds, as the database has it (not as the reads give it back)."""
    with store.engine.connect() as conn:
        return repr(
            [
                list(conn.execute(sa.text(query)))
                for query in (
                    "SELECT samples, fingerprints FROM incidents",
                    "SELECT sample, templates FROM problem_days",
                    "SELECT sample, templates FROM problems",
                )
            ]
        )


def test_samples_and_templates_are_stored_redacted_keys_and_counts_as_they_are(store: Store) -> None:
    written = incident(sample=PERSONAL, template="customer CUST-0042 not found", count=7)
    configured = Store(store.engine, redact=Redactor([r"CUST-\d+"]).redact)  # REDACT_PATTERNS apply too
    configured.replace_range(DAY0, DAY0 + WINDOW, [written], [], None, "backfill")

    stored = _stored_text(store)
    assert not [value for value in PERSONAL_VALUES if value in stored]
    assert "[CARD]" in stored and "[EMAIL]" in stored and "[SECRET]" in stored and "[REDACTED]" in stored
    (read,) = store.incidents_between(DAY0, DAY0 + WINDOW)
    assert read.samples == ["charge of card [CARD] for [EMAIL] failed, db password=[SECRET]"]
    assert read.fingerprints == {"a1b2c3d4e5f60718": "customer [REDACTED] not found"}
    assert (read.problem_id, read.count, read.trace_ids) == (written.problem_id, 7, written.trace_ids)
    assert store.problems()[0].sample == read.samples[0]
    assert written.samples == [PERSONAL]  # the caller's incident (reported from) is left as it is


def test_samples_are_stored_as_logged_only_when_asked(store: Store) -> None:
    raw = Store(store.engine, redact=None)  # STORE_RAW_SAMPLES=true
    raw.replace_range(DAY0, DAY0 + WINDOW, [incident(sample=PERSONAL)], [], None, "backfill")
    stored = _stored_text(store)
    assert "4111 1111 1111 1111" in stored and "user@example.com" in stored and "hunter2" in stored


# --- reads for detection ---------------------------------------------------------------------


def test_problem_states_only_know_windows_before_the_cut(store: Store) -> None:
    early, late = "DATABASE:card_servicing:connection_pool", "AUTH:card_opening:access_denied"
    day1 = DAY0 + timedelta(days=1)
    store.replace_range(DAY0, day1, [incident(early, 10)], [], None, "backfill")
    store.replace_range(
        day1,
        day1 + timedelta(days=1),
        [incident(early, 4, day=day1), incident(late, 8, day=day1)],
        [],
        None,
        "backfill",
    )

    states = store.problem_states(before=day1 + 8 * WINDOW)
    assert set(states) == {early}
    assert states[early].first_seen == DAY0 + 10 * WINDOW + timedelta(minutes=1)
    assert states[early].last_seen == day1 + 4 * WINDOW + timedelta(minutes=14)
    assert states[early].triage == "open"
    assert set(store.problem_states(before=day1 + 9 * WINDOW)) == {early, late}


def test_history_counts_per_window_per_problem_and_namespace(store: Store) -> None:
    pid = "DATABASE:card_servicing:connection_pool"
    store.replace_range(
        DAY0,
        DAY0 + timedelta(hours=1),
        [
            incident(pid, 0, "cards", count=2),
            incident(pid, 0, "payments", count=3),
            incident(pid, 2, "cards", count=7),
        ],
        [],
        None,
        "backfill",
    )
    history = store.history(DAY0, DAY0 + 2 * WINDOW)
    assert history.problem_counts == {pid: {DAY0: 5}}
    assert history.namespace_counts == {"cards": {DAY0: 2}, "payments": {DAY0: 3}}


# --- runs --------------------------------------------------------------------------------------


def test_runs_and_steps_are_recorded_and_found_by_id_job_or_pod(store: Store) -> None:
    started = datetime(2024, 5, 2, 9, 0, tzinfo=UTC)
    older = store.start_run("regular_phase", {"window": 15}, None, "regular-phase-28601234-abcde")
    run_id = store.start_run(
        "backfill", {"days": 1, "day": started}, "backfill-28601235", "backfill-28601235-x7k2p"
    )
    store.record_step(
        run_id, "fetch", "succeeded", started, started + timedelta(seconds=3), {"events": 12}, None
    )
    store.record_step(run_id, "publish", "failed", started, started + timedelta(seconds=4), {}, "HTTP 503")
    store.finish_run(run_id, "partial", {"incidents_saved": 4}, "publish failed")

    for ref in (run_id, "backfill-28601235", "backfill-28601235-x7k2p"):
        (found,) = store.find_runs(ref)
        assert found.id == run_id
    assert found.status == "partial" and found.finished_at is not None
    assert found.args == {"days": 1, "day": "2024-05-02T09:00:00+00:00"}
    assert found.counts == {"incidents_saved": 4}
    assert [(s.step, s.status, s.error) for s in found.steps] == [
        ("fetch", "succeeded", None),
        ("publish", "failed", "HTTP 503"),
    ]
    assert store.find_runs("no-such-run") == []
    assert [r.id for r in store.recent_runs()] == [run_id, older]
    assert [r.id for r in store.recent_runs(phase="regular_phase")] == [older]
    assert len(store.recent_runs(limit=1)) == 1


# --- retention ---------------------------------------------------------------------------------


def _outbox_item(status: str, created_at: datetime) -> dict[str, object]:
    return {
        "channel": "teams",
        "kind": "alert",
        "status": status,
        "created_at": created_at,
        "attempts": 1,
        "payload": {},
        "subject": {},
    }


def test_retention_removes_what_is_older_than_the_cutoff_and_keeps_first_sightings(store: Store) -> None:
    recurring, gone = "DATABASE:card_servicing:connection_pool", "AUTH:card_opening:access_denied"
    old, recent = DAY0, DAY0 + timedelta(days=10)
    cutoff = DAY0 + timedelta(days=5)
    store.replace_range(
        old,
        old + timedelta(days=1),
        [incident(recurring, 0, sample="old sample"), incident(gone, 1, count=2, sample="only sample")],
        [peak(window=0)],
        None,
        "backfill",
    )
    recent_day = [incident(recurring, 3, count=4, sample="recent sample", day=recent)]
    store.replace_range(recent, recent + timedelta(days=1), recent_day, [], None, "backfill")
    old_run = store.start_run("backfill", {}, "backfill-old", None)
    store.record_step(old_run, "fetch", "succeeded", old, old, {}, None)
    new_run = store.start_run("backfill", {}, "backfill-new", None)
    store.record_step(new_run, "fetch", "succeeded", recent, recent, {}, None)
    with store.engine.begin() as conn:
        conn.execute(sa.update(runs_table).where(runs_table.c.id == old_run).values(started_at=old))
        conn.execute(
            sa.insert(outbox_table),
            [
                _outbox_item("delivered", old),
                _outbox_item("pending", old),  # never sent yet: kept, however old
                _outbox_item("delivered", recent),
            ],
        )

    deleted = store.purge_before(cutoff)

    assert deleted == {
        "incidents": 2,
        "peaks": 1,
        "windows": 96,
        "run_steps": 1,
        "runs": 1,
        "outbox": 1,
        "problem_day_samples": 2,
    }
    assert [i.window_start for i in store.incidents_between(old, recent + timedelta(days=1))] == [
        recent + 3 * WINDOW
    ]
    assert store.peaks_between(old, recent + timedelta(days=1)) == []
    assert store.processed_windows(old, recent + timedelta(days=1)) == {
        recent + n * WINDOW for n in range(96)
    }
    assert store.find_runs(old_run) == [] and store.find_runs(new_run) != []
    with store.engine.connect() as conn:
        assert list(conn.execute(sa.select(run_steps_table.c.run_id))) == [(new_run,)]
        outbox = sorted(conn.execute(sa.select(outbox_table.c.status, outbox_table.c.created_at)))
        old_samples = conn.scalars(
            sa.select(problem_days_table.c.sample).where(problem_days_table.c.day < cutoff)
        )
        assert list(old_samples) == ["", ""]
    assert outbox == [("delivered", recent), ("pending", old)]

    # The problem first seen before the cutoff is still known from then: recurring, not new.
    states = store.problem_states(before=recent + timedelta(days=1))
    assert states[recurring].first_seen == old + timedelta(minutes=1)
    assert states[gone].last_seen == old + WINDOW + timedelta(minutes=14)
    # ... and keeps it when its recent day is written again (the problems row is rebuilt then).
    store.replace_range(recent, recent + timedelta(days=1), recent_day, [], None, "backfill")
    problems = {p.problem_id: p for p in store.problems()}
    assert (problems[recurring].first_seen, problems[recurring].total_count) == (
        old + timedelta(minutes=1),
        9,
    )
    assert problems[recurring].sample == "recent sample"
    assert (problems[gone].first_seen, problems[gone].total_count) == (old + WINDOW + timedelta(minutes=1), 2)
    assert problems[gone].sample == "only sample"  # each problem keeps the one sample of its row
    assert store.purge_before(cutoff) == dict.fromkeys(deleted, 0)
    assert store.purge_before(recent + timedelta(days=1))["problem_day_samples"] == 1  # the next day


# --- the phase lock ----------------------------------------------------------------------------


def test_a_second_store_cannot_take_a_held_phase_lock(store: Store) -> None:
    other = Store.from_url(store._engine.url.render_as_string(hide_password=False))
    try:
        with store.phase_lock("backfill"):
            with pytest.raises(LockHeld) as held, other.phase_lock("backfill"):
                pass
            assert held.value.phase == "backfill"
            with other.phase_lock("regular_phase"):  # another phase is not blocked
                pass
        with other.phase_lock("backfill"):  # released
            pass
    finally:
        other.close()


def test_taking_the_lock_marks_runs_left_running_as_abandoned(store: Store) -> None:
    killed = store.start_run("backfill", {}, "backfill-1", None)
    with store.phase_lock("backfill"):
        (run,) = store.find_runs(killed)
    assert run.status == "failed" and "abandoned" in run.error


def _hold_lock(
    url: str,
    phase: str,
    locked: multiprocessing.synchronize.Event,
    release: multiprocessing.synchronize.Event,
) -> None:
    with Store.from_url(url) as store, store.phase_lock(phase):
        locked.set()
        release.wait(10)


def test_the_phase_lock_holds_across_processes(sqlite_url: str) -> None:
    Store.from_url(sqlite_url).close()
    ctx = multiprocessing.get_context("spawn")
    locked, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(sqlite_url, "regular_phase", locked, release))
    holder.start()
    try:
        assert locked.wait(20)
        with Store.from_url(sqlite_url) as store:
            with pytest.raises(LockHeld), store.phase_lock("regular_phase"):
                pass
            release.set()
            holder.join(20)
            with store.phase_lock("regular_phase"):
                pass
    finally:
        release.set()
        holder.join(20)
    assert holder.exitcode == 0


# --- errors and secrets ------------------------------------------------------------------------


def test_an_unreachable_database_names_the_host_not_the_password() -> None:
    with pytest.raises(StoreUnavailable) as unavailable:
        Store.from_url("postgresql+psycopg://u:secret@127.0.0.1:1/db")
    message = str(unavailable.value)
    assert "127.0.0.1" in message
    assert "secret" not in message


def test_the_store_never_shows_its_password() -> None:
    store = Store(sa.create_engine("postgresql+psycopg://u:secret@db.example.com/analyzer"))
    assert "secret" not in repr(store) and "secret" not in store.url
    assert "db.example.com" in repr(store)


def recorded_run(store: Store, run_id: str, started_at: datetime) -> None:
    """A finished run with a chosen id (start_run draws a random one)."""
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(runs_table).values(
                id=run_id,
                phase="regular_phase",
                status="succeeded",
                started_at=started_at,
                args={},
                counts={},
            )
        )


def test_the_first_characters_of_a_run_id_find_the_run(store: Store) -> None:
    started = datetime(2024, 5, 2, 9, 0, tzinfo=UTC)
    recorded_run(store, "3f2a9c10-5d1e-4c7b-9a8f-0e1d2c3b4a59", started)
    recorded_run(store, "3f2a77b1-0c4d-4e5f-8a9b-1c2d3e4f5a6b", started + timedelta(minutes=15))
    recorded_run(store, "9d0e1f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a", started + timedelta(minutes=30))

    for ref in ("3f2a9c10", "3F2A9C10"):
        assert [r.id for r in store.find_runs(ref)] == ["3f2a9c10-5d1e-4c7b-9a8f-0e1d2c3b4a59"]
    assert [r.id for r in store.find_runs("3f2a")] == [  # ambiguous: every candidate, newest first
        "3f2a77b1-0c4d-4e5f-8a9b-1c2d3e4f5a6b",
        "3f2a9c10-5d1e-4c7b-9a8f-0e1d2c3b4a59",
    ]
    assert len(store.find_runs("", limit=2)) == 2
    assert store.find_runs("3f2a%") == [] and store.find_runs("3f2a_") == []  # no LIKE wildcards
