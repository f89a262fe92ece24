"""The per-event analysis the hot path is compared with (tests/test_analysis.py): every document
flattened whole, one event at a time through fingerprint, classify and the aggregator, each message
fingerprinted with only the digits 1-9 blinded, as before zeros were. Not used by the pipeline."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from core import analysis
from core.aggregate import Aggregator
from core.analysis import RangeCounts
from core.fetch import PartFetch
from core.fingerprint import Fingerprinter, _significant
from core.layout import Layout
from core.model import Event, Fingerprint, InputStats
from core.multiline import join_split_traces
from core.normalize import to_event, to_record


class Analyser(analysis.Analyser):
    """The pipeline's analyser with the per-event hot loop."""

    def _count(self, start: datetime, end: datetime, fetch: PartFetch) -> RangeCounts:
        counted = RangeCounts(Aggregator(start, end), InputStats(), {})
        docs = fetch(counted.stats)
        for event in normalize(docs, counted.stats, self.fields, self.max_message_bytes):
            fp = fingerprint(self.fingerprinter, event.message, event.error_type)
            problem = self.classifier.classify(event, fp)
            counted.classes.setdefault(problem.id, problem)
            counted.aggregator.add(event, fp, problem)
        return counted


_DIGITS_AS_ONE = bytes.maketrans(b"23456789", b"11111111")


def fingerprint(fingerprinter: Fingerprinter, message: str, error_type: str | None = None) -> Fingerprint:
    """A message's fingerprint as it was computed: the digits 1-9 blinded, no cache."""
    error_type = (error_type.strip() or None) if isinstance(error_type, str) else None
    text = _significant(message)
    if fingerprinter._digit_blind:
        blinded = text.encode("utf-8", "surrogatepass").translate(_DIGITS_AS_ONE)
        found = fingerprinter._fingerprint(blinded, error_type)
        if "1" not in found.template and "1" not in (found.exception_type or ""):
            return found
    return fingerprinter._fingerprint(text, error_type)


def normalize(
    docs: Iterable[Any], stats: InputStats, fields: Layout | None, max_bytes: int
) -> Iterator[Event]:
    """`core.normalize.normalize` with every document flattened whole, as before flattening kept to the
    objects the layouts' paths can lie in."""
    records = (record for doc in docs if (record := to_record(doc, stats, fields)) is not None)
    for record in join_split_traces(records, stats, max_bytes):
        event = to_event(record, stats, max_bytes)
        if event is not None:
            stats.accepted += 1
            yield event
