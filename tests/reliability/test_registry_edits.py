"""A registry file people broke: the run reports the file and line, leaves the file as it is (the
last good version stays in `problems.yaml.bak`), and the analysis goes on from the database (exit 0)."""

from __future__ import annotations

from pathlib import Path

from .conftest import BACKFILL_NOW, FIGURES, DemoLogs
from .harness import run_cli, sqlite_place


def test_a_registry_file_with_a_yaml_error_is_reported_and_left_untouched(
    demo_logs: DemoLogs, tmp_path: Path
) -> None:
    place = sqlite_place(tmp_path)
    env = place.env({"LOG_FILE": str(demo_logs.path)}, BASELINE_DAYS="0")

    def backfill(day: str):
        args = ["backfill", "--from", day, "--to", day, "--output", str(place.reports), "--now", BACKFILL_NOW]
        return run_cli(args, env, place.work)

    assert backfill("2026-02-08").exit_code == 0
    assert backfill("2026-02-09").exit_code == 0
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

    again = backfill("2026-02-09")

    assert again.exit_code == 0, again.output
    assert "problems.yaml:" in again.output and "invalid YAML" in again.output, again.output
    reported = int(again.output.split("problems.yaml:", 1)[1].split(":", 1)[0])
    assert reported == broken_line
    assert problems.read_bytes() == broken
    assert backup.read_bytes() == good_backup
    assert place.state(with_report=False).database == stored  # the re-run day replaced itself
    assert list(place.reports.glob("problem_report_*.json"))
    FIGURES["runs recovered"] += 1
