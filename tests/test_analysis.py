"""The hot path (core/analysis.py and the stages it runs) counts exactly what the per-event analysis it
replaced counted (tests/oracle.py): the same incidents with their samples, templates and trace ids,
the same minute counts, input statistics and problem classes, over the 8-day demo, the shipper corpus
and generated documents; and a backfill writes the same reports, byte for byte but for its timings."""

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
from hypothesis import given, settings
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
from core.normalize import normalize
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


# Paths the layouts read (and a few they do not), each value spelled as nested objects, dotted keys or
# a mix, some paths spelled twice in one document in either order: the value that wins is the one
# flattening keeps.
_NAMES = st.sampled_from(["payments", "core-db", "", " ", 7, None, {"x": 1}])
_PODS = st.sampled_from(
    ["api-7d4b9c6f5-x2k9q", "postgres-0", "fluent-bit-x2k9q", "nightly-29384720-ab12c", ""]
)
_MESSAGES = st.one_of(
    st.sampled_from(
        [
            "ERROR connection refused to db-1:5432 after 30s",
            'level=error msg="job payments/nightly-1 failed"',
            "Traceback (most recent call last):",
            "\tat com.example.Foo.bar(Foo.java:12)",
            "info: all good",
            "",
            '{"level": "error", "msg": "boom 42"}',
        ]
    ),
    hostile,
)
_LEVELS = st.sampled_from(["error", "ERROR", "info", "50", 50, 17, 0, "", None, {"x": 1}])
_PATHS: dict[str, st.SearchStrategy[Any]] = {
    "@timestamp": st.sampled_from(["2026-02-10T03:00:00.120Z", "2026-02-10T03:00:00.500Z", 1770692400000]),
    "timestamp": st.sampled_from(["2026-02-10T03:00:01Z", "bad"]),
    "kubernetes.namespace": _NAMES,
    "kubernetes.namespace_name": _NAMES,
    "kubernetes.pod_namespace": _NAMES,
    "kubernetes.pod.name": _PODS,
    "kubernetes.pod_name": _PODS,
    "kubernetes.container.name": st.sampled_from(["api", "fluent-bit", ""]),
    "kubernetes.labels.app": st.sampled_from(["cards", "ledger", 3, {"x": "y"}]),
    "kubernetes.labels.app.kubernetes.io/name": st.sampled_from(["cards", "fluent-bit"]),
    "kubernetes.labels.app_kubernetes_io/name": st.sampled_from(["cards", "ledger"]),
    "kubernetes.labels.job-name": st.sampled_from(["nightly-29384720", ""]),
    "kubernetes.pod_labels.pod-template-hash": st.sampled_from(["7d4b9c6f5"]),
    "kubernetes.job.name": st.sampled_from(["nightly-29384720", ""]),
    "kubernetes.cronjob.name": st.sampled_from(["nightly"]),
    "kubernetes.pod_owner": st.sampled_from(["ReplicaSet/api-7d4b9c6f5", "Node/n1"]),
    "resource.attributes.k8s.namespace.name": _NAMES,
    "resource.attributes.k8s.pod.name": _PODS,
    "body.text": _MESSAGES,
    "message": _MESSAGES,
    "msg": _MESSAGES,
    "log": st.one_of(_MESSAGES, st.fixed_dictionaries({"level": _LEVELS})),
    "log.level": _LEVELS,
    "level": _LEVELS,
    "severity_number": _LEVELS,
    "error.type": st.sampled_from(["IOError", "", 5]),
    "trace.id": st.sampled_from(["abc", "def", ""]),
    "trace_id": st.sampled_from(["abc", "xyz"]),
    "agent.name": st.sampled_from(["filebeat"]),
    "kubernetes.node.name": st.sampled_from(["node-1"]),
}


@st.composite
def spelled_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A document whose fields are spelled in any mix of nested objects and dotted keys."""
    doc: dict[str, Any] = {}
    paths = draw(st.lists(st.sampled_from(sorted(_PATHS)), min_size=2, max_size=14))
    for path in ["@timestamp", *paths]:
        parts = path.split(".")
        cuts = draw(st.lists(st.booleans(), min_size=len(parts) - 1, max_size=len(parts) - 1))
        keys, key = [], parts[0]
        for cut, part in zip(cuts, parts[1:], strict=True):
            if cut:
                keys.append(key)
                key = part
            else:
                key = f"{key}.{part}"
        target = doc
        for step in keys:
            if not isinstance(target.get(step), dict):
                target[step] = {}
            target = target[step]
        target[key] = draw(_PATHS[path])
    return doc


def assert_normalized_alike(docs: list[Any], layout: Layout | None) -> None:
    ours_stats, theirs_stats = InputStats(), InputStats()
    ours = list(normalize(docs, ours_stats, layout, max_message_bytes=256))
    theirs = list(oracle.normalize(docs, theirs_stats, layout, max_message_bytes=256))
    assert ours == theirs
    assert ours_stats == theirs_stats
    start, end = datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)
    assert_same(
        counts(Analyser, Documents(docs), start, end, max_message_bytes=256),
        counts(oracle.Analyser, Documents(docs), start, end, max_message_bytes=256),
    )


@SETTINGS
@given(st.lists(documents(), max_size=8), st.sampled_from(LAYOUTS))
def test_generated_documents_normalize_as_before(docs: list[Any], layout: Layout | None) -> None:
    assert_normalized_alike(docs, layout)


@settings(SETTINGS, max_examples=300)
@given(st.lists(spelled_documents(), max_size=8), st.sampled_from(LAYOUTS))
def test_documents_spelled_any_way_normalize_as_before(docs: list[Any], layout: Layout | None) -> None:
    assert_normalized_alike(docs, layout)


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


def test_labels_nested_any_way_are_read_as_before() -> None:
    # Below a labels object every key may be a label: objects there are read whatever their keys.
    def doc(labels: dict[str, Any]) -> dict[str, Any]:
        kubernetes = {"namespace": "cards", "pod": {"name": "api-7d4b9c6f5-x2k9q"}, "labels": labels}
        return {"@timestamp": "2026-02-10T03:00:00Z", "message": "ERROR boom", "kubernetes": kubernetes}

    docs = [
        doc({"app": {"kubernetes.io/name": "cards-api"}}),
        doc({"app": {"kubernetes": {"io/name": "ledger"}}}),
        doc({"app": {"name": "other"}}),  # `app.name` names no app: the workload does
        doc({"app.kubernetes": {"io/name": "fourth"}}),
    ]
    assert_normalized_alike(docs, None)
    apps = [event.app for event in normalize(docs, InputStats())]
    assert apps == ["cards-api", "ledger", "api", "fourth"]
