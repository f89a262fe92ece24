"""Split stack traces joined: the records a shipper wrote one per line (`\\tat …`, `Caused by: …`, a
Python traceback, a Go panic) become the one record of the line before them, before normalize's level
filter and before fingerprinting.

A shipper without a multiline parser (Fluent Bit's default, Filebeat's container input without
`multiline.*`) writes every line of a trace as a record of its own, and the lines after the first carry
no level. Records are joined per stream, the (namespace, pod, container) that wrote them: a continuation
record joins the open record of its stream when it follows it by at most `MAX_GAP`. The first record
keeps its fields (level, time, id); its message becomes the lines joined with "\\n". Pure: no I/O; one
open record per stream, at most `MAX_OPEN_STREAMS` of them, and at most `MAX_LINES` lines each.

What "the record before" is depends on the order records arrive in, and the limits follow from it:
- The NDJSON file is read in file order: a shipper writes the lines of one stream in order, so they
  join, whatever other streams are interleaved with them.
- Elasticsearch pages come in `_shard_doc` order: one stream's records in one shard are in indexing
  order, so they join, across pages too; a reader's slices are merged back into that order
  (`core.fetch._merge`). With `ANALYSIS_WORKERS` above 1 (a slice per worker) or several primary
  shards, a trace's records are spread over workers or shards and arrive apart; those that arrive
  after their stream moved on stay records of their own, as before.
- A worker reads its own part of the NDJSON file: a trace cut at the part's boundary stays two events.
- A line that merely looks like a continuation (an indented line printed on its own) joins the record
  before it if that record is of the same stream and less than `MAX_GAP` older; an uncaught traceback
  printed right after a non-error line of the same container takes that line's level.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Protocol

from core.model import InputStats

MAX_GAP = timedelta(seconds=1)
"""How far apart two records of one stream may be and still be one trace. A runtime writes a trace in
one go and the container runtime stamps each line as it reads it, so its lines are microseconds apart;
a second leaves room for a slow pipe while an error logged a second later by the same container is an
event of its own."""

MAX_LINES = 500
"""Lines kept of one joined record; further continuation lines still belong to it (they are counted as
joined) but are dropped, as Filebeat's `multiline.max_lines` (default 500) drops them. Bounds memory per
stream against a container that prints an endless indented block."""

MAX_OPEN_STREAMS = 4096
"""Streams with an open record at once; beyond, the oldest-opened is released as it is. More pods than
this logging within one second of each other is beyond a cluster this tool reads; the cap keeps memory
flat over a day of short-lived pods (CronJob runs) whose last record nothing follows."""


class Line(Protocol):
    """A record as the joining sees it: which stream wrote it, when, and its message (None when it has
    none; "" for an empty line)."""

    stream: Hashable | None  # None: of no known stream, never joined
    timestamp: datetime
    message: str | None


# The first characters of a line that may continue any trace: whitespace (`\tat …`, `  File "…"`,
# `\t... 12 more`, Go's `\t/src/main.go:12 +0x1d`) and the starts of the prefixes below. A line starting
# with any other character is tested no further, except right after an exception's first line.
_ANY_SPACE = frozenset(" \t\r\n\f\v")
_PREFIXES = (
    "Caused by: ",  # Java, unindented
    "... ",  # Java's "... 12 more" where the frames are not indented
    "Traceback (most recent call last):",
    "During handling of the above exception",  # chained Python tracebacks
    "The above exception was the direct cause",
    "goroutine ",  # Go's "goroutine 1 [running]:" after a panic
    "--- End of ",  # .NET's "--- End of inner exception stack trace ---"
)
_PREFIX_FIRST = frozenset(prefix[0] for prefix in _PREFIXES)

_GOROUTINE = re.compile(r"goroutine \d+ \[[^\]]+\]:$")
# The exception line under a log line or closing a Python traceback: `java.lang.IllegalStateException:
# …`, `ValueError: …`, `requests.exceptions.ConnectionError: …`, `KeyboardInterrupt`.
_EXCEPTION = re.compile(
    r"(?:[A-Za-z_$][\w$]*\.)*[A-Z][\w$]*(?:Exception|Error|Throwable|Exit|Interrupt)(?::|$)"
)
_PYTHON_END = re.compile(r"(?:[^\s.():]+\.)*[^\s.():]+(?::|$)")
# Go's frame lines between `goroutine N [...]:` and a blank line: `main.main()`, `created by …`.
_GO_FRAME = re.compile(r"(?:[^\s.:]+\.)*[^\s.():]+\(|created by |\[signal ")
_GO_PANIC = re.compile(r"\bpanic: |http: panic serving")

# What a joined record is in the middle of, which decides the lines that only there continue it.
_TEXT, _PYTHON, _GO = 0, 1, 2


class _Open:
    """The open record of one stream and the lines joined to it so far."""

    __slots__ = ("record", "lines", "size", "last", "mode")

    def __init__(self, record: Line, message: str) -> None:
        self.record = record
        self.lines = [message]
        self.size = _size(message)
        self.last = record.timestamp
        self.mode = _mode_after(_TEXT, message)


def join_split_traces(records: Iterable[Line], stats: InputStats, max_bytes: int = 65536) -> Iterator[Line]:
    """The records with each trace's continuation records joined to the record before them (counted in
    `stats.joined_lines`, neither accepted nor skipped). A joined message stays within `max_bytes` of
    UTF-8 (normalize skips longer ones) and `MAX_LINES`: further lines are dropped. Records are yielded
    when their stream moves on, in no promised order."""
    opened: dict[Hashable, _Open] = {}
    for record in records:
        stream = record.stream
        if stream is None:
            yield record
            continue
        trace = opened.get(stream)
        message = record.message
        if trace is not None:
            if message is not None and _joins(trace, record.timestamp, message):
                stats.joined_lines += 1
                trace.last = record.timestamp
                size = _size(message) + 1  # with the newline before it
                if len(trace.lines) < MAX_LINES and trace.size + size <= max_bytes:
                    trace.lines.append(message)
                    trace.size += size
                trace.mode = _mode_after(trace.mode, message)
                continue
            del opened[stream]
            yield trace.record if len(trace.lines) == 1 else _joined(trace)
        if not message or message.isspace() or _whole(message):
            yield record  # nothing to join to it: normalize counts it as it is
            continue
        if len(opened) >= MAX_OPEN_STREAMS:
            yield _joined(opened.pop(next(iter(opened))))
        opened[stream] = _Open(record, message)
    for trace in opened.values():
        yield _joined(trace)


def _joins(trace: _Open, timestamp: datetime, message: str) -> bool:
    """Whether `message`, of a record of the open record's stream at `timestamp`, continues it."""
    gap = timestamp - trace.last
    if gap > MAX_GAP or -gap > MAX_GAP:
        return False
    first = message[:1]
    if not first or first in _ANY_SPACE:
        return not _whole(message)
    if first in _PREFIX_FIRST and message.startswith(_PREFIXES):
        return not _whole(message)
    mode = trace.mode
    if mode == _GO:
        return _GO_FRAME.match(message) is not None
    if mode == _PYTHON:
        return _PYTHON_END.match(message) is not None
    # Right under the log line that reports it: the exception's own first line.
    return len(trace.lines) == 1 and _EXCEPTION.match(message) is not None and not _whole(message)


def _size(message: str) -> int:
    """The bytes of `message` in UTF-8, without encoding it when it is ASCII."""
    return len(message) if message.isascii() else len(message.encode("utf-8", "replace"))


def _whole(message: str) -> bool:
    """A message of several lines (a newline before its last character, which Docker's json-file log
    ends every line with): an event a shipper already joined, which neither joins nor is joined."""
    return message.find("\n", 0, len(message) - 1) != -1


def _mode_after(mode: int, message: str) -> int:
    """What the joined record is in the middle of once `message` is its latest line."""
    first = message[:1]
    if first == "T" and message.startswith("Traceback (most recent call last):"):
        return _PYTHON
    if first == "g" and _GOROUTINE.match(message):
        return _GO
    if mode == _PYTHON:
        # Indented lines are the frames; the first unindented one ends the traceback.
        return _PYTHON if not first or first in _ANY_SPACE else _TEXT
    if mode == _GO:
        return _GO
    return _GO if "panic" in message and _GO_PANIC.search(message) else _TEXT


def _joined(trace: _Open) -> Line:
    """The open record, its message now all its lines."""
    record = trace.record
    if len(trace.lines) > 1:
        record.message = "\n".join(line.rstrip("\r\n") for line in trace.lines).rstrip()
    return record
