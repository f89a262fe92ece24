"""Registry files people broke or mistyped: the run reports the file and line, leaves what they wrote
as it is (the last good version stays in `problems.yaml.bak`), and the analysis goes on from the
database."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import BACKFILL_NOW, FIGURES, DemoLogs
from .harness import CliRun, Place, run_cli, sqlite_place


def backfill(place: Place, demo_logs: DemoLogs, day: str) -> CliRun:
    env = place.env({"LOG_FILE": str(demo_logs.path)}, BASELINE_DAYS="0")
    args = ["backfill", "--from", day, "--to", day, "--output", str(place.reports), "--now", BACKFILL_NOW]
    return run_cli(args, env, place.work)


def test_a_registry_file_with_a_yaml_error_is_reported_and_left_untouched(
    demo_logs: DemoLogs, tmp_path: Path
) -> None:
    place = sqlite_place(tmp_path)
    assert backfill(place, demo_logs, "2026-02-08").exit_code == 0
    assert backfill(place, demo_logs, "2026-02-09").exit_code == 0
    stored = place.state(with_report=False).database
    problems = place.registry / "problems.yaml"
    backup = problems.with_name("problems.yaml.bak")
    good_backup = backup.read_bytes()
    lines = problems.read_text(encoding="utf-8").splitlines(keepends=True)
    broken_line = 8  # someone's edit: a colon in an unquoted value
    lines.insert(broken_line - 1, "  owner: payments: team\n")
    problems.write_text("".join(lines), encoding="utf-8")
    broken = problems.read_bytes()
    FIGURES["faults injected"] += 1

    again = backfill(place, demo_logs, "2026-02-09")

    assert again.exit_code == 0, again.output
    assert f"problems.yaml line {broken_line}: invalid YAML" in again.output, again.output
    assert problems.read_bytes() == broken
    assert backup.read_bytes() == good_backup
    assert place.state(with_report=False).database == stored  # the re-run day replaced itself
    assert list(place.reports.glob("problem_report_*.json"))
    FIGURES["runs recovered"] += 1


def test_an_unknown_triage_is_kept_as_written_and_does_not_silence_the_problem(
    demo_logs: DemoLogs, tmp_path: Path
) -> None:
    place = sqlite_place(tmp_path)
    assert backfill(place, demo_logs, "2026-02-09").exit_code == 0
    problems = place.registry / "problems.yaml"
    text = problems.read_text(encoding="utf-8")
    report = json.loads(next(place.reports.glob("problem_report_*.json")).read_text(encoding="utf-8"))
    problem_id = report["problems"][0]["id"]
    entry = f"{problem_id}:\n  triage: open\n"
    assert entry in text
    problems.write_text(text.replace(entry, f"{problem_id}:\n  triage: ignore  # meant: ignored\n"))
    edited = problems.read_bytes()
    FIGURES["faults injected"] += 1

    again = backfill(place, demo_logs, "2026-02-09")

    assert again.exit_code == 0, again.output
    assert problems.read_bytes() == edited  # the same facts: nothing to rewrite, the typo stays
    report = json.loads(next(place.reports.glob("problem_report_*.json")).read_text(encoding="utf-8"))
    (shown,) = [p for p in report["problems"] if p["id"] == problem_id]
    assert shown["triage"] == "open" and "unknown triage 'ignore'" in again.output
    FIGURES["runs recovered"] += 1
