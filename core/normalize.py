"""Normalize: turn raw Elasticsearch documents into `Event`s attributed to the workload that produced them.

Where the fields are is the document's layout (`core.layout`); who produced the line is workload
attribution (`core.workload`); a stack trace a shipper split into one document per line is joined
into one record before the level filter (`core.multiline`). Bad input never raises: the document is
skipped and counted in `InputStats.skipped` under one of `SKIP_REASONS`. The event's `pod` and
`container` always stay the emitter's, so the line can be found again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.layout import (
    ERROR_LEVELS,
    FieldMap,
    Layout,
    Reads,
    detect_layout,
    document_level,
    first,
    flatten,
    flatten_read,
    infer_level,
    level_fields,
    pod_labels,
    reads,
    text,
    valid_text,
)
from core.model import Event, InputStats, utc
from core.multiline import join_split_traces
from core.workload import attributed, workload_named_in

SKIP_REASONS = (
    "not_an_object",
    "missing_timestamp",
    "bad_timestamp",
    "missing_namespace",
    "missing_message",
    "message_too_large",
    "binary_message",
    "not_error_level",
)


def normalize(
    docs: Iterable[Any],
    stats: InputStats,
    fields: Layout | None = None,
    max_message_bytes: int = 65536,
) -> Iterator[Event]:
    """Yield one `Event` per usable document, a stack trace split into one document per line being one
    (`core.multiline`); count the others in `stats.skipped` by reason."""
    records = _records(docs, stats, fields)
    for record in join_split_traces(records, stats, max_message_bytes):
        event = to_event(record, stats, max_message_bytes)
        if event is not None:
            stats.accepted += 1
            yield event


@dataclass(slots=True)
class Record:
    """A document on its way to an event: what trace joining reads (`core.multiline.Line`) and the
    document, flattened, for the rest."""

    stream: tuple[str, str, str] | None  # (namespace, pod, container); None without a pod
    timestamp: datetime
    message: str | None  # None when the document has no message as text
    namespace: str
    pod: str
    container: str
    flat: dict[str, Any]
    layout: FieldMap
    doc_id: str | None


def _records(docs: Iterable[Any], stats: InputStats, fields: Layout | None) -> Iterator[Record]:
    """The documents that have a time and a namespace; the others are counted as skipped."""
    read = reads(fields)
    for doc in docs:
        record = to_record(doc, stats, fields, read)
        if record is not None:
            yield record


def to_record(
    doc: Any, stats: InputStats, fields: Layout | None = None, read: Reads | None = None
) -> Record | None:
    """The record of one document (a `_source` or a whole hit), or None after counting why it was
    skipped. With the `read` paths of `fields`, only the objects they can lie in are flattened."""
    doc_id = None
    if isinstance(doc, dict) and "_source" in doc:
        doc_id = doc.get("_id") if isinstance(doc.get("_id"), str) else None
        doc = doc["_source"]
    if not isinstance(doc, dict):
        stats.skip("not_an_object")
        return None
    flat = flatten(doc) if read is None else flatten_read(doc, read)
    fm = fields if isinstance(fields, FieldMap) else detect_layout(flat, fields or ())

    raw_ts = first(flat, fm.timestamp)
    if raw_ts is None:
        stats.skip("missing_timestamp")
        return None
    timestamp = parse_timestamp(raw_ts)
    if timestamp is None:
        stats.skip("bad_timestamp")
        return None
    namespace = text(flat, fm.namespace)
    if not namespace:
        stats.skip("missing_namespace")
        return None
    pod = text(flat, fm.pod) or ""
    container = text(flat, fm.container) or ""
    message = first(flat, fm.message)
    if not isinstance(message, str):
        # An empty line inside a trace is a record with an empty message: it joins the trace.
        message = "" if message is None and any(flat.get(path) == "" for path in fm.message) else None
    stream = (namespace, pod, container) if pod else None
    return Record(stream, timestamp, message, namespace, pod, container, flat, fm, doc_id)


def to_event(record: Record, stats: InputStats, max_message_bytes: int = 65536) -> Event | None:
    """The event of one record, or None after counting why it was skipped."""
    flat, fm, namespace = record.flat, record.layout, record.namespace
    message = record.message
    if message is None or not message or message.isspace():  # blank, found without copying it stripped
        stats.skip("missing_message")
        return None
    message = valid_text(message)
    # A UTF-8 character is at most 4 bytes, so most messages need no encoding to be measured.
    if len(message) * 4 > max_message_bytes and len(message.encode("utf-8", "replace")) > max_message_bytes:
        stats.skip("message_too_large")
        return None
    if is_binary(message):
        stats.skip("binary_message")
        return None
    levels = level_fields(fm.level)
    level = document_level(flat, levels) or infer_level(message, levels)
    if level not in ERROR_LEVELS:
        stats.skip("not_error_level")
        return None

    pod, container = record.pod, record.container
    labels = tuple(pod_labels(flat, fm.labels).items())
    owners = tuple((kind, name) for kind, path in fm.owners if path in flat and (name := text(flat, (path,))))
    workload, app, shipper = attributed(namespace, pod, container, labels, owners)
    if shipper:
        target = workload_named_in(message, namespace)
        if target is not None:
            workload, app = target, target.name
    return Event(
        timestamp=record.timestamp,
        namespace=workload.namespace,
        pod=pod,
        container=container,
        workload=workload,
        app=app,
        level=level,
        message=message,
        error_type=text(flat, fm.error_type),
        trace_id=text(flat, fm.trace_id),
        doc_id=record.doc_id,
    )


_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_EPOCH_MILLIS_FROM = 100_000_000_000  # 1973 in millis, 5138 in seconds: larger numbers are millis


def parse_timestamp(value: Any) -> datetime | None:
    """An aware UTC datetime from an ISO-8601 string (Z, offset or naive = UTC) or epoch millis/seconds."""
    if isinstance(value, str):
        text = value.strip()
        if "T" not in text and _NUMBER.fullmatch(text):  # an ISO time has a T, a number none
            value = float(text)
        else:
            try:
                return utc(datetime.fromisoformat(text))
            except (ValueError, OverflowError):  # in UTC before year 1 or after 9999
                return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = value / 1000 if abs(value) >= _EPOCH_MILLIS_FROM else value
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd]")


def is_binary(message: str) -> bool:
    """True for NUL bytes or a message of which more than a tenth is control or undecodable characters."""
    if "\x00" in message:
        return True
    if _CONTROL.search(message) is None:  # the common case, without building a list
        return False
    return len(_CONTROL.findall(message)) * 10 > len(message)
