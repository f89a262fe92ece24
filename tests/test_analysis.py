"""The hot path (core/analysis.py and the stages it runs) counts exactly what the per-event analysis
counted (tests/oracle.py): the same incidents with their samples, templates and trace ids, the same
minute counts, input statistics and problem classes, over the 8-day demo and the shipper corpus; the
same fingerprint for generated messages; and a backfill writes the same reports, byte for byte but
for its duration."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import oracle
import pytest
from embedded import components
from hypothesis import given
from hypothesis import strategies as st
from shippers.corpus import CASES, DAY, DAY_END, document_id
from test_properties import SETTINGS, documents, hostile

from core import demo
from core.analysis import Analyser, RangeCounts
from core.classify import Classifier
from core.fetch import NdjsonSource
from core.fingerprint import Fingerprinter
from core.layout import DETECTED, Layout
from core.model import InputStats
from core.pipeline import backfill

DEMO_END = date(2025, 1, 8)
DEMO_DAYS = 8


class Documents:
    """A source of the given documents, whatever the range (normalize and the aggregator decide)."""

    def __init__(self, docs: Iterable[Any]) -> None:
        self.docs = list(docs)

    def fetch(self, start: datetime, end: datetime, stats: InputStats) -> Iterator[Any]:
        for doc in self.docs:
            stats.fetched += 1
            yield doc


def counts(
    analyser_type: type[Analyser], source: Any, start: datetime, end: datetime, **options: Any
) -> RangeCounts:
    analyser = analyser_type(source, Fingerprinter(), Classifier(), **options)
    return analyser.count(start, end)


def assert_same(ours: RangeCounts, theirs: RangeCounts) -> None:
    ours_analysis = ours.aggregator.result(ours.stats)
    theirs_analysis = theirs.aggregator.result(theirs.stats)
    assert ours_analysis.stats == theirs_analysis.stats
    assert ours_analysis.minute_counts == theirs_analysis.minute_counts
    assert len(ours_analysis.incidents) == len(theirs_analysis.incidents)
    for mine, theirs_incident in zip(ours_analysis.incidents, theirs_analysis.incidents, strict=True):
        assert mine == theirs_incident
    assert list(ours.classes.items()) == list(theirs.classes.items())


@pytest.fixture(scope="module")
def demo_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.ndjson"
    demo.generate(path, DEMO_END, days=DEMO_DAYS, seed=42, scale=0.1)
    return path


def demo_days() -> list[tuple[datetime, datetime]]:
    first = datetime(DEMO_END.year, DEMO_END.month, DEMO_END.day, tzinfo=UTC) - timedelta(days=DEMO_DAYS - 1)
    return [(first + timedelta(days=i), first + timedelta(days=i + 1)) for i in range(DEMO_DAYS)]


@pytest.mark.parametrize("workers", [1, 2])
def test_every_day_of_the_demo_counts_as_before(demo_path: Path, workers: int) -> None:
    source = NdjsonSource(demo_path)
    for start, end in demo_days():
        theirs = counts(oracle.Analyser, source, start, end, workers=workers)
        assert theirs.stats.accepted > 1000
        assert_same(counts(Analyser, source, start, end, workers=workers), theirs)


LAYOUTS: list[Layout | None] = [None, *DETECTED, DETECTED[1:]]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: getattr(layout, "name", str(layout)))
def test_the_shipper_corpus_counts_as_before(layout: Layout | None) -> None:
    docs = [
        {"_id": document_id(case, n), "_source": doc}
        for case in CASES
        for n, doc in enumerate(case.documents)
    ]
    source = Documents(docs)
    theirs = counts(oracle.Analyser, source, DAY, DAY_END, fields=layout)
    assert_same(counts(Analyser, source, DAY, DAY_END, fields=layout), theirs)
    # The documents' own bytes, as the file source reads them.
    source = Documents(json.loads(json.dumps(docs)))
    assert_same(counts(Analyser, source, DAY, DAY_END, fields=layout), theirs)


@SETTINGS
@given(st.lists(documents(), max_size=8), st.sampled_from(LAYOUTS))
def test_generated_documents_count_as_before(docs: list[Any], layout: Layout | None) -> None:
    start, end = datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)
    assert_same(
        counts(Analyser, Documents(docs), start, end, fields=layout, max_message_bytes=256),
        counts(oracle.Analyser, Documents(docs), start, end, fields=layout, max_message_bytes=256),
    )


@SETTINGS
@given(st.one_of(hostile, st.sampled_from(["0x1f at 10.0.0.1", "took 100ms", "id 0a0b-1c2d"])), st.none())
def test_a_message_keeps_its_fingerprint(message: str, error_type: str | None) -> None:
    fingerprinter = Fingerprinter()
    assert fingerprinter.fingerprint(message, error_type) == oracle.fingerprint(
        fingerprinter, message, error_type
    )


_TIMINGS = re.compile(rb'Duration: [0-9.]+ s|"duration_s": ?[0-9.]+|"value": ?"[0-9.]+ min"')
"""The run's own duration, in the TXT and JSON reports and the Teams summary: all that may differ."""


def test_a_backfill_writes_the_same_reports(demo_path: Path, tmp_path: Path) -> None:
    written: dict[str, dict[str, bytes]] = {}
    days = [start.date() for start, _ in demo_days()]
    now = datetime(2025, 1, 9, 6, tzinfo=UTC)
    for name, analyser_type in (("ours", Analyser), ("theirs", oracle.Analyser)):
        directory = tmp_path / name
        directory.mkdir()
        c = components(directory, NdjsonSource(demo_path))
        c = dataclasses.replace(c, analyser=analyser_type(c.analyser.source, Fingerprinter(), Classifier()))
        outcome = backfill(c, days, directory / "reports", dry_run=False, now=now)
        assert outcome.ok, outcome.failed
        written[name] = {
            str(path.relative_to(directory)): path.read_bytes()
            for path in sorted(directory.rglob("*"))
            if path.is_file() and path.suffix != ".db"
        }
    assert written["ours"].keys() == written["theirs"].keys()
    assert any(name.endswith(".json") for name in written["ours"])
    for name, ours in written["ours"].items():
        assert _TIMINGS.sub(b"", ours) == _TIMINGS.sub(b"", written["theirs"][name]), name
