"""Tests for core.multiline: a stack trace a shipper wrote one record per line is one event.

The records are shaped as Fluent Bit writes them with the Kubernetes setup its documentation gives
(`multiline.parser docker, cri` on the tail input, which only rejoins lines the runtime split, not a
trace): the `cri` parser (fluent/fluent-bit, src/multiline/flb_ml_parser_cri.c) leaves `time`,
`stream` and `log` per line, the Kubernetes filter (docs.fluentbit.io/manual/pipeline/filters/kubernetes)
adds `kubernetes.pod_name`, `namespace_name`, `container_name` and `labels`; Docker's json-file log
(the `docker` parser) ends every `log` with "\\n". What continues a trace follows Fluent Bit's own
multiline parsers, which a user would have to configure: src/multiline/flb_ml_parser_java.c
(`^[\\t ]+(?:eval )?at `, `^[\\t ]*(?:Caused by|Suppressed):`, `^[\\t ]*... \\d+ (?:more|common
frames omitted)`), flb_ml_parser_python.c (`Traceback (most recent call last):`, `^[\\t ]+File `, the
code line, then the `^(?:[^\\s.():]+\\.)*[^\\s.():]+:` exception line) and flb_ml_parser_go.c
(`panic: `, a blank line, `[signal `, `goroutine \\d+ \\[…\\]:`, frame lines `pkg.Func(` and their
indented file lines).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import zip_longest

from embedded import components

from core.fetch import NdjsonSource
from core.model import InputStats
from core.multiline import MAX_GAP, MAX_LINES
from core.normalize import normalize
from core.pipeline import analyse

START = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
POD = "settlement-worker-6d8f7b9c4d-q8w2z"


def fluent_bit(log: str, after_ms: float = 0, pod: str = POD, container: str = "settlement-worker") -> dict:
    """One line as Fluent Bit writes it without a multiline parser for the application's traces."""
    at = START + timedelta(milliseconds=after_ms)
    return {
        "@timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "time": at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z",
        "stream": "stderr",
        "log": log,
        "kubernetes": {
            "pod_name": pod,
            "namespace_name": "batch-processing",
            "container_name": container,
            "labels": {"app.kubernetes.io/name": pod.rsplit("-", 2)[0], "pod-template-hash": "6d8f7b9c4d"},
        },
    }


def lines_of(*lines: str, pod: str = POD, step_ms: float = 0.05, start_ms: float = 0) -> list[dict]:
    return [fluent_bit(line, start_ms + i * step_ms, pod) for i, line in enumerate(lines)]


JAVA = (
    "2026-12-02 08:00:00.101 ERROR 1 --- [pool-3-thread-1] c.e.s.SettlementJob : batch 42 failed",
    "java.lang.IllegalStateException: batch 42 already settled",
    "\tat com.example.settlement.SettlementJob.settle(SettlementJob.java:88)",
    "\tat com.example.settlement.SettlementJob.run(SettlementJob.java:41)",
    "Caused by: java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available",
    "\tat com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:181)",
    "\t... 12 more",
)

PYTHON = (
    "ERROR:settlement.worker:payment 7731 failed",
    "Traceback (most recent call last):",
    '  File "/app/settlement/worker.py", line 57, in settle',
    "    charge(order)",
    '  File "/app/settlement/payments.py", line 12, in charge',
    '    raise ValueError(f"amount must be positive: {amount}")',
    "ValueError: amount must be positive: -5",
)

GO = (
    "panic: runtime error: invalid memory address or nil pointer dereference",
    "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1b2c]",
    "",
    "goroutine 1 [running]:",
    "main.(*Settler).settle(0x0, 0xc0000a2000)",
    "\t/app/settler.go:42 +0x1d",
    "main.main()",
    "\t/app/main.go:12 +0x25",
)


def events_of(docs: list[dict]) -> tuple[list, InputStats]:
    stats = InputStats()
    return list(normalize(docs, stats)), stats


def test_a_java_trace_split_by_fluent_bit_is_one_event_with_the_log_lines_level():
    events, stats = events_of(lines_of(*JAVA))
    assert [e.message for e in events] == ["\n".join(JAVA)]
    assert events[0].timestamp == START and events[0].pod == POD
    # One event read from seven documents: none of them was skipped or unreadable.
    assert (stats.accepted, stats.joined_lines, stats.skipped) == (1, 6, {})


def test_a_java_trace_from_dockers_json_file_keeps_no_empty_lines():
    events, stats = events_of(lines_of(*(line + "\n" for line in JAVA)))
    assert [e.message for e in events] == ["\n".join(JAVA)]
    assert stats.joined_lines == 6


def test_a_python_traceback_after_its_log_line_is_one_event():
    events, stats = events_of(lines_of(*PYTHON))
    assert [e.message for e in events] == ["\n".join(PYTHON)]
    assert (stats.accepted, stats.joined_lines) == (1, 6)


def test_an_uncaught_traceback_ends_at_its_exception_line():
    docs = lines_of(*PYTHON[1:], "INFO:settlement.worker:restarting")
    events, stats = events_of(docs)
    assert [e.message for e in events] == ["\n".join(PYTHON[1:])]
    assert stats.skipped == {"not_error_level": 1}  # the INFO line after it stays a line of its own


