"""Fetch: stream the error-log documents of a time range [start, end) from a log source.

A source yields raw documents (dicts, the `_source` of an Elasticsearch hit or a hit itself) one
at a time, never the whole range in memory; it counts what it read and what it could not parse in
`InputStats`. `NdjsonSource` is the embedded source for offline runs and tests.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from core.model import InputStats, utc

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from core.config import Settings

KEEP_ALIVE = "2m"
"""How long a PIT lives between two pages of a slice: a page is consumed in seconds, and a crashed run's
PIT should not hold segments for long."""

TRANSIENT_STATUS = frozenset({429, 502, 503, 504})
RETRY_ATTEMPTS = 4
RETRY_BACKOFF_S = 0.5
RETRY_BACKOFF_MAX_S = 8.0

# The response is reduced to what is read: no _index, _score, shard header or took per hit and page.
_HITS_ONLY = ["pit_id", "hits.hits._id", "hits.hits._source", "hits.hits.sort"]


class SourceUnavailable(Exception):
    """The log source cannot be read; the message says which and why."""


class Source(Protocol):
    def fetch(self, start: datetime, end: datetime, stats: InputStats) -> Iterator[dict]:
        """Yield the documents whose timestamp lies in [start, end)."""
        ...

    def describe(self) -> str:
        """Where the logs come from, for log lines (no credentials)."""
        ...


# Finds the timestamp without parsing the JSON, so lines outside the range cost almost nothing.
_TIMESTAMP = re.compile(rb'"(?:@timestamp|time|timestamp)"\s*:\s*"([^"]{10,40})"')


class NdjsonSource:
    """Documents from a newline-delimited JSON file, one Elasticsearch document per line."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def describe(self) -> str:
        return f"file {self.path}"

    def fetch(self, start: datetime, end: datetime, stats: InputStats) -> Iterator[dict]:
        start, end = utc(start), utc(end)
        try:
            handle = self.path.open("rb")
        except OSError as exc:
            raise SourceUnavailable(f"cannot read log file {self.path}: {exc.strerror}") from None
        with handle:
            for raw in handle:
                if not raw.strip():
                    continue
                found = _TIMESTAMP.search(raw)
                if found and not _in_range(found.group(1), start, end):
                    continue
                stats.fetched += 1
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    stats.skip("not_utf8")
                    continue
                try:
                    doc = json.loads(text)
                except json.JSONDecodeError:
                    stats.skip("malformed_json")
                    continue
                if not isinstance(doc, dict):
                    stats.skip("not_an_object")
                    continue
                yield doc


def _in_range(value: bytes, start: datetime, end: datetime) -> bool:
    """True when the timestamp is in [start, end), or cannot be read here (normalize decides then)."""
    try:
        ts = utc(datetime.fromisoformat(value.decode("ascii")))
    except (UnicodeDecodeError, ValueError):
        return True
    return start <= ts < end


