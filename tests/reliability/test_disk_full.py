"""A full disk under the output folder: the analysis is stored, the report step fails with a clear
"no space left on <dir>" and exit 1, and no truncated report is left behind. Uses a tiny tmpfs
(needs root, as the test machines and the CI container run)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import BACKFILL_NOW, FIGURES, DemoLogs
from .harness import differences, run_cli, sqlite_place


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs with no space left."""
    mount_point = tmp_path / "full"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)], check=True)
    try:
        filler = os.open(mount_point / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(filler, b"\0" * 4096):
                pass
        except OSError:
            pass  # full
        finally:
            os.close(filler)
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_a_full_output_disk_fails_the_report_clearly_and_keeps_the_analysis(
    demo_logs: DemoLogs, full_disk: Path, tmp_path: Path
) -> None:
    source = {"LOG_FILE": str(demo_logs.path)}
    args = ["backfill", "--days", "1", "--now", BACKFILL_NOW, "--output"]
    reference = sqlite_place(tmp_path / "reference")
    env = reference.env(source, BASELINE_DAYS="0")
    assert run_cli([*args, str(reference.reports)], env, reference.work).exit_code == 0

    place = sqlite_place(tmp_path / "run")
    output = full_disk / "reports"
    failed = run_cli([*args, str(full_disk)], place.env(source, BASELINE_DAYS="0"), place.work)
    FIGURES["faults injected"] += 1

    assert failed.exit_code == 1, failed.output
    assert f"no space left on {full_disk}" in failed.output, failed.output
    assert "Traceback" not in failed.output, failed.output
    assert not list(full_disk.glob("problem_report_*")) and not list(full_disk.glob(".problem_report_*"))
    assert not output.exists()
    # Everything but the reports is stored: database, registry, exports.
    assert differences(reference.state(with_report=False), place.state(with_report=False)) == []
