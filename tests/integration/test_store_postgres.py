"""core/store.py on the real PostgreSQL (needs PostgreSQL): the store tests of tests/test_store.py run
here against a fresh database migrated by the DDL user, plus what only the PostgreSQL path has (the
DDL role owning the schema, COPY bulk writes)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

# Imported so that pytest collects them here too, with this module's PostgreSQL `store` fixture
# (tests/ is on sys.path: pytest puts the rootdir of the `integration` package there).
from test_store import (  # noqa: F401
    DAY0,
    incident,
    peak,
    test_a_failing_write_leaves_the_previous_state,
    test_a_range_outside_is_left_alone,
    test_a_second_store_cannot_take_a_held_phase_lock,
    test_history_counts_per_window_per_problem_and_namespace,
    test_incidents_and_peaks_read_back_as_written,
    test_problem_states_only_know_windows_before_the_cut,
    test_problems_are_recomputed_from_all_incidents,
    test_replacing_a_range_twice_leaves_the_same_database,
    test_replacing_a_range_with_other_content_removes_the_old_rows,
    test_retention_removes_what_is_older_than_the_cutoff_and_keeps_first_sightings,
    test_runs_and_steps_are_recorded_and_found_by_id_job_or_pod,
    test_samples_and_templates_are_stored_redacted_keys_and_counts_as_they_are,
    test_samples_are_stored_as_logged_only_when_asked,
    test_taking_the_lock_marks_runs_left_running_as_abandoned,
    test_the_first_characters_of_a_run_id_find_the_run,
    test_windows_of_the_range_are_marked_processed,
)

from core.model import WINDOW
from core.store import Store, StoreError

from .conftest import DDL_ROLE, PostgresUrls


@pytest.fixture
def store(postgres_urls: PostgresUrls) -> Iterator[Store]:
    with Store.from_url(postgres_urls.ddl_url, migrate=False) as ddl:
        ddl.migrate(role=DDL_ROLE)
    with Store.from_url(postgres_urls.app_url) as opened:
        yield opened


def test_migrations_under_the_ddl_role_give_the_role_the_tables(postgres_urls: PostgresUrls) -> None:
    with Store.from_url(postgres_urls.ddl_url, migrate=False) as ddl:
        ddl.migrate(role=DDL_ROLE)
    engine = sa.create_engine(postgres_urls.app_url)
    with engine.connect() as conn:
        owners = set(conn.scalars(sa.text("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")))
    engine.dispose()
    assert owners == {DDL_ROLE}


# What COPY's text format must escape, and what a log line may well contain.
AWKWARD = [
    "tab\there, newline\nthere, carriage\rreturn",
    r"C:\temp\new \N is not NULL \\ backslashes",
    "quotes \"double\" and 'single', a comma, a | pipe",
    "unicode: Zürich, 東京, emoji 🚨, combining é",
    "",
]


def test_a_bulk_written_day_reads_back_exactly_as_on_sqlite(store: Store, tmp_path: Path) -> None:
    incidents = [
        incident(
            problem_id=f"APPLICATION:card_servicing:error_{p}",
            window=w,
            namespace=f"ns-{p % 3}",
            count=1 + (w * p) % 7,
            sample=f"{AWKWARD[(w + p) % len(AWKWARD)]} #{w}",
            template=AWKWARD[p % len(AWKWARD)] or "<EMPTY>",
        )
        for p in range(25)
        for w in range(96)
    ]
    peaks = [peak(scope_id=f"ns-{n}", window=n * 7) for n in range(3)]
    day = (DAY0, DAY0 + timedelta(days=1))
    with Store.from_url(f"sqlite:///{tmp_path / 'reference.db'}") as sqlite:
        for target in (store, sqlite):
            written = target.replace_range(*day, incidents, peaks, "run-1", "backfill")
            assert (written.incidents_saved, written.peaks_saved) == (25 * 96, 3)
        assert store.snapshot() == sqlite.snapshot()
        assert store.incidents_between(*day) == sqlite.incidents_between(*day)
        assert store.problems() == sqlite.problems()
    assert len(store.processed_windows(*day)) == 24 * 60 // (WINDOW.seconds // 60)


def test_a_refused_bulk_write_quotes_no_log_data_and_leaves_the_previous_state(store: Store) -> None:
    store.replace_range(DAY0, DAY0 + WINDOW, [incident()], [], None, "backfill")
    before = store.snapshot()
    # Longer than the column allows: PostgreSQL's error context would quote the whole value.
    too_long = incident(workload="card 4111 1111 1111 1111 of user@example.com " * 10)
    with pytest.raises(StoreError) as refused:
        store.replace_range(DAY0, DAY0 + WINDOW, [too_long], [], None, "backfill")
    assert "value too long" in str(refused.value)
    assert "4111" not in str(refused.value) and refused.value.__cause__ is None
    assert store.snapshot() == before
