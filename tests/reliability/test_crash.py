"""Crash anywhere: a run SIGKILLed at a step boundary or inside a write, followed by a normal run,
leaves the database, the registry files, the exports and the report equal to those of an
undisturbed run over the same data. Embedded path (NDJSON + SQLite) for many kill points,
Elasticsearch + PostgreSQL for a representative subset."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.store import Store

from .conftest import BACKFILL_NOW, FIGURES, Databases, DemoLogs
from .harness import LOCK_HELD, CliRun, KillPoint, Place, State, differences, records, run_cli, sqlite_place

REGULAR_NOW = "2026-02-09T03:07:00"  # 12 windows to catch up since midnight, a spike among them


@dataclass(frozen=True)
class Scenario:
    """One phase run over a prepared place; `args` gets the place's report folder."""

    name: str
    args: Callable[[Place], list[str]]
    settings: Mapping[str, str]
    with_report: bool


BACKFILL = Scenario(
    "backfill",
    lambda place: ["backfill", "--days", "1", "--output", str(place.reports), "--now", BACKFILL_NOW],
    # Two baseline days, so that a kill between them is a kill point too.
    {"BASELINE_DAYS": "2"},
    with_report=True,
)
REGULAR = Scenario(
    "regular",
    lambda place: ["regular-phase", "--window", "120", "--now", REGULAR_NOW],
    {"BASELINE_DAYS": "1"},
    with_report=False,
)
PREPARE_REGULAR = ["backfill", "--from", "2026-02-08", "--to", "2026-02-08", "--now", BACKFILL_NOW]


def spread(total: int, k: int) -> list[int]:
    """`k` call numbers spread evenly over 1..total (all of them when total ≤ k)."""
    if total <= k:
        return list(range(1, total + 1))
    return sorted({1 + round(i * (total - 1) / (k - 1)) for i in range(k)})


def kill_points(calls: Mapping[str, int], trailing: int) -> list[KillPoint]:
    """Step boundaries (after the first and a middle range, after the last range, i.e. before the
    registry, and after the registry and the report), SQL statements inside the writes (after
    `replace_range`'s deletes, before its commit …) and file writes (a registry file renamed into
    place, a temporary file written but not renamed), spread over the run."""
    steps = calls["step"]
    ranges = steps - trailing  # `trailing` steps follow the ranges: registry (and report)
    after = sorted({1, (ranges + 1) // 2, ranges, steps - 1, steps})
    points = [KillPoint("step", n, after=True) for n in after]
    points.append(KillPoint("step", ranges + 1))  # the registry written, its step not yet recorded
    points += [KillPoint("sql", n) for n in spread(calls["sql"], 4)[1:-1]]
    points.append(KillPoint("replace", 1))
    points.append(KillPoint("fsync", calls["fsync"] // 2))
    return points


def run(scenario: Scenario, place: Place, source: Mapping[str, str], kill: KillPoint | None = None) -> CliRun:
    return run_cli(scenario.args(place), place.env(source, **scenario.settings), place.work, kill=kill)


def recover(
    scenario: Scenario, place: Place, source: Mapping[str, str], kill: KillPoint
) -> tuple[CliRun, State]:
    """Kill a run at `kill`, then run again normally; the state after the second run."""
    killed = run(scenario, place, source, kill)
    assert killed.killed, f"{kill}: the run was not killed:\n{killed.output}"
    again = run(scenario, place, source)
    for _ in range(50):  # PostgreSQL notices the killed session (and frees its lock) within moments
        if LOCK_HELD not in again.output:
            break
        again = run(scenario, place, source)
    return again, place.state(scenario.with_report)


def assert_recovers(
    scenario: Scenario,
    reference: State,
    points: list[KillPoint],
    new_place: Callable[[int], Place],
    source: Mapping[str, str],
) -> None:
    failures = []
    for number, kill in enumerate(points):
        place = new_place(number)
        again, state = recover(scenario, place, source, kill)
        FIGURES["kill points tried"] += 1
        lost = sum(
            len([r for r in rows if r not in state.database.get(table, [])])
            for table, rows in reference.database.items()
        )
        FIGURES["records lost"] += lost
        problems = differences(reference, state)
        if again.exit_code != 0:
            problems.append(f"second run exit {again.exit_code}: {again.output[-500:]}")
        with Store.from_url(place.database_url, migrate=False) as store:
            running = [r.id for r in store.recent_runs(50) if r.status == "running"]
        if running:
            problems.append(f"runs left 'running': {running}")
        if problems:
            failures.append(f"{scenario.name}, killed {kill}: {'; '.join(problems)}")
        else:
            FIGURES["runs recovered"] += 1
    assert not failures, "\n".join(failures)


# --- embedded: NDJSON + SQLite, many kill points ---------------------------------------------------


@pytest.fixture(scope="module")
def regular_start(demo_logs: DemoLogs, tmp_path_factory: pytest.TempPathFactory) -> Place:
    """The day before the incident day backfilled: the regular phase then catches up since midnight."""
    place = sqlite_place(tmp_path_factory.mktemp("regular-start"))
    env = place.env({"LOG_FILE": str(demo_logs.path)}, **REGULAR.settings)
    done = run_cli([*PREPARE_REGULAR, "--output", str(place.reports)], env, place.work)
    assert done.exit_code == 0, done.output
    shutil.rmtree(place.reports)
    return place


def copy_place(start: Place | None, root: Path) -> Place:
    place = sqlite_place(root)
    if start is not None:
        shutil.copytree(start.root, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("work", "*.lock"))
    return place


@pytest.mark.parametrize("scenario", [BACKFILL, REGULAR], ids=lambda s: s.name)
def test_a_run_killed_anywhere_is_completed_by_the_next_run(
    scenario: Scenario, demo_logs: DemoLogs, regular_start: Place, tmp_path: Path
) -> None:
    start = regular_start if scenario is REGULAR else None
    source = {"LOG_FILE": str(demo_logs.path)}
    reference = copy_place(start, tmp_path / "reference")
    undisturbed = run(scenario, reference, source)
    assert undisturbed.exit_code == 0, undisturbed.output
    expected = reference.state(scenario.with_report)
    assert records(expected) > 0 and (expected.report is None or expected.report["problems"])

    points = kill_points(undisturbed.calls, trailing=2 if scenario.with_report else 1)
    assert_recovers(scenario, expected, points, lambda n: copy_place(start, tmp_path / f"kill-{n}"), source)


# --- Elasticsearch + PostgreSQL: a representative subset ---------------------------------------


@pytest.mark.postgres
@pytest.mark.elasticsearch
def test_a_backfill_killed_at_each_step_on_elasticsearch_and_postgresql_is_completed(
    demo_index: str, es_url: str, databases: Databases, tmp_path: Path
) -> None:
    source = {"ES_URL": es_url, "ES_INDEX_PATTERN": demo_index}
    reference = Place(tmp_path / "reference", databases.new())
    undisturbed = run(BACKFILL, reference, source)
    assert undisturbed.exit_code == 0, undisturbed.output
    expected = reference.state()

    # After a baseline day, the day, the registry and the report; and inside the day's
    # replace_range, whose statements come at about 70 % of the run's.
    points = [KillPoint("step", n, after=True) for n in (1, 3, 4, 5)]
    points.append(KillPoint("sql", int(undisturbed.calls["sql"] * 0.7)))
    fresh = lambda n: Place(tmp_path / f"kill-{n}", databases.new())  # noqa: E731
    assert_recovers(BACKFILL, expected, points, fresh, source)
