#!/usr/bin/env python3
"""The form the CronJob calls: `python3 scripts/backfill.py ...`, the same as `backfill`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.cli import backfill_main  # noqa: E402

if __name__ == "__main__":
    backfill_main()
