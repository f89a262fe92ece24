"""Analysis in worker processes (ANALYSIS_WORKERS): the parts of a source cover it exactly once, merged
aggregators equal one aggregator, and a run with two workers equals a run with one."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from click.testing import CliRunner
from embedded import components
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from core import demo
from core.aggregate import Aggregator
from core.classify import Classifier, FlowMap, Taxonomy
from core.cli import backfill_command
from core.fetch import ElasticsearchSource, NdjsonSource, PartFetch, SourceUnavailable
from core.fingerprint import Fingerprinter
from core.model import InputStats
from core.normalize import normalize
from core.pipeline import analyse
from core.store import Store

DAY = date(2026, 2, 9)
START = datetime(2026, 2, 9, tzinfo=UTC)
END = START + timedelta(days=1)
NOW = "2026-02-10T09:15:00"


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "logs.ndjson"
    demo.generate(path, DAY, days=2, seed=7, scale=0.1)
    return path


def doc(n: int, message: str = "ERROR card 4111 1111 1111 1111 declined") -> bytes:
    return json.dumps({"@timestamp": "2026-02-09T08:00:00Z", "n": n, "message": message}).encode()


def read_parts(source: NdjsonSource, parts: int) -> tuple[list[dict], InputStats]:
    stats = InputStats()
    docs: list[dict] = []
    with source.split(START, END, parts) as readers:
        assert len(readers) == parts
        for read in readers:
            docs.extend(read(stats))
    return docs, stats


# --- the NDJSON byte-range split ------------------------------------------------------------------


def test_every_split_of_a_file_reads_each_line_once_wherever_the_boundaries_fall(tmp_path):
    # Lines of different lengths, a blank line, an unreadable line and no newline at the end: with
    # every part count up to the file size, each boundary falls at a line start, inside a line and
    # on a newline somewhere.
    lines = [doc(1), doc(2, "x"), b"", doc(3, "ERROR " + "y" * 40), b"{broken", doc(4)]
    path = tmp_path / "logs.ndjson"
    path.write_bytes(b"\n".join(lines))
    source = NdjsonSource(path)
    whole_stats = InputStats()
    whole = list(source.fetch(START, END, whole_stats))
    assert [d["n"] for d in whole] == [1, 2, 3, 4]
    for parts in range(1, path.stat().st_size + 2):
        docs, stats = read_parts(source, parts)
        assert docs == whole, parts
        assert (stats.fetched, stats.skipped) == (whole_stats.fetched, whole_stats.skipped), parts


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=0, max_value=30), max_size=12),
    parts=st.integers(min_value=1, max_value=9),
    final_newline=st.booleans(),
)
def test_the_parts_of_any_file_are_its_documents_in_file_order(
    tmp_path_factory, lengths, parts, final_newline
):
    lines = [doc(i, "ERROR " + "z" * length) if length else b"" for i, length in enumerate(lengths)]
    path = tmp_path_factory.mktemp("split") / "logs.ndjson"
    path.write_bytes(b"\n".join(lines) + (b"\n" if final_newline and lines else b""))
    source = NdjsonSource(path)
    docs, stats = read_parts(source, parts)
    assert [d["n"] for d in docs] == [i for i, length in enumerate(lengths) if length]
    assert stats.fetched == len(docs)


def test_the_parts_share_the_lines_of_the_range_not_the_bytes_of_the_file(tmp_path):
    # Three days in time order: the middle day is split between the parts, not left to one of them.
    stamps = [f"2026-02-{day:02d}T{hour:02d}:00:00Z" for day in (8, 9, 10) for hour in range(24)]
    path = tmp_path / "logs.ndjson"
    path.write_bytes(
        b"".join(json.dumps({"@timestamp": t, "message": "ERROR x"}).encode() + b"\n" for t in stamps)
    )
    with NdjsonSource(path).split(START, END, 2) as readers:
        per_part = [[d["@timestamp"] for d in read(InputStats())] for read in readers]
    assert per_part == [stamps[24:36], stamps[36:48]]


def test_an_empty_file_gives_empty_parts(tmp_path):
    path = tmp_path / "logs.ndjson"
    path.write_bytes(b"")
    docs, stats = read_parts(NdjsonSource(path), 3)
    assert docs == [] and stats.fetched == 0


@pytest.mark.parametrize("parts", [1, 2, 5, 200])
def test_a_one_line_file_is_read_by_exactly_one_part(tmp_path, parts):
    path = tmp_path / "logs.ndjson"
    path.write_bytes(doc(7) + b"\n")
    source = NdjsonSource(path)
    with source.split(START, END, parts) as readers:
        per_part = [list(read(InputStats())) for read in readers]
    assert sorted(len(docs) for docs in per_part) == [0] * (parts - 1) + [1]
    assert [d["n"] for docs in per_part for d in docs] == [7]


def test_splitting_a_missing_file_is_the_same_clear_error_as_reading_it(tmp_path):
    with (
        pytest.raises(SourceUnavailable, match="nope.ndjson"),
        NdjsonSource(tmp_path / "nope.ndjson").split(START, END, 2),
    ):
        pass


def test_an_elasticsearch_source_without_a_client_factory_cannot_be_split():
    # Checked before a point-in-time is opened: the client is never called.
    source = ElasticsearchSource(client=None, index="logs-k8s-test")  # type: ignore[arg-type]
    with pytest.raises(NotImplementedError, match="client factory"), source.split(START, END, 2):
        pass


# --- merging aggregators --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classified(demo_file):
    """The demo day's events with their fingerprints and problems, in file order."""
    fingerprinter, classifier = Fingerprinter(), Classifier(Taxonomy.default(), FlowMap())
    stats = InputStats()
    out = []
    for event in normalize(NdjsonSource(demo_file).fetch(START, END, stats), stats):
        fp = fingerprinter.fingerprint(event.message, event.error_type)
        out.append((event, fp, classifier.classify(event, fp)))
    assert len(out) > 1000
    return out