def test_a_go_panic_with_its_goroutine_block_is_one_event():
    events, stats = events_of(lines_of(*GO, "exit status 2"))
    assert [e.message for e in events] == ["\n".join(GO)]
    assert stats.joined_lines == len(GO) - 1
    assert stats.skipped == {"not_error_level": 1}  # "exit status 2" is not part of the trace


def test_interleaved_records_of_two_pods_and_two_containers_stay_apart():
    other = "settlement-worker-6d8f7b9c4d-x7k1m"
    mine = lines_of(*JAVA)
    theirs = lines_of(*PYTHON, pod=other)
    sidecar = [fluent_bit(line, i * 0.05, POD, "istio-proxy") for i, line in enumerate(GO)]
    docs = [doc for triple in zip_longest(mine, theirs, sidecar) for doc in triple if doc is not None]
    events, stats = events_of(docs)
    by_stream = {(e.pod, e.container): e.message for e in events}
    assert by_stream == {
        (POD, "settlement-worker"): "\n".join(JAVA),
        (other, "settlement-worker"): "\n".join(PYTHON),
        (POD, "istio-proxy"): "\n".join(GO),
    }
    assert stats.accepted == 3


def test_a_line_further_than_the_gap_from_the_one_before_is_not_joined():
    late = MAX_GAP.total_seconds() * 1000 + 1
    docs = [fluent_bit(JAVA[0]), fluent_bit(JAVA[1], 0.1), fluent_bit(JAVA[2], 0.1 + late)]
    events, stats = events_of(docs)
    assert [e.message for e in events] == ["\n".join(JAVA[:2])]
    assert stats.joined_lines == 1
    assert stats.skipped == {"not_error_level": 1}  # the late frame line, on its own, has no level


def test_the_gap_counts_from_the_latest_joined_line():
    # A long trace may take longer than the gap from its first line to its last.
    step = MAX_GAP.total_seconds() * 1000 * 0.75
    events, stats = events_of(lines_of(*JAVA, step_ms=step))
    assert [e.message for e in events] == ["\n".join(JAVA)]


def test_an_ecs_document_with_the_whole_trace_in_its_message_stays_as_it_is():
    def ecs(message: str, after_ms: float) -> dict:
        at = START + timedelta(milliseconds=after_ms)
        return {
            "@timestamp": at.isoformat().replace("+00:00", "Z"),
            "message": message,
            "log": {"level": "error"},
            "kubernetes": {"namespace": "card-servicing", "pod": {"name": POD}, "container": {"name": "api"}},
        }

    whole_java, whole_python = "\n".join(JAVA), "\n".join(PYTHON[1:])
    # Two whole traces of one pod a few milliseconds apart, the second starting with "Traceback":
    # neither joins the other, although "Traceback" and "\tat" lines continue split traces.
    events, stats = events_of([ecs(whole_java, 0), ecs(whole_python, 5), ecs("\t" + whole_java, 6)])
    assert [e.message for e in events] == [whole_java, whole_python, "\t" + whole_java]
    assert (stats.accepted, stats.joined_lines) == (3, 0)
    # Filebeat without `multiline.*` splits it as Fluent Bit does: then it is joined the same way.
    events, stats = events_of([ecs(line, i * 0.1) for i, line in enumerate(JAVA)])
    assert [e.message for e in events] == [whole_java]


def test_a_trace_longer_than_the_line_cap_keeps_its_first_lines():
    frames = [f"\tat com.example.Loop.step{i}(Loop.java:{i})" for i in range(MAX_LINES + 100)]
    events, stats = events_of(lines_of(JAVA[0], JAVA[1], *frames, step_ms=0.001))
    assert len(events) == 1
    assert events[0].message.split("\n") == [JAVA[0], JAVA[1], *frames[: MAX_LINES - 2]]
    assert stats.joined_lines == len(frames) + 1 and stats.skipped == {}


def test_a_joined_message_stays_within_the_message_size_limit():
    # Two-byte characters: a join measured in characters would pass the limit and lose the event.
    frames = [f"\tat com.example.Zahlung.prüfe{i}(Zahlung.java:{i}) ü€" for i in range(40)]
    stats = InputStats()
    events = list(normalize(lines_of(JAVA[0], *frames), stats, max_message_bytes=1024))
    assert len(events) == 1 and stats.skipped == {} and stats.joined_lines == len(frames)
    kept = events[0].message
    assert len(kept.encode()) <= 1024 and kept.startswith(JAVA[0] + "\n" + frames[0])


def test_a_continuation_line_with_nothing_before_it_is_a_record_of_its_own():
    events, stats = events_of(lines_of(*JAVA[2:4]))
    assert events == [] and stats.skipped == {"not_error_level": 1}
    assert stats.joined_lines == 1


def test_a_split_trace_in_the_ndjson_file_is_one_incident_of_one_problem(tmp_path):
    path = tmp_path / "logs.ndjson"
    docs = lines_of(*JAVA)
    path.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    result = analyse(components(tmp_path, NdjsonSource(path)), START, START + timedelta(minutes=15))
    incidents = result.analysis.incidents
    assert [(i.count, i.workload_name) for i in incidents] == [(1, "settlement-worker")]
    assert len({i.problem_id for i in incidents}) == 1
    assert incidents[0].samples == ["\n".join(JAVA)]
    stats = result.analysis.stats
    assert (stats.fetched, stats.accepted, stats.joined_lines, stats.skipped) == (7, 1, 6, {})
