"""Tests of core/cli.py: what the entrypoints cost before they do any work."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core import publish

# Client libraries used only on some paths: a chart drawn, a channel configured, a migration, PostgreSQL.
ON_SOME_PATHS = ("matplotlib", "atlassian", "pymsteams", "requests", "alembic", "psycopg")


def test_the_entrypoints_import_no_library_only_some_paths_need() -> None:
    probe = f"import sys, core.cli; print(' '.join(m for m in {ON_SOME_PATHS!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []


def test_the_channels_are_still_reachable_from_the_package() -> None:
    assert publish.ConfluenceChannel.__module__ == "core.publish.confluence"
    assert publish.TeamsChannel.__module__ == "core.publish.teams"
    with pytest.raises(AttributeError):
        _ = publish.SlackChannel
