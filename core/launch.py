"""The `log-analyzer` executable: `log-analyzer fingerprint` starts without loading the pipeline, every
other command goes to core/cli.py.

The filter is meant for piping large files through; loading the pipeline's modules (SQLAlchemy, NumPy,
the publishers) costs more CPU than fingerprinting 100,000 messages, so the filter's throughput would
be mostly start-up (measured in docs/fingerprint.md).
"""

from __future__ import annotations

import sys

import click

from core.fingerprint import fingerprint_lines


def fingerprint_filter() -> None:
    """Read raw messages on stdin, one per line; print one fingerprint key per line, same order."""
    stdin = click.get_text_stream("stdin", errors="replace")
    out = sys.stdout
    for key in fingerprint_lines(line.rstrip("\r\n") for line in stdin):
        out.write(key + "\n")


def main() -> None:
    if sys.argv[1:] == ["fingerprint"]:
        fingerprint_filter()
        return
    from core.cli import main as cli_main  # the other commands need the pipeline's modules

    cli_main()