def aggregate(items) -> Aggregator:
    aggregator = Aggregator(START, END)
    for event, fp, problem in items:
        aggregator.add(event, fp, problem)
    return aggregator


def test_merged_consecutive_parts_equal_one_aggregator_down_to_the_order_of_templates(classified):
    whole = aggregate(classified).result(InputStats())
    # Many short parts, so that incidents with several templates span parts.
    size = len(classified) // 60
    merged = aggregate(classified[:size])
    for lo in range(size, len(classified), size):
        merged.merge(aggregate(classified[lo : lo + size]))
    result = merged.result(InputStats())
    assert result == whole
    assert [list(i.fingerprints.items()) for i in result.incidents] == [
        list(i.fingerprints.items()) for i in whole.incidents
    ]
    # templates come out in key order, whatever order their lines arrived in
    assert all(list(i.fingerprints) == sorted(i.fingerprints) for i in whole.incidents)
    assert any(len(i.fingerprints) > 1 for i in whole.incidents)


def test_merged_interleaved_parts_equal_one_aggregator(classified):
    # As an Elasticsearch slice gets its documents: any subset, in any order.
    rng = random.Random(3)
    parts: list[list] = [[], [], []]
    for item in classified:
        parts[rng.randrange(3)].append(item)
    for part in parts:
        rng.shuffle(part)
    merged = aggregate(parts[0])
    merged.merge(aggregate(parts[1]))
    merged.merge(aggregate(parts[2]))
    assert merged.result(InputStats()) == aggregate(classified).result(InputStats())


# --- analyse() in worker processes ----------------------------------------------------------------


class PartsSource:
    """A source whose parts are given by the test: the real file's parts (each noting the process
    that read it in `readers_dir`), or a failure."""

    def __init__(
        self,
        path: Path,
        failing_part: PartFetch | None = None,
        *,
        can_split: bool = True,
        readers_dir: Path | None = None,
    ) -> None:
        self.file = NdjsonSource(path)
        self.failing_part = failing_part
        self.can_split = can_split
        self.readers_dir = readers_dir
        self.split_calls = 0

    def describe(self) -> str:
        return "parts"

    def fetch(self, start: datetime, end: datetime, stats: InputStats) -> Iterator[dict]:
        return self.file.fetch(start, end, stats)

    @contextmanager
    def split(self, start: datetime, end: datetime, parts: int) -> Iterator[list[PartFetch]]:
        self.split_calls += 1
        if not self.can_split:
            raise NotImplementedError("this source reads in one piece")
        with self.file.split(start, end, parts) as readers:
            readers = [partial(self._noted, read) for read in readers]
            yield readers[:-1] + [self.failing_part or readers[-1]]

    def _noted(self, read: PartFetch, stats: InputStats) -> Iterator[dict]:
        if self.readers_dir is not None:
            (self.readers_dir / str(os.getpid())).touch()
        return read(stats)


