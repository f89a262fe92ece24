"""The Elasticsearch query of a range, built for the field types the searched indices map.

Shippers map the same field differently (`level` is a keyword from Filebeat, a long from pino through
Fluent Bit's dynamic mapping, text elsewhere; Vector's `timestamp` may be epoch millis), and a clause
meant for one type fails the shards of another. So each clause is built for the type `_field_caps`
reports, and where the indices of one pattern disagree, once per type, limited to that type's indices.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial

from core.layout import ERROR_LEVELS, LevelField
from core.model import utc

FieldTypes = Mapping[str, Mapping[str, tuple[str, ...]]]
"""Per field path, each type it is mapped as and the indices mapping it so; the indices are empty when
every index that maps the field agrees on its type. A field no index maps is absent."""

KEYWORD_TYPES = frozenset({"keyword", "constant_keyword", "wildcard"})
TEXT_TYPES = frozenset({"text", "match_only_text"})
NUMERIC_TYPES = frozenset(
    {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "unsigned_long"}
)
DATE_TYPES = frozenset({"date", "date_nanos"})

ISO_FORMAT = "strict_date_optional_time"
"""The format the range's bounds are written in, whatever format the date field itself is mapped with
(`epoch_millis` only, a custom pattern …): the bounds are parsed with this one."""


def field_types(caps: Mapping) -> dict[str, dict[str, tuple[str, ...]]]:
    """The `FieldTypes` of a `_field_caps` response. A type reported as not searchable gets no clause."""
    return {
        path: {
            kind: tuple(info.get("indices") or ())
            for kind, info in types.items()
            if info.get("searchable", True)
        }
        for path, types in (caps.get("fields") or {}).items()
    }


def error_query(
    types: FieldTypes,
    level_fields: Sequence[LevelField],
    timestamp_fields: Sequence[str],
    start: datetime,
    end: datetime,
) -> dict:
    """The documents of [start, end) whose level is an error, or that have no level field at all
    (normalize then reads the level from the message)."""
    levels = [
        clause
        for level in level_fields
        for clause in _per_type(types.get(level.path, {}), partial(_error_level, level))
    ]
    no_level = {"bool": {"filter": [_states_no_level(level) for level in level_fields]}}
    return {
        "bool": {
            "filter": [time_range(types, timestamp_fields, start, end)],
            "should": [*levels, no_level],
            "minimum_should_match": 1,
        }
    }


def _states_no_level(level: LevelField) -> dict:
    """The field is absent, or holds a number that states no level (OTel's severity_number 0, which the
    filelog receiver writes when no parser set one): normalize then reads the level from the message."""
    absent = {"bool": {"must_not": [{"exists": {"field": level.path}}]}}
    if not level.unset_numbers:
        return absent
    unset = {"terms": {level.path: list(level.unset_numbers)}}
    return {"bool": {"should": [absent, unset], "minimum_should_match": 1}}


def time_range(types: FieldTypes, timestamp_fields: Iterable[str], start: datetime, end: datetime) -> dict:
    """The documents whose timestamp, in any of `timestamp_fields`, lies in [start, end)."""
    clauses = [
        clause
        for path in timestamp_fields
        for clause in _per_type(types.get(path, {}), partial(_time, path, start, end))
    ]
    return {"bool": {"should": clauses, "minimum_should_match": 1}}


def _per_type(kinds: Mapping[str, tuple[str, ...]], clause: Callable[[str], dict | None]) -> list[dict]:
    """One field's clauses, one per type it is mapped as; each limited to the indices of its type when
    the indices disagree. The `_index` filter is rewritten to match nothing on the other indices'
    shards before the clause beside it is parsed there, so those shards never see a clause they reject."""
    clauses = []
    for kind, indices in sorted(kinds.items()):
        built = clause(kind)
        if built is None:
            continue
        if len(kinds) > 1 and indices:
            built = {"bool": {"filter": [{"terms": {"_index": list(indices)}}, built]}}
        clauses.append(built)
    return clauses


def _error_level(level: LevelField, kind: str) -> dict | None:
    path = level.path
    if kind in KEYWORD_TYPES:
        words = [{"term": {path: {"value": word, "case_insensitive": True}}} for word in sorted(ERROR_LEVELS)]
        if level.error_numbers is not None:
            words.extend(_numbers_as_text(path, level.error_numbers))
        return {"bool": {"should": words, "minimum_should_match": 1}}
    if kind in TEXT_TYPES:  # analysed: the words match whatever their case
        return {"match": {path: {"query": " ".join(sorted(ERROR_LEVELS)), "operator": "or"}}}
    if kind in NUMERIC_TYPES and level.error_numbers is not None:
        low, high = level.error_numbers
        bounds = {name: value for name, value in (("gte", low), ("lte", high)) if value is not None}
        return {"range": {path: bounds}}
    return None


def _numbers_as_text(path: str, error_numbers: tuple[float | None, float | None]) -> list[dict]:
    """The clause for error numbers a keyword field holds as text (pino's `50` indexed into a template
    that maps `level` as a keyword): whole numbers only, compared as numbers, not as strings."""
    low, high = (None if bound is None else math.ceil(bound) for bound in error_numbers)
    low = max(low or 0, 0)
    if high is not None:
        values = [str(n) for n in range(low, high + 1)] if high - low < 100 else []
        return [{"terms": {path: values}}] if values else []
    return [{"regexp": {path: at_least(low)}}]


def at_least(low: int) -> str:
    """A Lucene regular expression of the whole numbers (decimal, no leading zeros) >= `low`: `5[0-9]`,
    `[6-9][0-9]` and every longer number for 50."""
    digits = str(low)
    shapes = [
        digits[:i]
        + (f"[{digit}-9]" if i == len(digits) - 1 else f"[{int(digit) + 1}-9][0-9]{{{len(digits) - i - 1}}}")
        for i, digit in enumerate(digits)
        if i == len(digits) - 1 or digit != "9"
    ]
    shapes.append(f"[1-9][0-9]{{{len(digits)},}}")
    return "|".join(shapes)


def _time(path: str, start: datetime, end: datetime, kind: str) -> dict | None:
    if kind in DATE_TYPES:
        return {"range": {path: {"gte": _iso_time(start), "lt": _iso_time(end), "format": ISO_FORMAT}}}
    if kind in NUMERIC_TYPES:  # epoch milliseconds (Vector's `timestamp_format = "unix_ms"`)
        return {"range": {path: {"gte": _epoch_millis(start), "lt": _epoch_millis(end)}}}
    if kind in KEYWORD_TYPES:  # ISO strings in UTC, as shippers write them, sort as their times do
        return {"range": {path: {"gte": _sortable(start), "lt": _sortable(end)}}}
    return None


def _iso_time(dt: datetime) -> str:
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _epoch_millis(dt: datetime) -> int:
    return (utc(dt) - _EPOCH) // timedelta(milliseconds=1)


def _sortable(dt: datetime) -> str:
    """A bound that sorts among ISO strings as its time does: no fraction when it has none, so that every
    string of that second (`…T09:00:00Z`, `…T09:00:00+00:00`, `…T09:00:00.5Z`) sorts after it; with
    `.000000Z` the `+` one would sort before."""
    moment = utc(dt)
    return moment.strftime("%Y-%m-%dT%H:%M:%S" + (".%f" if moment.microsecond else ""))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
