"""The report files: written whole or not at all, named by the UTC time they were generated."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from datetime import datetime
from pathlib import Path

from core.model import (
    utc,
)
from core.report.as_csv import report_to_csv
from core.report.as_json import report_to_dict
from core.report.as_text import report_to_text
from core.report.model import Report


def write_atomic(path: Path, content: str | bytes) -> Path:
    """Write `content` to `path` through a temporary file and a rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; reports are redacted and meant to be read by the people on the volume.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def report_stamp(generated_at: datetime) -> str:
    """The file-name timestamp of a report: 2026-02-10T091532 (UTC)."""
    return utc(generated_at).strftime("%Y-%m-%dT%H%M%S")


class ReportWriteError(Exception):
    """The reports could not be written; the message names the folder and why (e.g. no space left)."""


def write_reports(report: Report, output_dir: Path) -> dict[str, Path]:
    """Write problem_report_<stamp>.txt|.json|.csv into `output_dir`; returns the paths by format.

    A file system error is a `ReportWriteError` naming the folder; a file is either written whole
    or not at all (`write_atomic`), so a full disk leaves no truncated report behind."""
    base = output_dir / f"problem_report_{report_stamp(report.generated_at)}"
    document = json.dumps(report_to_dict(report), indent=2, ensure_ascii=False) + "\n"
    try:
        return {
            "txt": write_atomic(base.with_suffix(".txt"), report_to_text(report)),
            "json": write_atomic(base.with_suffix(".json"), document),
            "csv": write_atomic(base.with_suffix(".csv"), report_to_csv(report)),
        }
    except OSError as exc:
        reason = "no space left" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc)).lower()
        raise ReportWriteError(f"problem reports not written: {reason} on {output_dir}") from exc
