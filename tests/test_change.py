"""What changed: a new or regressed problem that followed a rollout of a new image tag of its workload
says so, read from the file source's documents of every level (tests/rollouts.py: each shipper's
documents, with the page their shape is from). The same cases against the real Elasticsearch are in
tests/integration/test_change_elasticsearch.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from rollouts import (
    API,
    API_WORKLOAD,
    NEW_TAG,
    PROBLEM,
    PROBLEM_FIRST_SEEN,
    WORKER,
    rollout,
    summary,
    write_ndjson,
)

from core.change import (
    ChangeConfig,
    Rollout,
    Subject,
    explain,
    image_reference,
    sentence,
    sightings,
    subjects,
)
from core.fetch import NdjsonSource, SourceUnavailable
from core.model import Workload
from core.pipeline import what_changed
from core.redact import Redactor
from core.report.model import ProblemSummary

SHIPPERS = ("filebeat", "fluent-bit", "vector", "otel")


def changes(tmp_path: Path, docs: list[dict], config: ChangeConfig | None = None) -> dict[str, str]:
    source = NdjsonSource(write_ndjson(tmp_path / "logs.ndjson", docs))
    return explain([Subject(PROBLEM, API_WORKLOAD, PROBLEM_FIRST_SEEN)], source, config or ChangeConfig())


@pytest.mark.parametrize("shipper", SHIPPERS)
def test_a_rollout_four_minutes_before_the_first_occurrence_is_named(tmp_path: Path, shipper: str) -> None:
    # The new pod's first line is an INFO line: only documents of every level show when it started.
    assert changes(tmp_path, rollout(shipper)) == {
        PROBLEM: f"first seen 4 min after {API} rolled out {NEW_TAG}"
    }


@pytest.mark.parametrize("shipper", SHIPPERS)
def test_no_earlier_tag_is_no_rollout(tmp_path: Path, shipper: str) -> None:
    """A workload first seen with its only tag was started, not rolled out."""
    assert changes(tmp_path, rollout(shipper, old_tag=False)) == {}


@pytest.mark.parametrize("shipper", SHIPPERS)
def test_a_rollout_outside_the_window_is_not_named(tmp_path: Path, shipper: str) -> None:
    # 44 min before the error: outside the default 30, inside a 45-minute window.
    docs = rollout(shipper, new_at="09:20:00.000")
    assert changes(tmp_path, docs) == {}
    assert changes(tmp_path, docs, ChangeConfig(window=timedelta(minutes=45))) == {
        PROBLEM: f"first seen 44 min after {API} rolled out {NEW_TAG}"
    }


@pytest.mark.parametrize("shipper", SHIPPERS)
def test_another_workloads_rollout_is_not_this_problems_change(tmp_path: Path, shipper: str) -> None:
    assert changes(tmp_path, rollout(shipper, rolled_out=WORKER)) == {}


def test_only_new_and_regressed_problems_are_looked_into_at_their_first_workload() -> None:
    assert subjects([summary("new"), summary("regressed"), summary("recurring")]) == [
        Subject(PROBLEM, API_WORKLOAD, PROBLEM_FIRST_SEEN),
        Subject(PROBLEM, API_WORKLOAD, PROBLEM_FIRST_SEEN),
    ]


def look(problems: list[ProblemSummary], source, window_minutes: int = 30) -> None:
    """What the pipeline does after building a report."""
    report = SimpleNamespace(problems=problems)
    config = ChangeConfig(window=timedelta(minutes=window_minutes))
    what_changed(report, SimpleNamespace(source=source, fields=None), config, Redactor())


def test_the_report_says_what_changed_for_a_new_problem_and_not_for_a_recurring_one(tmp_path: Path) -> None:
    source = NdjsonSource(write_ndjson(tmp_path / "logs.ndjson", rollout("fluent-bit")))
    new, recurring = summary("new"), summary("recurring", "APPLICATION:card_opening:validation_error")
    look([new, recurring], source)
    assert new.change == f"first seen 4 min after {API} rolled out {NEW_TAG}"
    assert recurring.change is None


def test_a_window_of_zero_looks_for_nothing(tmp_path: Path) -> None:
    source = NdjsonSource(write_ndjson(tmp_path / "logs.ndjson", rollout("fluent-bit")))
    new = summary("new")
    look([new], source, window_minutes=0)
    assert new.change is None


class FailingSource:
    def image_documents(self, namespace, start, end):
        raise SourceUnavailable("Elasticsearch http://es:9200 unreachable (timed out)")
        yield  # a generator, as the real sources are


def test_a_source_failure_costs_the_sentence_not_the_report() -> None:
    new = summary("new")
    look([new], FailingSource())
    assert new.change is None


@pytest.mark.parametrize(
    ("image", "tag", "expected"),
    [
        ("registry.example.com/cards/api:1.39.3", None, ("registry.example.com/cards/api", "1.39.3")),
        (
            "registry.example.com:5000/cards/api:1.39.3",
            None,
            ("registry.example.com:5000/cards/api", "1.39.3"),
        ),
        ("registry.example.com:5000/cards/api", "1.39.3", ("registry.example.com:5000/cards/api", "1.39.3")),
        ("api:1.39.3@sha256:5163d0e5ea2f0c3b", None, ("api", "1.39.3")),
        ("api@sha256:5163d0e5ea2f0c3b9a", None, ("api", "sha256:5163d0e5ea2f")),
        ("registry.example.com:5000/cards/api", None, None),
        ("", "1.0", None),
        ("sha256:5163d0e5ea2f0c3b9a", None, None),
    ],
)
def test_image_reference(image: str, tag: str | None, expected) -> None:
    assert image_reference(image, tag) == expected


@pytest.mark.parametrize(
    ("after", "words"),
    [
        (timedelta(seconds=0), "less than 1 min"),
        (timedelta(seconds=59), "less than 1 min"),
        (timedelta(seconds=60), "1 min"),
        (timedelta(minutes=4, seconds=59), "4 min"),
    ],
)
def test_sentence_rounds_minutes_down(after: timedelta, words: str) -> None:
    at = PROBLEM_FIRST_SEEN - after
    found = Rollout(API_WORKLOAD, "registry.example.com/cards/card-opening-api", NEW_TAG, "1.39.2", at)
    assert sentence(PROBLEM_FIRST_SEEN, found) == f"first seen {words} after {API} rolled out {NEW_TAG}"


def test_pods_are_attributed_to_their_workload_and_image() -> None:
    seen = sightings(rollout("filebeat"))
    repository = f"registry.example.com:5000/cards/{API}"
    assert set(seen[(API_WORKLOAD, repository)]) == {"1.39.2", NEW_TAG}
    assert set(seen[(Workload("Deployment", "card-opening", WORKER), repository.replace(API, WORKER))]) == {
        "1.39.2"
    }
