#!/usr/bin/env python3
"""The form the CronJob calls: `python3 scripts/regular_phase.py ...`, the same as `regular_phase`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.cli import regular_phase_main  # noqa: E402

if __name__ == "__main__":
    regular_phase_main()
