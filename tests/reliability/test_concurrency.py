"""Runs at the same time: two runs of one phase never overlap (the second exits 0 saying another run
holds the lock), and a backfill beside a regular run leaves the shared state (problems table,
registry) as running them one after the other does."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import BACKFILL_NOW, FIGURES, Databases, DemoLogs
from .harness import LOCK_HELD, Hold, Place, run_cli, sqlite_place, start_cli, wait_for

REGULAR_NOW = "2026-02-09T03:07:00"
SETTINGS = {"BASELINE_DAYS": "0"}  # no baseline learning: its skip rule depends on which run stores first


def backfill_args(place: Place) -> list[str]:
    return ["backfill", "--days", "1", "--output", str(place.reports), "--now", BACKFILL_NOW]


def regular_args(place: Place) -> list[str]:
    return ["regular-phase", "--window", "120", "--now", REGULAR_NOW]


def assert_second_run_of_a_phase_waits_its_turn(
    place: Place, source: dict[str, str], args: list[str]
) -> None:
    env = place.env(source, **SETTINGS)
    gate = place.root / "gate"
    first = start_cli(args, env, place.work, hold=Hold("step", 1, gate))
    wait_for(gate.with_name("gate.paused"))  # the first run holds the lock, mid-run
    second = run_cli(args, env, place.work)
    gate.touch()
    FIGURES["concurrent runs"] += 2
    assert second.exit_code == 0, second.output
    assert LOCK_HELD in second.output
    assert "Run id" not in second.output  # it did nothing
    done = first.wait()
    assert done.exit_code == 0, done.output
    assert "Run id" in done.output


@pytest.mark.parametrize("phase", ["backfill", "regular"])
def test_a_second_run_of_the_same_phase_exits_cleanly_on_sqlite(
    phase: str, demo_logs: DemoLogs, tmp_path: Path
) -> None:
    place = sqlite_place(tmp_path)
    args = backfill_args(place) if phase == "backfill" else regular_args(place)
    assert_second_run_of_a_phase_waits_its_turn(place, {"LOG_FILE": str(demo_logs.path)}, args)


@pytest.mark.postgres
def test_a_second_run_of_the_same_phase_exits_cleanly_on_postgresql(
    demo_logs: DemoLogs, databases: Databases, tmp_path: Path
) -> None:
    place = Place(tmp_path, databases.new())
    assert_second_run_of_a_phase_waits_its_turn(place, {"LOG_FILE": str(demo_logs.path)}, regular_args(place))


def test_two_runs_started_at_once_leave_the_state_of_one_run(demo_logs: DemoLogs, tmp_path: Path) -> None:
    source = {"LOG_FILE": str(demo_logs.path)}
    alone = sqlite_place(tmp_path / "alone")
    assert run_cli(regular_args(alone), alone.env(source, **SETTINGS), alone.work).exit_code == 0
    together = sqlite_place(tmp_path / "together")
    env = together.env(source, **SETTINGS)
    runs = [start_cli(regular_args(together), env, together.work) for _ in range(2)]
    ended = [run.wait() for run in runs]
    FIGURES["concurrent runs"] += 2
    assert [e.exit_code for e in ended] == [0, 0], [e.output for e in ended]
    # Either the second found the lock taken, or it started after the first finished and found
    # nothing left to do; both leave the state of one run.
    assert together.state(with_report=False).database == alone.state(with_report=False).database


def test_a_backfill_beside_a_regular_run_leaves_the_state_of_running_them_in_turn(
    demo_logs: DemoLogs, tmp_path: Path
) -> None:
    source = {"LOG_FILE": str(demo_logs.path)}
    in_turn = sqlite_place(tmp_path / "in-turn")
    env = in_turn.env(source, **SETTINGS)
    assert run_cli(backfill_args(in_turn), env, in_turn.work).exit_code == 0
    assert run_cli(regular_args(in_turn), env, in_turn.work).exit_code == 0

    at_once = sqlite_place(tmp_path / "at-once")
    env = at_once.env(source, **SETTINGS)
    runs = [
        start_cli(backfill_args(at_once), env, at_once.work),
        start_cli(regular_args(at_once), env, at_once.work),
    ]
    ended = [run.wait() for run in runs]
    FIGURES["concurrent runs"] += 2
    assert [e.exit_code for e in ended] == [0, 0], [e.output[-2000:] for e in ended]

    expected, actual = in_turn.state(), at_once.state()
    # Both phases wrote the incident day's first windows; whichever wrote last, the rows and the
    # problems folded from them are the same. Peaks depend on each run's baseline, so they are
    # compared with the registry instead: every stored peak is in it.
    for table in ("windows", "incidents", "problem_days", "problems"):
        assert actual.database[table] == expected.database[table], table
    assert actual.registry["problems.yaml"] == expected.registry["problems.yaml"]
    registered = set(actual.registry["peaks.yaml"])
    stored = {
        f"{p['kind']}:{p['scope']}:{p['scope_id']}@{p['window_start'][:19]}Z"
        for p in actual.database["peaks"]
    }
    assert stored <= registered
