"""The NDJSON file source: only the range's lines, counted; unreadable lines counted and skipped."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from core.fetch import NdjsonSource, SourceUnavailable
from core.model import InputStats

START = datetime(2026, 2, 9, tzinfo=UTC)
END = datetime(2026, 2, 10, tzinfo=UTC)


def write(path, lines: list[bytes]) -> None:
    path.write_bytes(b"\n".join(lines) + b"\n")


def doc(ts: str, **extra) -> bytes:
    return json.dumps({"@timestamp": ts, "message": "ERROR x", **extra}).encode()


def test_only_documents_of_the_half_open_range_are_read(tmp_path):
    path = tmp_path / "logs.ndjson"
    write(
        path,
        [
            doc("2026-02-08T23:59:59.999Z"),
            doc("2026-02-09T00:00:00Z", n=1),
            doc("2026-02-09T23:59:59+00:00", n=2),
            doc("2026-02-10T00:00:00Z"),
            doc("2026-02-10T01:00:00+02:00", n=3),  # 23:00 UTC the day before
            b"",
        ],
    )
    stats = InputStats()
    docs = list(NdjsonSource(path).fetch(START, END, stats))
    assert [d["n"] for d in docs] == [1, 2, 3]
    assert stats.fetched == 3 and stats.skipped == {}


def test_unreadable_lines_are_counted_and_skipped(tmp_path):
    path = tmp_path / "logs.ndjson"
    write(
        path,
        [
            b'{"@timestamp": "2026-02-09T08:00:00Z", "message": "ERROR cut',
            b'{"@timestamp": "2026-02-09T08:00:00Z", "message": "\xff\xfe"}',
            b'["2026-02-09T08:00:00Z"]',
            doc("2026-02-09T08:00:00Z", n=1),
        ],
    )
    stats = InputStats()
    docs = list(NdjsonSource(path).fetch(START, END, stats))
    assert [d["n"] for d in docs] == [1]
    assert stats.skipped == {"malformed_json": 1, "not_utf8": 1, "not_an_object": 1}
    assert stats.fetched == 4


def test_a_document_whose_time_cannot_be_read_here_is_left_to_normalize(tmp_path):
    path = tmp_path / "logs.ndjson"
    write(path, [json.dumps({"time": 1770624000000, "log": "ERROR epoch millis"}).encode()])
    docs = list(NdjsonSource(path).fetch(START, END, InputStats()))
    assert len(docs) == 1


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(SourceUnavailable, match="nope.ndjson"):
        list(NdjsonSource(tmp_path / "nope.ndjson").fetch(START, END, InputStats()))
