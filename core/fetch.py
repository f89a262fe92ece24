"""Fetch: stream the error-log documents of a time range [start, end) from a log source.

A source yields raw documents (dicts, the `_source` of an Elasticsearch hit or a hit itself) one
at a time, never the whole range in memory; it counts what it read and what it could not parse in
`InputStats`. `NdjsonSource` is the embedded source for offline runs and tests.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Protocol

from core.model import InputStats, utc


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
    `_shard_doc` (the cheapest order), split into slices read in parallel, `_source` limited to the
    fields the pipeline uses. The PIT is closed at the end and on errors.

    The query is the time range plus the error levels; documents with no level field at all
    (Fluent Bit's raw `log` lines) are fetched too and normalize infers their level, so this path
    and the file path accept exactly the same events.
    """

    def __init__(
        self,
        client,
        index: str,
        *,
        page_size: int = 5000,
        slices: int = 2,
        timestamp_field: str = "@timestamp",
        keep_alive: str = "5m",
        endpoint: str = "",
    ) -> None:
        self.client = client
        self.index = index
        self.page_size = page_size
        self.slices = slices
        self.timestamp_field = timestamp_field
        self.keep_alive = keep_alive
        self.endpoint = endpoint

    @classmethod
    def from_settings(cls, settings) -> ElasticsearchSource:
        from elasticsearch import Elasticsearch

        endpoint = settings.es_endpoint()
        auth: dict = {}
        if settings.es_api_key is not None:
            auth["api_key"] = settings.es_api_key.get_secret_value()
        elif settings.es_username:
            password = settings.es_password.get_secret_value() if settings.es_password else ""
            auth["basic_auth"] = (settings.es_username, password)
        if settings.es_ca_certs is not None:
            auth["ca_certs"] = str(settings.es_ca_certs)
        client = Elasticsearch(
            endpoint,
            request_timeout=settings.es_timeout_s,
            retry_on_timeout=True,
            max_retries=3,
            retry_on_status=(429, 502, 503, 504),
            **auth,
        )
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
            for level in ERROR_LEVELS
        ]
        no_level = {"bool": {"must_not": [{"exists": {"field": f}} for f in level_fields]}}
        time_range = {"range": {self.timestamp_field: {"gte": _es_time(start), "lt": _es_time(end)}}}
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
            pit = self.client.open_point_in_time(index=self.index, keep_alive=self.keep_alive)["id"]
        except (ApiError, TransportError) as exc:
            raise SourceUnavailable(f"Elasticsearch {self.endpoint} unavailable: {_es_error(exc)}") from None
        try:
            for page in _merge(self._slice_pages(pit, i, start, end) for i in range(self.slices)):
                for hit in page:
                    stats.fetched += 1
                    yield hit
        except (ApiError, TransportError) as exc:
            raise SourceUnavailable(
                f"Elasticsearch {self.endpoint} failed while reading: {_es_error(exc)}"
            ) from None
        finally:
            with contextlib.suppress(ApiError, TransportError):  # it expires by itself after keep_alive
                self.client.close_point_in_time(id=pit)

    def _slice_pages(self, pit: str, slice_id: int, start: datetime, end: datetime) -> Iterator[list[dict]]:
        after = None
        body_slice = {"id": slice_id, "max": self.slices} if self.slices > 1 else None
        while True:
            response = self.client.search(
                pit={"id": pit, "keep_alive": self.keep_alive},
                query=self.query(start, end),
                sort=["_shard_doc"],
                size=self.page_size,
                search_after=after,
                slice=body_slice,
                source_includes=self.source_fields(),
                track_total_hits=False,
            )
            hits = response["hits"]["hits"]
            if not hits:
                return
            yield [{"_id": h.get("_id"), "_source": h.get("_source", {})} for h in hits]
            if len(hits) < self.page_size:
                return
            after = hits[-1]["sort"]


def _merge(generators) -> Iterator[list[dict]]:
    """Run the slice readers in threads and yield their pages as they come, through a bounded queue
    (at most a few pages in memory). The first error of any reader is raised here."""
    import queue
    import threading

    gens = list(generators)
    if len(gens) == 1:
        yield from gens[0]
        return
    pages: queue.Queue = queue.Queue(maxsize=2 * len(gens))
    done = object()
    stop = threading.Event()

    def read(gen) -> None:
        try:
            for page in gen:
                if stop.is_set():
                    return
                pages.put(page)
        except BaseException as exc:  # handed to the consumer thread
            pages.put(exc)
        finally:
            pages.put(done)

    threads = [threading.Thread(target=read, args=(g,), daemon=True) for g in gens]
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
        while any(t.is_alive() for t in threads):
            with contextlib.suppress(queue.Empty):
                pages.get(timeout=0.1)


def _es_time(dt: datetime) -> str:
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _es_error(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "…"
