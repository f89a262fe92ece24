"""The shipper corpus (tests/shippers/corpus.py) through normalize and through a whole run from an NDJSON
file: every document each shipper writes by default is read as a person would read it — the workload
that produced it, whether it is an error, its message — and a stack trace split into one record per
line is one event. The same corpus goes through the real Elasticsearch in
tests/integration/test_shippers_elasticsearch.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from embedded import components
from shippers.checks import check_events, check_incidents, check_only_named_workloads
from shippers.corpus import CASES, DAY, DAY_END, SAME_JOB, ShipperCase, case

from core.fetch import NdjsonSource
from core.model import Analysis, InputStats
from core.normalize import normalize
from core.pipeline import analyse

SINGLE = [c for c in CASES if c.single]
SPLIT = [c for c in CASES if not c.single]


def by_id(shipper_case: ShipperCase) -> str:
    return shipper_case.id


def test_the_corpus_covers_every_shipper_and_both_outcomes() -> None:
    shippers = {c.index for c in CASES}
    assert shippers == {
        "filebeat",
        "elastic-agent",
        "logstash",
        "fluent-bit",
        "vector",
        "vector-unix-ms",
        "otel",
        "otel-ecs",
    }
    assert len({c.id for c in CASES}) == len(CASES)
    assert any(c.error for c in CASES) and any(not c.error for c in CASES)
    assert SPLIT, "a stack trace split into one record per line"


@pytest.mark.parametrize("shipper_case", SINGLE, ids=by_id)
def test_normalize_reads_each_document_as_a_person_would(shipper_case: ShipperCase) -> None:
    stats = InputStats()
    check_events(shipper_case, normalize(shipper_case.documents, stats))
    if not shipper_case.error:  # read, and left out for its level: not dropped as unreadable
        assert stats.skipped == {"not_error_level": 1}, f"{shipper_case.id}: skipped as {stats.skipped}"


def write_ndjson(path: Path, cases: list[ShipperCase] | tuple[ShipperCase, ...]) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for shipper_case in cases:
            for document in shipper_case.documents:
                out.write(json.dumps(document) + "\n")
    return path


@pytest.fixture(scope="module")
def file_run(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    """One run over an NDJSON file holding the whole corpus, every shipper mixed, in corpus order."""
    directory = tmp_path_factory.mktemp("shippers")
    source = NdjsonSource(write_ndjson(directory / "shippers.ndjson", CASES))
    return analyse(components(directory, source), DAY, DAY_END).analysis


@pytest.mark.parametrize("shipper_case", CASES, ids=by_id)
def test_a_run_from_an_ndjson_file_counts_each_case_under_its_workload(
    file_run: Analysis, shipper_case: ShipperCase
) -> None:
    check_incidents(shipper_case, file_run.incidents)


def test_a_run_from_an_ndjson_file_names_no_other_workload(file_run: Analysis) -> None:
    check_only_named_workloads(file_run.incidents)


def test_a_run_from_an_ndjson_file_reads_every_document(file_run: Analysis) -> None:
    stats = file_run.stats
    skipped = {reason: n for reason, n in stats.skipped.items() if reason != "not_error_level"}
    assert stats.fetched == sum(len(c.documents) for c in CASES)
    assert not skipped, f"documents dropped as unreadable: {skipped}"


@pytest.mark.parametrize("shipper_case", SPLIT, ids=by_id)
def test_a_stack_trace_split_into_records_is_one_event(tmp_path: Path, shipper_case: ShipperCase) -> None:
    source = NdjsonSource(write_ndjson(tmp_path / "trace.ndjson", [shipper_case]))
    incidents = analyse(components(tmp_path, source), DAY, DAY_END).analysis.incidents
    assert [(str(i.workload), i.count) for i in incidents] == [(shipper_case.workload, 1)], (
        f"{shipper_case.id}: {len(shipper_case.documents)} records of one trace gave "
        f"{[(str(i.workload), i.count, i.samples[0][:50]) for i in incidents]}"
    )
    assert incidents[0].samples[0].startswith(shipper_case.message)


def test_one_pod_is_one_workload_whichever_shipper_wrote_it(tmp_path: Path) -> None:
    same = [case(case_id) for case_id in SAME_JOB]
    source = NdjsonSource(write_ndjson(tmp_path / "same.ndjson", same))
    incidents = analyse(components(tmp_path, source), DAY, DAY_END).analysis.incidents
    assert {str(i.workload) for i in incidents} == {same[0].workload}
    assert sum(i.count for i in incidents) == len(same)
