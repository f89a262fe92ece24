"""The NDJSON file source: only the range's lines, counted; unreadable lines counted and skipped."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core import fetch as fetch_module
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


def page_documents(body: bytes) -> list[dict]:
    """The documents the Elasticsearch source yields from one page of a search, read by the client's
    serializer."""
    serializer = client_options(Settings(_env_file=None))["serializer"]
    _, _, hits = fetch_module._parts(serializer.loads(body))
    return [fetch_module._document(hit) for hit in hits]


def test_elasticsearch_documents_read_as_the_json_module_reads_them():
    for line in AWKWARD:
        body = b'{"pit_id": "p", "hits": {"hits": [{"_id": "a", "_source": {' + line + b'}, "sort": [7]}]}}'
        assert page_documents(body) == json.loads(body)["hits"]["hits"], line


def test_a_page_of_hits_is_read_lazily_and_any_other_answer_into_dicts():
    serializer = client_options(Settings(_env_file=None))["serializer"]
    page = (
        b'{"pit_id": "p", "_shards": {"total": 2, "failed": 0},'
        b' "hits": {"hits": [{"_id": "a", "_source": {"n": 1}}]}}'
    )
    assert not isinstance(serializer.loads(page), dict)  # its source is decoded when it is read
    assert page_documents(page) == [{"_id": "a", "_source": {"n": 1}, "sort": None}]
    others = [
        b'{"id": "pit-id", "_shards": {"total": 1, "successful": 1, "failed": 0}}',  # a PIT opened
        b'{"_shards": {"total": 1, "successful": 1, "failed": 0}}',  # an index refreshed
        b'{"count": 3, "_shards": {"total": 1, "failed": 0}}',
        b'{"took": 1, "hits": {"hits": [{"_index": "i", "_id": "a", "_source": {}}]}}',  # unfiltered
        b"{}",
    ]
    for body in others:
        assert serializer.loads(body) == json.loads(body), body


def test_a_page_of_hits_tells_the_shards_that_failed():
    serializer = client_options(Settings(_env_file=None))["serializer"]
    failure = {"index": "logs-k8s-1", "reason": {"type": "query_shard_exception", "reason": "no such field"}}
    page = json.dumps(
        {"pit_id": "p", "_shards": {"total": 2, "failed": 1, "failures": [failure]}, "hits": {"hits": []}}
    ).encode()
    _, shards, _ = fetch_module._parts(serializer.loads(page))
    with pytest.raises(SourceUnavailable, match="1 of 2 Elasticsearch shards failed in index logs-k8s-1"):
        fetch_module._check_shards(shards)


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


def three_days(path, *tail: bytes) -> list[str]:
    """Lines of 8, 9 and 10 Feb, hourly and in time order, then `tail`."""
    stamps = [f"2026-02-{day:02d}T{hour:02d}:30:00Z" for day in (8, 9, 10) for hour in range(24)]
    write(path, [doc(t, n=t) for t in stamps] + list(tail))
    return stamps


def read_each_day(path, parts: int, monkeypatch) -> tuple[list[list], list[bytes]]:
    """Each of the three days read from one source in `parts` parts: the `n` of its documents, and
    every line the reads looked at."""
    looked_at: list[bytes] = []
    lines_starting_in = fetch_module._lines_starting_in

    def read(handle, first: int, stop: int):
        for raw in lines_starting_in(handle, first, stop):
            looked_at.append(raw)
            yield raw

    monkeypatch.setattr(fetch_module, "_lines_starting_in", read)
    source = NdjsonSource(path)
    per_day = []
    for day in range(3):
        start = START + timedelta(days=day - 1)
        with source.split(start, start + timedelta(days=1), parts) as readers:
            per_day.append([d["n"] for read in readers for d in read(InputStats())])
    return per_day, looked_at


@pytest.mark.parametrize("parts", [1, 2])
def test_each_day_of_a_file_reads_that_days_stretch_not_the_whole_file(tmp_path, monkeypatch, parts):
    path = tmp_path / "logs.ndjson"
    stamps = three_days(path, doc("2026-02-09T12:00:00Z", n="late"))
    per_day, looked_at = read_each_day(path, parts, monkeypatch)

    assert per_day == [stamps[:24], stamps[24:48] + ["late"], stamps[48:]]
    # One pass over the file learns where each hour lies; then each day reads its own stretch: the
    # 9th reaches to the late line at the end, across the 10th.
    assert len(looked_at) == 24 + (24 + 24 + 1) + 24


def test_lines_whose_time_cannot_be_read_here_are_in_every_range(tmp_path):
    path = tmp_path / "logs.ndjson"
    stamps = three_days(path, b'{"n": "timeless"}')
    source = NdjsonSource(path)
    for day in range(3):
        start = START + timedelta(days=day - 1)
        docs = list(source.fetch(start, start + timedelta(days=1), InputStats()))
        assert [d["n"] for d in docs] == stamps[24 * day : 24 * day + 24] + ["timeless"]


@pytest.mark.parametrize("parts", [1, 2, 3])
def test_a_line_of_no_readable_time_far_away_does_not_widen_each_days_stretch(tmp_path, monkeypatch, parts):
    path = tmp_path / "logs.ndjson"
    stamps = three_days(path, b'{"n": "timeless"}')
    per_day, looked_at = read_each_day(path, parts, monkeypatch)

    assert per_day == [stamps[24 * day : 24 * day + 24] + ["timeless"] for day in range(3)]
    assert len(looked_at) == 3 * (24 + 1)  # each day its own hours and the timeless line, no more


def test_past_so_many_runs_of_lines_of_no_readable_time_they_are_read_as_one(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch_module, "UNTIMED_RUNS", 2)
    path = tmp_path / "logs.ndjson"
    stamps = [f"2026-02-{day:02d}T{hour:02d}:30:00Z" for day in (8, 9, 10) for hour in range(24)]
    lines = [doc(t, n=t) if i % 10 else b'{"n": %d}' % i for i, t in enumerate(stamps)]
    write(path, lines)
    source = NdjsonSource(path)
    _, untimed, runs_apart = source._layout()
    assert len(untimed) <= 2
    assert not runs_apart  # the one run holds timed lines: each of them is checked against the range
    for day in range(3):
        start = START + timedelta(days=day - 1)
        docs = list(source.fetch(start, start + timedelta(days=1), InputStats()))
        expected = [
            i if i % 10 == 0 else t
            for i, t in enumerate(stamps)
            if i % 10 == 0 or 24 * day <= i < 24 * day + 24
        ]
        assert [d["n"] for d in docs] == expected


_LINE = st.one_of(
    # hours since 8 Feb, from its evening to the morning of the 10th, and a minute
    st.tuples(st.just("utc"), st.integers(20, 52), st.integers(0, 59)),
    st.tuples(st.just("zoned"), st.integers(20, 52), st.sampled_from(["+02:00", "-05:30"])),
    st.sampled_from([("untimed",), ("blank",), ("spaces",)]),
)


FEB_8 = START - timedelta(days=1)


def _line(spec: tuple, n: int) -> bytes:
    kind = spec[0]
    if kind == "utc":
        return doc(f"{FEB_8 + timedelta(hours=spec[1], minutes=spec[2]):%Y-%m-%dT%H:%M:%S}Z", n=n)
    if kind == "zoned":
        return doc(f"{FEB_8 + timedelta(hours=spec[1]):%Y-%m-%dT%H:%M:%S}{spec[2]}", n=n)
    return {"untimed": b'{"n": %d}' % n, "blank": b"", "spaces": b"  "}[kind]


@settings(max_examples=300, deadline=None)
@example([("utc", 24, 5), ("utc", 24, 30)], True, 1000, 24, 1, 17, 1)  # a line before a range's minute
@given(
    st.lists(_LINE, max_size=40),
    st.booleans(),
    st.sampled_from([2, 1000]),
    st.integers(18, 54),
    st.integers(1, 30),
    st.sampled_from([0, 17]),
    st.integers(1, 3),
)
def test_a_range_reads_the_lines_its_times_say_in_any_file(
    specs: list, in_order: bool, untimed_runs: int, first_hour: int, hours: int, minutes: int, parts: int
) -> None:
    """Read in parts or whole, from a file in time order or not, with few or many runs of lines of no
    readable time, a range gives the documents of exactly the lines `_counted` keeps, in file order."""
    if in_order:
        specs = sorted(specs, key=lambda spec: spec[1] if spec[0] == "utc" else -1)
    lines = [_line(spec, n) for n, spec in enumerate(specs)]
    start = FEB_8 + timedelta(hours=first_hour, minutes=minutes)
    end = start + timedelta(hours=hours)
    expected = [json.loads(raw)["n"] for raw in lines if fetch_module._counted(raw, start, end)]
    kept = fetch_module.UNTIMED_RUNS
    fetch_module.UNTIMED_RUNS = untimed_runs
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "logs.ndjson"
            write(path, lines)
            source = NdjsonSource(path)
            assert [d["n"] for d in source.fetch(start, end, InputStats())] == expected
            with source.split(start, end, parts) as readers:
                assert [d["n"] for read in readers for d in read(InputStats())] == expected
    finally:
        fetch_module.UNTIMED_RUNS = kept


@pytest.mark.parametrize(
    ("late", "checked_lines"),
    [
        (None, 0),  # in time order
        ("2026-02-09T12:00:00Z", 24 + 24 + 1),  # the 9th's stretch reaches across the 10th
        ("2026-02-09T23:59:00Z", 24 + 24 + 1),
        ("2026-02-10T11:00:00Z", 0),  # the 10th's lines out of order among themselves only
    ],
)
def test_a_day_is_read_without_each_lines_time_unless_another_hours_line_lies_among_it(
    tmp_path, monkeypatch, late, checked_lines
):
    """Only where a line of another hour lies among the day's lines is each line's time read."""
    path = tmp_path / "logs.ndjson"
    stamps = three_days(path, *([doc(late, n="late")] if late else []))
    checked: list[bytes] = []
    counted = fetch_module._counted
    monkeypatch.setattr(fetch_module, "_counted", lambda raw, *a: checked.append(raw) or counted(raw, *a))
    docs = list(NdjsonSource(path).fetch(START, END, InputStats()))
    assert [d["n"] for d in docs] == stamps[24:48] + (["late"] if late and late < "2026-02-10" else [])
    assert len(checked) == checked_lines


def test_a_file_that_changed_since_the_last_range_is_read_as_it_is_now(tmp_path):
    path = tmp_path / "logs.ndjson"
    write(path, [doc("2026-02-09T08:00:00Z", n=1)])
    source = NdjsonSource(path)
    assert [d["n"] for d in source.fetch(START, END, InputStats())] == [1]
    with path.open("ab") as handle:
        handle.write(doc("2026-02-08T08:00:00Z", n=2) + b"\n" + doc("2026-02-09T09:00:00Z", n=3) + b"\n")
    assert [d["n"] for d in source.fetch(START, END, InputStats())] == [1, 3]


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(SourceUnavailable, match="nope.ndjson"):
        list(NdjsonSource(tmp_path / "nope.ndjson").fetch(START, END, InputStats()))


_STAMPS = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
        lambda t: t.isoformat(timespec="milliseconds") + "Z"
    ),
    st.from_regex(  # times that only look like UTC to the second: out of range, in other zones, cut
        r"\A[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{0,10})?(Z|[+-]0[0-9]:[03]0|)\Z"
    ),
)


_HOUR_PREFIXES = st.one_of(  # a date and an hour: valid ones, and ones no time has (24h, 30 Feb)
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
        lambda t: t.strftime("%Y-%m-%dT%H").rjust(13, "0")
    ),
    st.from_regex(r"\A[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]\Z"),
)
_REST = st.from_regex(r"\A:[0-6][0-9]:[0-6][0-9](\.[0-9]{0,10})?(Z|[+-]0[0-9]:[03]0|)\Z")


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(_STAMPS, st.tuples(_HOUR_PREFIXES, st.lists(_REST, min_size=1, max_size=4))), max_size=4
    )
)
def test_a_line_is_in_the_hour_its_time_is(drawn: list) -> None:
    """The hour read by the first 13 bytes of a time, once per hour, is the hour of its parsed time,
    for the times of one hour in any order, valid or not."""
    stamps = [
        stamp for d in drawn for stamp in ([d] if isinstance(d, str) else [d[0] + rest for rest in d[1]])
    ]
    fetch_module._HOURS.clear()
    for stamp in stamps * 2:  # the second time from the hours kept
        line = doc(stamp)
        ts = fetch_module._line_time(line)
        expected = None if ts is None else (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(hours=1)
        assert fetch_module._line_hour(line) == expected, stamp


_NEAR = st.datetimes(min_value=datetime(2026, 2, 7), max_value=datetime(2026, 2, 12)).map(
    lambda t: t.isoformat(timespec="microseconds") + "Z"
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_NEAR, _STAMPS), st.integers(-48, 48), st.integers(1, 48), st.booleans())
def test_a_line_is_counted_in_a_range_as_its_time_says(
    stamp: str, hours: int, length: int, whole: bool
) -> None:
    """In a range of whole hours by the line's hour, in any other by its time: the same lines."""
    start = datetime(2026, 2, 9, tzinfo=UTC) + timedelta(hours=hours, minutes=0 if whole else 17)
    end = start + timedelta(hours=length)
    line = doc(stamp)
    ts = fetch_module._line_time(line)
    assert fetch_module._counted(line, start, end) == (ts is None or start <= ts < end)


class _CountingClient:
    """What `ElasticsearchSource.volume` asks of a client, the count answering with a failed shard as
    Elasticsearch does (200, `_shards.failed` > 0)."""

    def field_caps(self, **_: object) -> SimpleNamespace:
        return SimpleNamespace(body={"indices": ["logs-k8s-1", "logs-k8s-2"], "fields": {}})

    def count(self, **_: object) -> SimpleNamespace:
        failure = {"index": "logs-k8s-2", "reason": {"type": "query_shard_exception", "reason": "bad range"}}
        return SimpleNamespace(body={"count": 7, "_shards": {"total": 2, "failed": 1, "failures": [failure]}})


def test_a_count_that_a_shard_failed_is_no_volume():
    source = fetch_module.ElasticsearchSource(_CountingClient(), "logs-k8s-*", endpoint="")
    start = datetime(2025, 1, 2, tzinfo=UTC)
    with pytest.raises(SourceUnavailable, match="1 of 2 Elasticsearch shards failed in index logs-k8s-2"):
        source.volume(start, start + timedelta(days=1), enough=1)
