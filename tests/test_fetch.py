"""The NDJSON file source: only the range's lines, counted; unreadable lines counted and skipped."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from core.config import Settings
from core.fetch import NdjsonSource, SourceUnavailable, client_options
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


# Lines JSON parsers disagree on: the json module's reading is the reference for both sources.
AWKWARD = [
    b'"message": "ERROR \\ud83d cut inside an emoji"',  # a lone surrogate: msgspec refuses it
    b'"message": "ERROR \\ud83d\\ude00 a whole emoji"',
    b'"message": "ERROR big", "n": 123456789012345678901234567890',  # orjson: a float
    b'"message": "ERROR nan", "n": NaN',
    b'"message": "ERROR inf", "n": 1e400',
    b'"message": "ERROR nul \\u0000 and t\\u00e9st", "n": -0',
    b'"message": "ERROR dup", "n": 1, "n": 2',
]


def test_every_line_reads_as_the_json_module_reads_it(tmp_path):
    lines = [b'{"@timestamp": "2026-02-09T08:00:00Z", ' + line + b"}" for line in AWKWARD]
    path = tmp_path / "logs.ndjson"
    write(path, lines)
    stats = InputStats()
    docs = list(NdjsonSource(path).fetch(START, END, stats))
    assert docs == [json.loads(line) for line in lines]
    assert docs[2]["n"] == 123456789012345678901234567890
    assert stats.skipped == {}


def test_a_line_nested_deeper_than_the_stack_is_skipped_not_fatal(tmp_path):
    deep = b'{"@timestamp": "2026-02-09T08:00:00Z", "message": "ERROR x", "n": ' + b"[" * 100_000
    path = tmp_path / "logs.ndjson"
    write(path, [deep + b"]" * 100_000 + b"}", doc("2026-02-09T08:00:00Z", n=1)])
    stats = InputStats()
    docs = list(NdjsonSource(path).fetch(START, END, stats))
    assert [d["n"] for d in docs] == [1]
    assert stats.skipped == {"malformed_json": 1}


def test_elasticsearch_responses_read_as_the_json_module_reads_them():
    serializer = client_options(Settings(_env_file=None))["serializer"]
    for line in AWKWARD:
        body = b'{"hits": {"hits": [{"_id": "a", "_source": {' + line + b"}}]}}"
        assert serializer.loads(body) == json.loads(body), line


def test_a_document_whose_time_cannot_be_read_here_is_left_to_normalize(tmp_path):
    path = tmp_path / "logs.ndjson"
    write(path, [json.dumps({"time": 1770624000000, "log": "ERROR epoch millis"}).encode()])
    docs = list(NdjsonSource(path).fetch(START, END, InputStats()))
    assert len(docs) == 1


def test_a_time_that_is_no_time_in_utc_is_left_to_normalize_not_fatal(tmp_path):
    path = tmp_path / "logs.ndjson"
    write(path, [doc("9999-12-31T23:00:00-05:00", n=1), doc("2026-02-09T08:00:00Z", n=2)])
    docs = list(NdjsonSource(path).fetch(START, END, InputStats()))
    assert [d["n"] for d in docs] == [1, 2]


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(SourceUnavailable, match="nope.ndjson"):
        list(NdjsonSource(tmp_path / "nope.ndjson").fetch(START, END, InputStats()))