class ElasticsearchSource:
    """Error documents from Elasticsearch: a point-in-time search paged with `search_after`, sorted by
    `_shard_doc` (the cheapest order), split into slices read in parallel threads through a bounded
    queue, `_source` limited to the fields the pipeline uses and the response to the hits
    (`filter_path`). The PIT is closed at the end, on errors and when the reader stops early.

    The query is the time range plus the error levels; documents with no level field at all
    (Fluent Bit's raw `log` lines) are fetched too and normalize infers their level, so this path
    and the file path accept exactly the same events. Transient failures (timeouts, 429, 502–504)
    are retried by the client; a search with `search_after` is idempotent, so a retried page is
    the same page.
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
    ) -> None:
        self.client = client
        self.index = index
        self.page_size = page_size
        self.slices = slices
        self.timestamp_fields = timestamp_fields  # empty: every timestamp field of the layouts
        self.keep_alive = keep_alive
        self.endpoint = endpoint

    @classmethod
    def from_settings(cls, settings: Settings) -> ElasticsearchSource:
        from elasticsearch import Elasticsearch

        endpoint = settings.es_endpoint() or ""
        client = Elasticsearch(endpoint, **client_options(settings))
        return cls(
            client,
            settings.es_index_pattern,
            page_size=settings.es_page_size,
            slices=settings.es_slices,
            endpoint=endpoint,
        )

    def describe(self) -> str:
        return f"Elasticsearch {self.endpoint} index {self.index}"

    def query(self, start: datetime, end: datetime) -> dict:
        from core.normalize import ERROR_LEVELS, PRESETS

        level_fields = sorted({f for preset in PRESETS.values() for f in preset.level})
        levels = [
            {"term": {f: {"value": level, "case_insensitive": True}}}
            for f in level_fields
            for level in sorted(ERROR_LEVELS)
        ]
        no_level = {"bool": {"must_not": [{"exists": {"field": f}} for f in level_fields]}}
        # Fluent Bit documents may carry only `time`: the range covers every timestamp field the
        # layouts know, as normalize and the file source do.
        bounds = {"gte": _es_time(start), "lt": _es_time(end)}
        fields = self.timestamp_fields or sorted({f for preset in PRESETS.values() for f in preset.timestamp})
        time_range = {"bool": {"should": [{"range": {f: bounds}} for f in fields], "minimum_should_match": 1}}
        return {"bool": {"filter": [time_range], "should": [*levels, no_level], "minimum_should_match": 1}}

    def source_fields(self) -> list[str]:
        from core.normalize import PRESETS

        paths = set()
        for preset in PRESETS.values():
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

        try:
            opened = _retrying(self.client.open_point_in_time)(index=self.index, keep_alive=self.keep_alive)
            pit = opened.body["id"]
        except (ApiError, TransportError) as exc:
            raise SourceUnavailable(f"Elasticsearch {self.endpoint} unavailable: {_es_error(exc)}") from None
        # Built once per range, not once per page.
        request = {
            "query": self.query(start, end),
            "sort": ["_shard_doc"],
            "size": self.page_size,
            "source_includes": self.source_fields(),
            "track_total_hits": False,
            "filter_path": _HITS_ONLY,
        }
        readers = [self._slice_pages(pit, i, request) for i in range(self.slices)]
        try:
            with contextlib.closing(_merge(readers)) as pages:
                for page in pages:
                    stats.fetched += len(page)
                    yield from page
        except (ApiError, TransportError) as exc:
            raise SourceUnavailable(
                f"Elasticsearch {self.endpoint} failed while reading: {_es_error(exc)}"
            ) from None
        finally:
            with contextlib.suppress(ApiError, TransportError):  # it expires by itself after keep_alive
                self.client.close_point_in_time(id=pit)

    def _slice_pages(self, pit: str, slice_id: int, request: dict) -> Iterator[list[dict]]:
        """The pages of one slice; each hit keeps `_id` and `_source` (normalize reads both)."""
        search = _retrying(self.client.search)
        after = None
        body_slice = {"id": slice_id, "max": self.slices} if self.slices > 1 else None
        while True:
            response = search(
                pit={"id": pit, "keep_alive": self.keep_alive},
                search_after=after,
                slice=body_slice,
                **request,
            ).body
            # Elasticsearch may hand out a new PIT id with any response: always continue with the newest.
            pit = response.get("pit_id", pit)
            hits = response.get("hits", {}).get("hits", [])  # filter_path drops an empty hits list
            if not hits:
                return
            yield hits
            if len(hits) < self.page_size:
                return
            after = hits[-1]["sort"]


def client_options(settings: Settings) -> dict[str, Any]:
    """The Elasticsearch client's options from the settings: timeout, auth (API key, else basic auth)
    and the CA file for TLS. The standard JSON decoder on purpose: orjson would read integers beyond
    64 bits as floats, so the Elasticsearch path could differ from the file path."""
    options: dict[str, Any] = {
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
    """Run the slice readers in threads and yield their pages as they come, through a bounded queue:
    at most one waiting page per slice, one being read per slice and the one being consumed are in
    memory, whatever the size of the range. The first error of any reader is raised here; closing
    this generator stops the readers."""
    if len(readers) == 1:
        yield from readers[0]
        return
    pages: queue.Queue = queue.Queue(maxsize=len(readers))
    done = object()
    stop = threading.Event()

    def read(reader: Iterator[list[dict]]) -> None:
        try:
            for page in reader:
                if stop.is_set():
                    return
                pages.put(page)
        except BaseException as exc:  # handed to the consumer thread
            pages.put(exc)
        finally:
            pages.put(done)

    threads = [threading.Thread(target=read, args=(r,), daemon=True) for r in readers]
    for t in threads:
        t.start()
    finished = 0
    try:
        while finished < len(threads):
            item = pages.get()
            if item is done:
                finished += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()
        # Drain, so that a reader blocked on a full queue sees `stop` and ends before the PIT is closed.
        while any(t.is_alive() for t in threads):
            with contextlib.suppress(queue.Empty):
                pages.get(timeout=0.1)


def _es_time(dt: datetime) -> str:
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _es_error(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "…"