def test_analysis_in_three_workers_equals_analysis_in_one_process(demo_file, tmp_path):
    readers = tmp_path / "readers"
    readers.mkdir()
    source = PartsSource(demo_file, readers_dir=readers)
    one = analyse(components(tmp_path / "one", NdjsonSource(demo_file), 1), START, END)
    three = analyse(components(tmp_path / "three", source, 3), START, END)
    pids = {int(p.name) for p in readers.iterdir()}
    assert len(pids) == 3 and os.getpid() not in pids
    assert three.analysis == one.analysis
    assert list(three.classes.items()) == list(one.classes.items())
    assert three.analysis.stats.skipped and three.analysis.stats == one.analysis.stats
    assert (three.detection, three.chains) == (one.detection, one.chains)


def failing_read(stats: InputStats) -> Iterator[dict]:
    stats.fetched += 1
    raise SourceUnavailable("Elasticsearch http://es.example.com:9200 failed while reading: connection lost")
    yield {}


def dying_read(stats: InputStats) -> Iterator[dict]:
    os._exit(3)
    yield {}


def test_a_workers_error_is_raised_with_its_type_and_message(demo_file, tmp_path):
    c = components(tmp_path, PartsSource(demo_file, failing_read), 2)
    with pytest.raises(SourceUnavailable) as raised:
        analyse(c, START, END)
    assert str(raised.value) == (
        "Elasticsearch http://es.example.com:9200 failed while reading: connection lost"
    )


def test_a_worker_that_dies_is_an_error_naming_it(demo_file, tmp_path):
    c = components(tmp_path, PartsSource(demo_file, dying_read), 2)
    with pytest.raises(RuntimeError, match=r"an analysis worker died"):
        analyse(c, START, END)


def fallback_reasons(logs: list[dict]) -> list[str]:
    return [entry["reason"] for entry in logs if entry["event"] == "analysing in one process"]


def test_a_source_that_cannot_be_split_is_analysed_in_one_process(demo_file, tmp_path):
    source = PartsSource(demo_file, can_split=False)
    with capture_logs() as logs:
        result = analyse(components(tmp_path / "a", source, 2), START, END)
    assert source.split_calls == 1
    assert fallback_reasons(logs) == ["this source reads in one piece"]
    expected = analyse(components(tmp_path / "b", NdjsonSource(demo_file), 1), START, END)
    assert result.analysis == expected.analysis


def test_when_no_process_can_be_started_the_range_is_analysed_in_one_process(
    demo_file, tmp_path, monkeypatch
):
    def refuse(self) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr("multiprocessing.context.ForkProcess.start", refuse)
    result = analyse(components(tmp_path / "a", NdjsonSource(demo_file), 2), START, END)
    expected = analyse(components(tmp_path / "b", NdjsonSource(demo_file), 1), START, END)
    assert result.analysis == expected.analysis


# --- the whole backfill ---------------------------------------------------------------------------


def backfill_with(workers: int, log_file: Path, tmp: Path) -> tuple[dict, dict]:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp / 'state.db'}",
        "LOG_FILE": str(log_file),
        "REGISTRY_DIR": str(tmp / "registry"),
        "EXPORT_DIR": str(tmp / "exports"),
        "BASELINE_DAYS": "1",
        "LOG_FORMAT": "json",
        "ANALYSIS_WORKERS": str(workers),
    }
    args = ["--days", "1", "--output", str(tmp / "reports"), "--now", NOW]
    result = CliRunner().invoke(backfill_command, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (report_file,) = (tmp / "reports").glob("problem_report_*.json")
    report = {
        k: v for k, v in json.loads(report_file.read_text()).items() if k not in {"generated_at", "run"}
    }
    with Store.from_url(env["DATABASE_URL"]) as store:
        return store.snapshot(), report


def test_a_backfill_with_two_workers_equals_one_with_one(demo_file, tmp_path):
    one_state, one_report = backfill_with(1, demo_file, tmp_path / "one")
    two_state, two_report = backfill_with(2, demo_file, tmp_path / "two")
    assert len(one_state["windows"]) == 2 * 96 and one_state["incidents"]
    assert two_state == one_state
    assert one_report["problems"] and two_report == one_report
