"""Tests for core/launch.py: the `log-analyzer fingerprint` filter starts without the pipeline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.fingerprint import fingerprint

ROOT = Path(__file__).resolve().parents[1]
RUN = "import sys; from core.launch import main; sys.argv = ['log-analyzer', *sys.argv[1:]]; main()"


def _run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-c", RUN, *args], input=stdin, capture_output=True, cwd=ROOT)


def test_fingerprint_filter_prints_one_key_per_line_without_loading_the_pipeline() -> None:
    # at exit, stderr says whether core.cli (and with it the pipeline's modules) was imported
    loaded = "import atexit; atexit.register(lambda: print('core.cli' in sys.modules, file=sys.stderr)); "
    done = subprocess.run(
        [sys.executable, "-c", "import sys; " + loaded + RUN, "fingerprint"],
        input=b"Disk 1 failed\r\nFan stopped\n\xff bad byte\n",
        capture_output=True,
        cwd=ROOT,
        check=True,
    )
    keys = [fingerprint(m).key for m in ("Disk 7 failed", "Fan stopped", "\ufffd bad byte")]
    assert done.stdout.decode().splitlines() == keys
    assert done.stderr.decode().strip() == "False"


def test_other_commands_go_to_the_cli() -> None:
    done = _run("--help")
    assert done.returncode == 0
    assert b"backfill" in done.stdout and b"fingerprint" in done.stdout
