"""Fetch: stream the error-log documents of a time range [start, end) from a log source.

A source yields raw documents (dicts, the `_source` of an Elasticsearch hit or a hit itself) one
at a time, never the whole range in memory; it counts what it read and what it could not parse in
`InputStats`. `NdjsonSource` is the embedded source for offline runs and tests. A source can also
be `split` into parts that together yield what `fetch` yields, each read in a worker process.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

import msgspec
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from core.es_query import KEYWORD_TYPES, FieldTypes, error_query, field_types, time_range
from core.model import InputStats, utc

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from core.config import Settings
    from core.layout import FieldMap, Layout, LevelField

KEEP_ALIVE = "2m"
"""How long a PIT lives between two pages of a slice: a page is consumed in seconds, and a crashed run's
PIT should not hold segments for long."""

TRANSIENT_STATUS = frozenset({429, 502, 503, 504})
RETRY_ATTEMPTS = 4
RETRY_BACKOFF_S = 0.5
RETRY_BACKOFF_MAX_S = 8.0

SLICE_FIELD = "_seq_no"
"""What slices of a point in time are cut by (a reader's threads, a split's parts). Not the
default (contiguous Lucene doc-id ranges): logs are indexed in time order, so one day or window of
an index lies in one such range and one slice would get all of it. Every document has exactly one
`_seq_no` per shard, with doc values, and its hash spreads any time range evenly over the slices."""

FIELD_TYPES_FOR_S = 30.0
"""How long one `_field_caps` answer serves: the count and the search of one range, made seconds apart,
share it; the next day or window (minutes later in a backfill of a busy day, 15 in the regular phase)
reads the mappings again."""

# The response is reduced to what is read: no _index, _score or took per hit and page. The shard
# header stays: a page that some shards failed to search is missing their documents.
_HITS_ONLY = [
    "pit_id",
    "hits.hits._id",
    "hits.hits._source",
    "hits.hits.sort",
    "_shards.failed",
    "_shards.total",
    "_shards.failures",
]


class SourceUnavailable(Exception):
    """The log source cannot be read; the message says which and why."""


PartFetch = Callable[[InputStats], Iterator[dict]]
"""Reads one part of a split range, counting into the stats it is given; called in a forked worker."""


class Source(Protocol):
    def fetch(self, start: datetime, end: datetime, stats: InputStats) -> Iterator[dict]:
        """Yield the documents whose timestamp lies in [start, end)."""
        ...

    def split(self, start: datetime, end: datetime, parts: int) -> AbstractContextManager[list[PartFetch]]:
        """`parts` readers that together yield exactly what `fetch` yields, each document once, each
        safe to call in its own forked process. Raises NotImplementedError when the source cannot."""
        ...

    def volume(self, start: datetime, end: datetime, *, enough: int) -> int:
        """How many documents of any level lie in [start, end), counted at least up to `enough` (a
        source may stop counting there): the cheap fact that tells a quiet range, which has logs but
        no errors, from one whose logs never arrived. Raises `SourceUnavailable` like `fetch`."""
        ...

    def describe(self) -> str:
        """Where the logs come from, for log lines (no credentials)."""
        ...


# Finds the timestamp without parsing the JSON, so lines outside the range cost almost nothing.
_TIMESTAMP = re.compile(
    rb'"(?:@timestamp|time|timestamp)"\s*:\s*"'
    rb'(?:(?P<usual>(?P<hour>\d{4}-\d\d-\d\dT(?:[01]\d|2[0-3])):[0-5]\d:[0-5]\d(?:\.\d{1,9})?Z)"|(?P<other>[^"]{10,40})")'
)
"""A line's first timestamp value (10 to 40 characters), `usual` when it is a time in UTC to the second or
a fraction of it, as shippers write it: its first 13 bytes (`hour`), the date and the hour, decide its
hour, and whether it is a time at all (the rest is one whatever its digits). Told apart in the same
search: a second regex over each value cost as much as finding it."""


class NdjsonSource:
    """Documents from a newline-delimited JSON file, one Elasticsearch document per line."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._kept: tuple[tuple[int, ...], _Layout] | None = None

    def describe(self) -> str:
        return f"file {self.path}"

    def fetch(self, start: datetime, end: datetime, stats: InputStats) -> Iterator[dict]:
        segments, in_range = self._segments(utc(start), utc(end))
        yield from self.fetch_part(start, end, segments, stats, in_range=in_range)

    def volume(self, start: datetime, end: datetime, *, enough: int) -> int:
        """The lines `fetch` would count in the range, up to `enough`: a range that has logs stops at
        its first lines, so this costs a full read of the range's hours only when it has too few."""
        start, end = utc(start), utc(end)
        found = 0
        with self._open() as handle:
            for first, stop in self._segments(start, end)[0]:
                for raw in _lines_starting_in(handle, first, stop):
                    if _counted(raw, start, end):
                        found += 1
                        if found >= enough:
                            return found
        return found

    def image_documents(self, namespace: str, start: datetime, end: datetime) -> Iterator[dict]:
        """The documents of any level of `namespace` in [start, end), for the images its pods ran
        (`core.change`): only the lines that name the namespace are decoded."""
        needle = json.dumps(namespace).encode()
        start, end = utc(start), utc(end)
        with self._open() as handle:
            for first, stop in self._segments(start, end)[0]:
                lines = (raw for raw in _lines_starting_in(handle, first, stop) if needle in raw)
                yield from _documents(lines, start, end, InputStats())

    @contextmanager
    def split(self, start: datetime, end: datetime, parts: int) -> Iterator[list[PartFetch]]:
        """Byte ranges of the file: the stretches that hold the range's lines, cut into `parts` pieces of
        about as many bytes each. Those stretches, not the whole file: logs are written in time order,
        so one day of a longer file lies in one part of it."""
        segments, in_range = self._segments(utc(start), utc(end))
        total = sum(stop - first for first, stop in segments)
        cuts = [total * i // parts for i in range(parts + 1)]
        pieces = [_bytes_between(segments, cuts[i], cuts[i + 1]) for i in range(parts)]
        yield [partial(self.fetch_part, start, end, piece, in_range=in_range) for piece in pieces]

    def fetch_part(
        self,
        start: datetime,
        end: datetime,
        segments: list[tuple[int, int]],
        stats: InputStats,
        *,
        in_range: bool = False,
    ) -> Iterator[dict]:
        """The documents of [start, end) on the lines that start at a byte offset in one of the
        `segments` [first, stop), read in file order; with `in_range`, every line of the segments
        is known to be counted (`_segments`), so no line's time is read."""
        start, end = utc(start), utc(end)
        with self._open() as handle:
            for first, stop in segments:
                lines = _lines_starting_in(handle, first, stop)
                yield from _documents(lines, start, end, stats, in_range=in_range)

    def _segments(self, start: datetime, end: datetime) -> tuple[list[tuple[int, int]], bool]:
        """The stretches [first, stop) of the file, in file order and apart, that hold every line
        `_documents` counts in the range: from the first to the last line of the hours it overlaps,
        and each run of lines whose time cannot be read here. And whether every line in them is
        counted, so that no line's time need be read: so it is in a range of whole hours (a
        backfill's day) when no line of another hour lies between the range's first line and its
        last (no other hour's stretch reaches into theirs) and each run holds only lines of no
        readable time."""
        first_hour, end_hour = (start - _EPOCH) // _HOUR, -((_EPOCH - end) // _HOUR)
        hours, untimed, runs_apart = self._layout()
        spans = [span for hour, span in hours.items() if first_hour <= hour < end_hour]
        wanted = [(min(f for f, _ in spans), max(s for _, s in spans))] if spans else []
        in_range = runs_apart and _whole_hours(start, end) is not None
        if in_range and wanted:
            low, high = wanted[0]
            in_range = not any(
                f < high and low < s for hour, (f, s) in hours.items() if not first_hour <= hour < end_hour
            )
        segments: list[tuple[int, int]] = []
        for first, stop in sorted(wanted + untimed):
            if segments and first <= segments[-1][1]:
                segments[-1] = (segments[-1][0], max(stop, segments[-1][1]))
            else:
                segments.append((first, stop))
        return segments, in_range

    def _layout(self) -> _Layout:
        """Per UTC hour, the stretch [first, stop) of the file its lines lie in, the runs of lines
        whose time cannot be read here (at most `UNTIMED_RUNS`; beyond, one run from the first such
        line to the last), and whether the runs are each of such lines only (`runs_apart`: not
        beyond). One pass over the file, kept while the file is unchanged: a backfill then reads each
        day's stretch instead of the whole file once per day."""
        with self._open() as handle:
            stat = os.fstat(handle.fileno())
            version = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
            if self._kept is not None and self._kept[0] == version:
                return self._kept[1]
            hours: dict[int, tuple[int, int]] = {}
            untimed: list[tuple[int, int]] = []
            position, after_untimed, runs_apart = 0, False, True
            for raw in handle:
                if not raw.isspace():
                    hour = _line_hour(raw)
                    if hour is None:
                        if after_untimed:
                            untimed[-1] = (untimed[-1][0], position + len(raw))
                        elif len(untimed) < UNTIMED_RUNS:
                            untimed.append((position, position + len(raw)))
                        else:
                            untimed[:] = [(untimed[0][0], position + len(raw))]
                            runs_apart = False  # the one run now holds timed lines too
                    else:
                        hours[hour] = (hours.get(hour, (position, 0))[0], position + len(raw))
                    after_untimed = hour is None
                position += len(raw)
        self._kept = (version, (hours, untimed, runs_apart))
        return hours, untimed, runs_apart

    def _open(self) -> BinaryIO:
        try:
            return self.path.open("rb")
        except OSError as exc:
            raise SourceUnavailable(f"cannot read log file {self.path}: {exc.strerror}") from None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR = timedelta(hours=1)
_Layout = tuple[dict[int, tuple[int, int]], list[tuple[int, int]], bool]

UNTIMED_RUNS = 1000
"""How many runs of lines of no readable time a file's layout keeps apart: each is read with every
range, and a file of scattered unreadable lines should not cost memory per line."""


def _bytes_between(segments: list[tuple[int, int]], low: int, high: int) -> list[tuple[int, int]]:
    """The pieces of `segments` that hold their bytes `low` to `high`, counted along them end to end."""
    pieces, before = [], 0
    for first, stop in segments:
        piece = (first + max(low - before, 0), first + min(high - before, stop - first))
        if piece[0] < piece[1]:
            pieces.append(piece)
        before += stop - first
    return pieces


def _lines_starting_in(handle: BinaryIO, first: int, stop: int) -> Iterator[bytes]:
    """The lines of a binary file that start at an offset in [first, stop), the last one read whole."""
    position = first
    if first > 0:
        # A line starts at `first` only if the byte before it ends a line: skip the rest of the line
        # that byte belongs to (just that newline, when it is one).
        handle.seek(first - 1)
        position = first - 1 + len(handle.readline())
    for line in handle:
        if position >= stop:
            return
        position += len(line)
        yield line


def _documents(
    lines: Iterable[bytes], start: datetime, end: datetime, stats: InputStats, *, in_range: bool = False
) -> Iterator[dict]:
    """The JSON objects of the lines whose timestamp is in [start, end), or cannot be read here; with
    `in_range`, of every line that is not blank (the caller knows they all are)."""
    for raw in lines:
        if in_range:
            if raw.isspace() or not raw:
                continue
        elif not _counted(raw, start, end):
            continue
        stats.fetched += 1
        try:
            doc = _JSON.decode(raw)
        except (ValueError, RecursionError):
            doc, unreadable = _read_slowly(raw)
            if unreadable:
                stats.skip(unreadable)
                continue
        if not isinstance(doc, dict):
            stats.skip("not_an_object")
            continue
        yield doc


_JSON = msgspec.json.Decoder()
"""Reads JSON 3x faster than the json module, big integers included. What it refuses and the json
module accepts (a lone surrogate `"\\ud83d"`, NaN, 1e400) goes to the json module: both sources
read every document exactly as the json module would."""


def _read_slowly(raw: bytes) -> tuple[Any, str | None]:
    """(the document, None), or (None, why the line cannot be read): with the json module."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not_utf8"
    try:
        return json.loads(text), None
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the interpreter's stack
        return None, "malformed_json"


class _Shards(msgspec.Struct, forbid_unknown_fields=True):
    total: Any = None
    failed: Any = None
    failures: Any = None


class _Hit(msgspec.Struct, forbid_unknown_fields=True):
    """A hit of a page, its `_source` kept as bytes of the response and decoded when it is read, one
    at a time: decoding a whole page of dicts at once costs 2-3x the CPU per document (60 000 new
    objects in cold memory, walked by the garbage collector while they live)."""

    id: Any = msgspec.field(name="_id", default=None)
    source: msgspec.Raw = msgspec.field(name="_source", default=msgspec.Raw())  # empty: no _source
    sort: Any = None


class _Hits(msgspec.Struct, forbid_unknown_fields=True):
    hits: list[_Hit] = []


class _Page(msgspec.Struct, forbid_unknown_fields=True):
    """A search response with only the fields `_HITS_ONLY` lets through: any other field, or any other
    answer, fails this decode and is read into dicts."""

    pit_id: Any = None
    shards: _Shards | None = msgspec.field(name="_shards", default=None)
    hits: _Hits | None = None


_PAGE = msgspec.json.Decoder(_Page)


def json_serializer() -> Any:
    """The client's JSON serializer: a page of `_slice_pages` read into `_Page`, any other answer with
    `_JSON` (where the client spent a fifth of a backfill's CPU in the json module) and with the json
    module what that refuses."""
    from elasticsearch.serializer import JsonSerializer

    class Serializer(JsonSerializer):
        def json_loads(self, data: bytes) -> Any:
            with contextlib.suppress(ValueError, RecursionError):
                page = _PAGE.decode(data)
                if page.hits is not None or page.pit_id is not None:
                    return page
            try:
                return _JSON.decode(data)
            except (ValueError, RecursionError):
                return super().json_loads(data)

    return Serializer()


def _document(hit: _Hit | dict) -> dict:
    """A hit as `fetch` yields it, its source decoded now as the whole answer would have been: what
    `_JSON` refuses by the json module (1e400; a lone surrogate or nesting deeper than the stack fail
    the page's decode already, and that page is read into dicts)."""
    if type(hit) is not _Hit:
        return hit
    if not hit.source:
        return {"_id": hit.id, "sort": hit.sort}
    try:
        source = _JSON.decode(hit.source)
    except (ValueError, RecursionError):
        source = _read_slowly(bytes(hit.source))[0]
    return {"_id": hit.id, "_source": source, "sort": hit.sort}


def _parts(response: _Page | dict) -> tuple[Any, dict | None, list]:
    """(PIT id, the answer's shard header, hits) of a page read into `_Page` or, by another client's
    serializer, into dicts (where filter_path drops an empty hits list)."""
    if isinstance(response, _Page):
        header = msgspec.structs.asdict(response.shards) if response.shards else {}
        shards = {name: value for name, value in header.items() if value is not None}
        return response.pit_id, shards, response.hits.hits if response.hits else []
    return response.get("pit_id"), response.get("_shards"), response.get("hits", {}).get("hits", [])


def _counted(raw: bytes, start: datetime, end: datetime) -> bool:
    """A line that is not blank and whose timestamp is in [start, end) or cannot be read here
    (normalize decides then). A range of whole hours (a backfill's day) is decided by the line's hour."""
    if not raw or raw.isspace():
        return False
    hours = _whole_hours(start, end)
    if hours is not None:
        hour = _line_hour(raw)
        return hour is None or hours[0] <= hour < hours[1]
    ts = _line_time(raw)
    return ts is None or start <= ts < end


@lru_cache(maxsize=16)
def _whole_hours(start: datetime, end: datetime) -> tuple[int, int] | None:
    """[first, stop) in hours since the epoch when both ends of the range are whole UTC hours."""
    first, first_rest = divmod(start - _EPOCH, _HOUR)
    stop, stop_rest = divmod(end - _EPOCH, _HOUR)
    return None if first_rest or stop_rest else (first, stop)


def _line_time(raw: bytes) -> datetime | None:
    """The UTC time of a line's timestamp; None when it has none or it cannot be read here."""
    found = _TIMESTAMP.search(raw)
    return None if found is None else _time(found["usual"] or found["other"])


def _time(value: bytes) -> datetime | None:
    try:
        return utc(datetime.fromisoformat(value.decode("ascii")))
    except (UnicodeDecodeError, ValueError, OverflowError):  # 9999-12-31T23:00-05:00 is past year 9999
        return None


_HOURS: dict[bytes, int] = {}
"""Hours since the epoch of the `usual` times met, by their first 13 bytes."""

HOURS_KEPT = 100_000
"""Distinct hours `_HOURS` keeps, 11 years of them: emptied when full, so memory stays bounded."""


def _line_hour(raw: bytes) -> int | None:
    """The UTC hour (since the epoch) of a line's timestamp, None as for `_line_time`: a `usual` time is
    parsed once per hour, which makes the file's hour layout and a day's reading 2-3x cheaper."""
    found = _TIMESTAMP.search(raw)
    if found is None:
        return None
    usual, first = found.group("usual", "hour")
    if usual is not None and (hour := _HOURS.get(first)) is not None:
        return hour
    ts = _time(usual or found.group("other"))
    if ts is None:
        return None
    hour = (ts - _EPOCH) // _HOUR
    if usual is not None:
        if len(_HOURS) >= HOURS_KEPT:
            _HOURS.clear()
        _HOURS[first] = hour
    return hour


class ElasticsearchSource:
    """Error documents from Elasticsearch: a point-in-time search paged with `search_after`, sorted by
    `_shard_doc` (the cheapest order), split into slices read in parallel threads through a bounded
    queue, `_source` limited to the fields the pipeline uses and the response to the hits
    (`filter_path`). The PIT is closed at the end, on errors and when the reader stops early.

    The query is the time range plus the error levels of `LEVEL_FIELDS`, each clause built for the
    type `_field_caps` reports for its field (`core/es_query.py`); documents with no level field at
    all (Fluent Bit's raw `log` lines) are fetched too and normalize infers their level, so this path
    and the file path accept exactly the same events. Transient failures (timeouts, 429, 502–504)
    are retried by the client; a search with `search_after` is idempotent, so a retried page is
    the same page.

    `split` hands slice i of n of one PIT to each worker process; a worker reads it with a client of
    its own from `connect` (a connection pool must not be shared across fork).
    """

    def __init__(
        self,
        client: Elasticsearch,
        index: str,
        *,
        page_size: int = 5000,
        slices: int = 2,
        timestamp_fields: tuple[str, ...] = (),
        keep_alive: str = KEEP_ALIVE,
        endpoint: str = "",
        connect: Callable[[], Elasticsearch] | None = None,
        layout: Layout | None = None,
    ) -> None:
        self.client = client
        self.layout = layout  # the field paths to query and read; a tuple or None: each preset
        self.connect = connect  # makes a new client, for worker processes
        self.index = index
        self.page_size = page_size
        self.slices = slices
        self.timestamp_fields = timestamp_fields  # empty: every timestamp field of the layouts
        self.keep_alive = keep_alive
        self.endpoint = endpoint
        self._types: tuple[float, FieldTypes] | None = None  # the last `_field_types` read, and when

    @classmethod
    def from_settings(cls, settings: Settings, layout: Layout | None = None) -> ElasticsearchSource:
        from elasticsearch import Elasticsearch

        endpoint = settings.es_endpoint() or ""
        options = client_options(settings)
        return cls(
            Elasticsearch(endpoint, **options),
            settings.es_index_pattern,
            page_size=settings.es_page_size,
            slices=settings.es_slices,
            endpoint=endpoint,
            connect=partial(Elasticsearch, endpoint, **options),
            layout=layout,
        )

    def describe(self) -> str:
        return f"Elasticsearch {_public(self.endpoint)} index {self.index}"

    def volume(self, start: datetime, end: datetime, *, enough: int) -> int:
        """One count request over the time range alone, every level. It also tells an index pattern
        that matches no index (`allow_no_indices` off) and a shard that fails the range's query."""
        from elasticsearch import ApiError, NotFoundError, TransportError

        fields = self._timestamp_fields()
        query = time_range(self._field_types(), fields, start, end)
        try:
            response = _retrying(self.client.count)(
                index=self.index, query=query, allow_no_indices=False, ignore_unavailable=False
            ).body
        except NotFoundError as exc:
            if _error_type(exc) == "index_not_found_exception":
                raise SourceUnavailable(f"index pattern {self.index} matches no index") from None
            raise self._unreachable(exc) from None
        except (ApiError, TransportError) as exc:
            raise self._unreachable(exc) from None
        _check_shards(response.get("_shards"))
        return int(response.get("count", 0))

    def image_documents(self, namespace: str, start: datetime, end: datetime) -> Iterator[dict]:
        """The earliest document of each pod and image of `namespace` in [start, end), of any level, for
        the images its pods ran (`core.change`): one composite aggregation of pod × image (size 0),
        each bucket's earliest hit, paged by `after_key`. A field mapped as text (Fluent Bit's and
        Vector's, by dynamic mapping) is aggregated by its `.keyword` sub-field."""
        from elasticsearch import ApiError, TransportError

        from core.change import all_image_paths

        layouts = self._layouts()
        namespaces = list(dict.fromkeys(path for fm in layouts for path in fm.namespace))
        pods = list(dict.fromkeys(path for fm in layouts for path in fm.pod))
        images = all_image_paths(self.layout)
        try:
            keywords = self._keyword_fields([*namespaces, *pods, *images])
            in_namespace = [{"term": {keywords[path]: namespace}} for path in namespaces if path in keywords]
            grouped = [keywords[path] for path in [*pods, *images] if path in keywords]
            if not in_namespace or not grouped:
                return
            query = {
                "bool": {
                    "filter": [
                        time_range(self._field_types(), self._timestamp_fields(), start, end),
                        {"bool": {"should": in_namespace, "minimum_should_match": 1}},
                    ]
                }
            }
            earliest = {
                "size": 1,
                "sort": [
                    {path: {"order": "asc", "unmapped_type": "date"}} for path in self._timestamp_fields()
                ],
                "_source": {"includes": self._image_source_fields(images)},
            }
            composite: dict[str, Any] = {
                "size": IMAGE_BUCKETS,
                "sources": [
                    {f"f{i}": {"terms": {"field": path, "missing_bucket": True}}}
                    for i, path in enumerate(grouped)
                ],
            }
            search = _retrying(self.client.search)
            while True:
                response = search(
                    index=self.index,
                    size=0,
                    query=query,
                    aggregations={
                        "images": {
                            "composite": composite,
                            "aggregations": {"earliest": {"top_hits": earliest}},
                        }
                    },
                    ignore_unavailable=True,
                    allow_no_indices=True,
                ).body
                _check_shards(response.get("_shards"))
                found = (response.get("aggregations") or {}).get("images") or {}
                buckets = found.get("buckets") or []
                for bucket in buckets:
                    for hit in bucket["earliest"]["hits"]["hits"]:
                        yield hit["_source"]
                if len(buckets) < IMAGE_BUCKETS or not found.get("after_key"):
                    return
                composite["after"] = found["after_key"]
        except (ApiError, TransportError) as exc:
            raise self._unreachable(exc) from None

    def _keyword_fields(self, paths: list[str]) -> dict[str, str]:
        """Per path, the field a terms aggregation can group it by: the path itself when every index maps
        it as a keyword, else its `.keyword` sub-field; paths no index can group by are absent."""
        caps = (
            _retrying(self.client.field_caps)(
                index=self.index,
                fields=[name for path in paths for name in (path, f"{path}.keyword")],
                ignore_unavailable=True,
                allow_no_indices=True,
            ).body.get("fields")
            or {}
        )
        grouped = {}
        for path in paths:
            for name in (path, f"{path}.keyword"):
                types = caps.get(name) or {}
                if types and all(
                    kind in KEYWORD_TYPES and info.get("aggregatable") for kind, info in types.items()
                ):
                    grouped[path] = name
                    break
        return grouped

    def _image_source_fields(self, images: list[str]) -> list[str]:
        """What `core.change` reads of a document: its time, namespace, pod, container, labels, owners
        and image."""
        paths = set(images)
        for fm in self._layouts():
            paths.update(fm.timestamp, fm.namespace, fm.pod, fm.container)
            paths.update(f"{path}.*" for path in fm.labels)
            paths.update(path for _, path in fm.owners)
        return sorted(paths)

    def _layouts(self) -> list[FieldMap]:
        from core.layout import field_maps

        return list(field_maps(self.layout))

    def _timestamp_fields(self) -> list[str]:
        # Fluent Bit documents may carry only `time`: the range covers every timestamp field the
        # layouts know, as normalize and the file source do.
        known = {f for layout in self._layouts() for f in layout.timestamp}
        return list(self.timestamp_fields) or sorted(known)

    def _level_fields(self) -> list[LevelField]:
        """The level fields of every layout read (`level_fields`: the shared `LEVEL_FIELDS` unless
        `ES_FIELD_MAP` names others), so the query keeps what normalize keeps."""
        from core.layout import level_fields

        fields: dict[str, LevelField] = {}
        for layout in self._layouts():
            for level in level_fields(layout.level):
                fields.setdefault(level.path, level)
        return list(fields.values())

    def query(self, start: datetime, end: datetime) -> dict:
        """The range's error documents, each clause built for the type the indices map its field as."""
        return error_query(self._field_types(), self._level_fields(), self._timestamp_fields(), start, end)

    def _field_types(self) -> FieldTypes:
        """How the indices the pattern resolves to now map the fields the queries touch (the timestamp
        and level fields): one `_field_caps` request, read again for each range (a new day's index may
        map a field anew) but shared by the range's count and search, which follow each other within
        `FIELD_TYPES_FOR_S`. An index whose mapping cannot be read fails the range: a query built
        without it could fail its shards or miss its documents."""
        from elasticsearch import ApiError, TransportError

        if self._types is not None and time.monotonic() - self._types[0] < FIELD_TYPES_FOR_S:
            return self._types[1]
        fields = {*self._timestamp_fields(), *(level.path for level in self._level_fields())}
        try:
            caps = _retrying(self.client.field_caps)(
                index=self.index, fields=sorted(fields), ignore_unavailable=True, allow_no_indices=True
            ).body
        except (ApiError, TransportError) as exc:
            raise self._unreachable(exc) from None
        failures = caps.get("failures") or []
        if failures:
            indices = sorted({i for failure in failures for i in failure.get("indices") or ()})
            error = (failures[0].get("failure") or {}).get("error") or {}
            raise SourceUnavailable(
                f"{self._named()} could not read the mapping of index {', '.join(indices) or '?'}: "
                f"{error.get('type', 'unknown')}: {_shortened(str(error.get('reason', '')))}"
            )
        types = field_types(caps)
        self._types = (time.monotonic(), types)
        return types

    def source_fields(self) -> list[str]:
        paths = set()
        for preset in self._layouts():
            for name in (
                "timestamp",
                "namespace",
                "pod",
                "container",
                "level",
                "message",
                "error_type",
                "trace_id",
            ):
                paths.update(getattr(preset, name))
            paths.update(f"{p}.*" for p in preset.labels)
            paths.update(p for _, p in preset.owners)
        return sorted(paths)

    def fetch(self, start: datetime, end: datetime, stats: InputStats) -> Iterator[dict]:
        from elasticsearch import ApiError, TransportError

        request = self._request(start, end)
        with self._point_in_time() as pit:
            readers = [
                self._slice_pages(self.client, pit, _slice(i, self.slices), request)
                for i in range(self.slices)
            ]
            try:
                with contextlib.closing(_merge(readers)) as pages:
                    for page in pages:
                        stats.fetched += len(page)
                        yield from map(_document, page)
            except (ApiError, TransportError) as exc:
                raise self._failed_while_reading(exc) from None

    @contextmanager
    def split(self, start: datetime, end: datetime, parts: int) -> Iterator[list[PartFetch]]:
        """One PIT, opened here and closed when the parts are read; part i reads its slice i of n,
        sliced by `SLICE_FIELD`."""
        self._client_factory()  # before a PIT is opened: fails if the workers could not connect
        request = self._request(start, end)  # here, with this process's client: once, not once per worker
        with self._point_in_time() as pit:
            yield [partial(self.fetch_slice, pit, i, parts, request) for i in range(parts)]

    def fetch_slice(
        self, pit: str, slice_id: int, slices: int, request: dict, stats: InputStats
    ) -> Iterator[dict]:
        """Slice `slice_id` of `slices` of an open PIT, read page by page with a new client of its own."""
        from elasticsearch import ApiError, TransportError

        client = self._client_factory()()
        try:
            for page in self._slice_pages(client, pit, _slice(slice_id, slices), request):
                stats.fetched += len(page)
                yield from map(_document, page)
        except (ApiError, TransportError) as exc:
            raise self._failed_while_reading(exc) from None
        finally:
            client.close()

    def _client_factory(self) -> Callable[[], Elasticsearch]:
        if self.connect is None:
            raise NotImplementedError("this Elasticsearch source has no client factory for worker processes")
        return self.connect

    @contextmanager
    def _point_in_time(self) -> Iterator[str]:
        """An open PIT of the index, closed at the end, on errors and when the reader stops early."""
        from elasticsearch import ApiError, TransportError

        try:
            opened = _retrying(self.client.open_point_in_time)(index=self.index, keep_alive=self.keep_alive)
            pit = opened.body["id"]
        except (ApiError, TransportError) as exc:
            raise self._unreachable(exc) from None
        try:
            yield pit
        finally:
            with contextlib.suppress(ApiError, TransportError):  # it expires by itself after keep_alive
                self.client.close_point_in_time(id=pit)

    def _request(self, start: datetime, end: datetime) -> dict:
        """The search of every page of the range (built once per range, not once per page)."""
        return {
            "query": self.query(start, end),
            "sort": ["_shard_doc"],
            "size": self.page_size,
            "source_includes": self.source_fields(),
            "track_total_hits": False,
            "filter_path": _HITS_ONLY,
        }

    def _unreachable(self, exc: Exception) -> SourceUnavailable:
        """A node that could not be reached, or that refused the request (authentication, …)."""
        from elasticsearch import ApiError

        what = "refused the request" if isinstance(exc, ApiError) else "unreachable"
        return SourceUnavailable(f"{self._named()} {what} ({_es_error(exc)})")

    def _failed_while_reading(self, exc: Exception) -> SourceUnavailable:
        return SourceUnavailable(f"{self._named()} failed while reading ({_es_error(exc)})")

    def _named(self) -> str:
        return f"Elasticsearch {_public(self.endpoint)}" if self.endpoint else "Elasticsearch"

    def _slice_pages(
        self, client: Elasticsearch, pit: str, body_slice: dict | None, request: dict
    ) -> Iterator[list[dict]]:
        """The pages of one slice; each hit keeps `_id` and `_source` (normalize reads both)."""
        search = _retrying(client.search)
        after = None
        while True:
            response = search(
                pit={"id": pit, "keep_alive": self.keep_alive},
                search_after=after,
                slice=body_slice,
                **request,
            ).body
            new_pit, shards, hits = _parts(response)
            _check_shards(shards)
            # Elasticsearch may hand out a new PIT id with any response: always continue with the newest.
            pit = new_pit or pit
            if not hits:
                return
            yield hits
            if len(hits) < self.page_size:
                return
            after = _sort_value(hits[-1])


def _slice(slice_id: int, slices: int) -> dict | None:
    return {"field": SLICE_FIELD, "id": slice_id, "max": slices} if slices > 1 else None


def client_options(settings: Settings) -> dict[str, Any]:
    """The Elasticsearch client's options from the settings: timeout, auth (API key, else basic auth)
    and the CA file for TLS. Responses are read like the file source's lines (`_JSON`, not orjson,
    which reads integers beyond 64 bits as floats)."""
    options: dict[str, Any] = {
        "serializer": json_serializer(),
        "request_timeout": settings.es_timeout_s,
        # Retries and their backoff are `_retrying`'s alone, so a failure is not retried twice over.
        "max_retries": 0,
        "retry_on_timeout": False,
    }
    if settings.es_api_key is not None:
        options["api_key"] = settings.es_api_key.get_secret_value()
    elif settings.es_username:
        password = settings.es_password.get_secret_value() if settings.es_password else ""
        options["basic_auth"] = (settings.es_username, password)
    if settings.es_ca_certs is not None:
        options["ca_certs"] = str(settings.es_ca_certs)
    return options


def _transient(exc: BaseException) -> bool:
    from elasticsearch import ApiError, ConnectionError, ConnectionTimeout

    if isinstance(exc, ApiError):
        return exc.meta.status in TRANSIENT_STATUS
    return isinstance(exc, ConnectionError | ConnectionTimeout)


def _retrying(call: Callable[..., Any]) -> Callable[..., Any]:
    """`call` retried with exponential backoff on transient failures; the last failure is raised."""
    return retry(
        retry=retry_if_exception(_transient),
        stop=stop_after_attempt(RETRY_ATTEMPTS),
        wait=wait_exponential(multiplier=RETRY_BACKOFF_S, max=RETRY_BACKOFF_MAX_S),
        reraise=True,
    )(call)


def _merge(readers: list[Iterator[list[dict]]]) -> Iterator[list[dict]]:
    """Run the slice readers in threads and yield their hits in one `_shard_doc` order, in pages.

    Each slice is in that order already; merging them by their sort values gives the order of an
    unsliced read, in which the records a shipper wrote one per line of a stack trace follow each
    other (core.multiline joins them). Each reader hands its pages through a queue of one: at most
    two pages per slice and the page being built are in memory, whatever the size of the range. The
    first error of any reader is raised here; closing this generator stops the readers."""
    if len(readers) == 1:
        yield from readers[0]
        return
    done = object()
    stop = threading.Event()
    queues: list[queue.Queue] = [queue.Queue(maxsize=1) for _ in readers]

    def read(reader: Iterator[list[dict]], pages: queue.Queue) -> None:
        try:
            for page in reader:
                if stop.is_set():
                    return
                pages.put(page)
        except BaseException as exc:  # handed to the consumer thread
            pages.put(exc)
        finally:
            pages.put(done)

    def hits(pages: queue.Queue) -> Iterator[dict]:
        while (item := pages.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield from item

    threads = [
        threading.Thread(target=read, args=(r, q), daemon=True) for r, q in zip(readers, queues, strict=True)
    ]
    for t in threads:
        t.start()
    try:
        merged = heapq.merge(*(hits(q) for q in queues), key=_sort_value)
        while page := list(itertools.islice(merged, MERGED_PAGE)):
            yield page
    finally:
        stop.set()
        # Drain, so that a reader blocked on a full queue sees `stop` and ends before the PIT is closed.
        while any(t.is_alive() for t in threads):
            for pages in queues:
                with contextlib.suppress(queue.Empty):
                    pages.get(timeout=0.05)


MERGED_PAGE = 1000
"""Hits per page handed on after the slices are merged: the consumer counts and reads page by page."""

IMAGE_BUCKETS = 1000
"""Pod × image buckets per page of `image_documents`: a namespace runs tens to hundreds of pods in an
hour and a half, so one page most often."""


def _sort_value(hit: _Hit | dict) -> list:
    return hit.sort if type(hit) is _Hit else hit["sort"]


def _check_shards(shards: Mapping[str, Any] | None) -> None:
    """Raise when the answer's shard header (`_shards`) says a shard failed: its documents are missing
    from the answer, which still says 200."""
    shards = shards or {}
    failed = shards.get("failed") or 0
    if not failed:
        return
    failures = shards.get("failures") or [{}]
    first = failures[0]
    reason = first.get("reason") or {}
    indices = sorted({str(f.get("index")) for f in failures if f.get("index")})
    where = f"index {indices[0]}" + (f" (and {len(indices) - 1} more)" if len(indices) > 1 else "")
    raise SourceUnavailable(
        f"{failed} of {shards.get('total', '?')} Elasticsearch shards failed in {where}: "
        f"{reason.get('type', 'unknown')}: {_shortened(str(reason.get('reason', '')))}"
    )


def _error_type(exc: Exception) -> str | None:
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("type") if isinstance(error, dict) else None


def _es_error(exc: Exception) -> str:
    """Why a request failed, in words: "connection refused", "timed out", "401 security_exception: …"."""
    from elasticsearch import ApiError, ConnectionTimeout
    from elasticsearch import ConnectionError as ConnectionFailed

    if isinstance(exc, ConnectionTimeout):
        return "timed out"
    if isinstance(exc, ConnectionFailed):
        text = getattr(exc, "message", "") or str(exc)
        for needle, words in (
            ("refused", "connection refused"),
            ("Name or service not known", "host name not found"),
            ("nodename nor servname", "host name not found"),
            ("timed out", "timed out"),
            ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"),
        ):
            if needle in text:
                return words
        return _shortened(text)
    if isinstance(exc, ApiError):
        body = exc.body.get("error") if isinstance(exc.body, dict) else None
        # "all shards failed" says less than the first shard's own cause (search_context_missing, …)
        causes = body.get("root_cause") if isinstance(body, dict) else None
        cause = causes[0] if isinstance(causes, list) and causes and isinstance(causes[0], dict) else body
        detail = (
            f"{cause.get('type')}: {cause.get('reason')}" if isinstance(cause, dict) else str(exc.message)
        )
        words = {401: "authentication failed", 403: "access denied"}.get(exc.meta.status)
        status = f"{words}, {exc.meta.status}" if words else str(exc.meta.status)
        return f"{status} {_shortened(detail)}"
    return _shortened(str(exc))


def _shortened(text: str) -> str:
    return text if len(text) < 300 else text[:300] + "…"


def _public(endpoint: str) -> str:
    """An endpoint fit for a message: any user and password in it removed."""
    scheme, sep, rest = endpoint.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else endpoint.rpartition("@")[2]
