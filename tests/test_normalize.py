"""Tests for core.normalize: both layouts, every skip reason, timestamps and workload attribution."""

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.layout import (
    DETECTED,
    ECS,
    FLUENT_BIT,
    FieldMap,
    field_maps,
    flatten,
    flatten_read,
    infer_level,
    reads,
)
from core.model import InputStats, Workload
from core.normalize import SKIP_REASONS, normalize, parse_timestamp
from core.workload import attribute, is_shipper, workload_named_in, workload_of_pod

TS = "2024-11-14T10:15:30.250Z"
WHEN = datetime(2024, 11, 14, 10, 15, 30, 250000, tzinfo=UTC)


def ecs_doc(**overrides) -> dict:
    doc = {
        "@timestamp": TS,
        "message": "Card 4111 1111 1111 1111 rejected for jane.doe@example.com",
        "log": {"level": "ERROR"},
        "kubernetes": {
            "namespace": "card-servicing",
            "pod": {"name": "card-servicing-api-7c9dbf8d5x-k2p9z"},
            "container": {"name": "card-servicing-api"},
            "labels": {"app_kubernetes_io/name": "card-servicing", "pod-template-hash": "7c9dbf8d5x"},
        },
        "error": {"type": "com.example.CardValidationException"},
        "trace": {"id": "4bf92f3577b34da6a3ce929d0e0e4736"},
    }
    doc.update(overrides)
    return doc


def fluent_doc(log: str = "ERROR settlement failed for batch 42", **kubernetes) -> dict:
    meta = {
        "namespace_name": "batch-processing",
        "pod_name": "batch-scheduler-6d8f7b9c4d-q8w2z",
        "container_name": "batch-scheduler",
        "labels": {"app.kubernetes.io/name": "batch-scheduler", "pod-template-hash": "6d8f7b9c4d"},
    }
    meta.update(kubernetes)
    return {"time": "2024-11-14T10:15:30.250000000Z", "stream": "stderr", "log": log, "kubernetes": meta}


def one(doc, fields: FieldMap | None = None, max_message_bytes: int = 65536):
    stats = InputStats()
    events = list(normalize([doc], stats, fields, max_message_bytes))
    return (events[0] if events else None), stats


def test_ecs_nested_document_becomes_an_attributed_event():
    event, stats = one({"_id": "doc-1", "_source": ecs_doc()})
    assert stats.accepted == 1 and stats.skipped == {}
    assert event.timestamp == WHEN
    assert event.namespace == "card-servicing"
    assert event.pod == "card-servicing-api-7c9dbf8d5x-k2p9z"
    assert event.container == "card-servicing-api"
    assert event.workload == Workload("Deployment", "card-servicing", "card-servicing-api")
    assert event.app == "card-servicing"
    assert event.level == "error"
    assert event.error_type == "com.example.CardValidationException"
    assert event.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert event.doc_id == "doc-1"


def test_ecs_dotted_flat_keys_read_like_nested_ones():
    flat = {
        "@timestamp": TS,
        "message": "Upstream returned 502",
        "log.level": "error",
        "kubernetes.namespace": "customer-portal",
        "kubernetes.pod.name": "customer-portal-web-5f6d7c8b9x-abcde",
        "kubernetes.container.name": "web",
        "kubernetes.labels.app_kubernetes_io/name": "portal",
        "kubernetes.labels.pod-template-hash": "5f6d7c8b9x",
        "trace.id": "0af7651916cd43dd8448eb211c80319c",
    }
    event, _ = one(flat)
    assert event.workload == Workload("Deployment", "customer-portal", "customer-portal-web")
    assert event.app == "portal"
    assert event.trace_id == "0af7651916cd43dd8448eb211c80319c"


def test_mixed_nested_and_dotted_keys():
    doc = {
        "@timestamp": TS,
        "message": "boom ERROR",
        "kubernetes": {"namespace": "payments", "pod.name": "kafka-1"},
    }
    event, _ = one(doc)
    assert event.workload == Workload("StatefulSet", "payments", "kafka")


def test_fluent_bit_layout_with_level_inferred_from_the_line():
    event, stats = one(fluent_doc())
    assert stats.accepted == 1
    assert event.timestamp == WHEN
    assert event.namespace == "batch-processing"
    assert event.workload == Workload("Deployment", "batch-processing", "batch-scheduler")
    assert event.message == "ERROR settlement failed for batch 42"
    assert event.level == "error"


def test_fluent_bit_level_field_and_trace_id():
    doc = fluent_doc("settlement failed") | {"level": "CRITICAL", "trace_id": "abc123"}
    event, _ = one(doc)
    assert event.level == "critical"
    assert event.trace_id == "abc123"


def test_forced_field_map_ignores_the_other_layout():
    event, stats = one(fluent_doc(), fields=ECS)
    assert event is None and stats.skipped == {"missing_timestamp": 1}


def test_field_map_override_and_presets():
    custom = ECS.override({"message": "msg, message", "namespace": ["k8s.ns"]})
    assert custom.message == ("msg", "message") and custom.namespace == ("k8s.ns",)
    event, _ = one(
        {"@timestamp": TS, "msg": "Fatal: disk full", "log": {"level": "fatal"}, "k8s": {"ns": "x"}}, custom
    )
    assert event.namespace == "x" and event.message == "Fatal: disk full"
    assert FieldMap.preset("fluent-bit") is FLUENT_BIT and FieldMap.preset("ECS") is ECS
    with pytest.raises(ValueError, match="unknown field layout"):
        FieldMap.preset("splunk")
    with pytest.raises(ValueError, match="unknown field"):
        ECS.override({"mesage": "m"})


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (["not", "a", "dict"], "not_an_object"),
        ({"_id": "x", "_source": "text"}, "not_an_object"),
        (ecs_doc(**{"@timestamp": None}), "missing_timestamp"),
        (ecs_doc(**{"@timestamp": "yesterday-ish"}), "bad_timestamp"),
        (ecs_doc(**{"@timestamp": True}), "bad_timestamp"),
        (ecs_doc(**{"@timestamp": {"nested": 1}}), "bad_timestamp"),
        (ecs_doc(kubernetes={"pod": {"name": "p"}}), "missing_namespace"),
        (ecs_doc(kubernetes={"namespace": ["a", "b"]}), "missing_namespace"),
        (ecs_doc(message="   "), "missing_message"),
        (ecs_doc(message=12345), "missing_message"),
        (ecs_doc(message=None), "missing_message"),
        (ecs_doc(message="\x00\x01binary\x02"), "binary_message"),
        (ecs_doc(message="\x01\x02\x03\x04ab"), "binary_message"),
        (ecs_doc(log={"level": "info"}), "not_error_level"),
        (ecs_doc(log={"level": "WARNING"}), "not_error_level"),
        (fluent_doc("all good, 3 files shipped"), "not_error_level"),
    ],
)
def test_bad_input_is_skipped_with_a_reason(doc, reason):
    event, stats = one(doc)
    assert event is None
    assert stats.skipped == {reason: 1} and stats.accepted == 0
    assert reason in SKIP_REASONS


def test_message_too_large_counts_utf8_bytes():
    message = "é" * 600  # 1200 bytes in UTF-8, 600 characters
    assert one(ecs_doc(message=message), max_message_bytes=1000)[1].skipped == {"message_too_large": 1}
    assert one(ecs_doc(message=message), max_message_bytes=1200)[1].accepted == 1


def test_stream_continues_after_bad_documents():
    stats = InputStats()
    events = list(normalize([ecs_doc(), None, ecs_doc(message=""), ecs_doc()], stats))
    assert len(events) == 2 and stats.accepted == 2
    assert stats.skipped == {"not_an_object": 1, "missing_message": 1}


def test_lone_surrogates_from_json_escapes_become_replacement_characters():
    # `json.loads('"\\ud83d"')` gives a lone surrogate: a string cut inside an emoji by the logging app.
    doc = json.loads(
        '{"@timestamp": "2024-11-14T10:15:30Z", "message": "ERROR payment failed \\ud83d", "kubernetes": '
        '{"namespace": "card\\udc00", "pod": {"name": "api-\\ud800"}, "labels": {"app": "x\\ud83d"}}}'
    )
    event, stats = one(doc)
    assert stats.accepted == 1
    assert event.message == "ERROR payment failed \ufffd"
    assert (event.namespace, event.pod, event.app) == ("card\ufffd", "api-\ufffd", "x\ufffd")
    # A proper pair stays the character it encodes.
    assert one(ecs_doc(message=json.loads('"ERROR \\ud83d\\ude00"')))[0].message == "ERROR \U0001f600"


def test_ansi_colours_are_not_binary():
    event, _ = one(ecs_doc(message="\x1b[31mERROR\x1b[0m connection refused by db.example.com:5432"))
    assert event is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-11-14T10:15:30Z", datetime(2024, 11, 14, 10, 15, 30, tzinfo=UTC)),
        ("2024-11-14T12:15:30+02:00", datetime(2024, 11, 14, 10, 15, 30, tzinfo=UTC)),
        ("2024-11-14T10:15:30.123456789Z", datetime(2024, 11, 14, 10, 15, 30, 123456, tzinfo=UTC)),
        ("2024-11-14 10:15:30", datetime(2024, 11, 14, 10, 15, 30, tzinfo=UTC)),
        (1731579330250, datetime(2024, 11, 14, 10, 15, 30, 250000, tzinfo=UTC)),
        ("1731579330250", datetime(2024, 11, 14, 10, 15, 30, 250000, tzinfo=UTC)),
        (1731579330.25, datetime(2024, 11, 14, 10, 15, 30, 250000, tzinfo=UTC)),
        ("not a time", None),
        ("9999-12-31T23:00:00-05:00", None),  # after year 9999 in UTC
        ("0001-01-01T00:00:00+01:00", None),  # before year 1 in UTC
        (10**30, None),
        (False, None),
    ],
)
def test_parse_timestamp(value, expected):
    parsed = parse_timestamp(value)
    assert parsed == expected
    assert parsed is None or parsed.tzinfo == UTC


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.lists(st.integers())))
def test_normalize_never_raises_on_odd_values(value):
    stats = InputStats()
    for doc in (
        ecs_doc(message=value),
        ecs_doc(**{"@timestamp": value}),
        ecs_doc(log={"level": value}),
        value,
    ):
        list(normalize([doc], stats))
    assert stats.accepted + stats.skipped_total == 4


@pytest.mark.parametrize(
    ("message", "level"),
    [
        ("2024-11-14 10:00:00.123 ERROR 1 --- [main] c.e.App : boom", "error"),
        ("2024-11-14 10:00:00.123 UTC [4711] app@db FATAL:  too many clients", "fatal"),
        ("[2024/11/14 10:00:00] [error] [engine] failed to flush chunk", "error"),
        ("[2024/11/14 10:00:00] [ info] [input] started", "info"),
        ('ts=2024-11-14T10:00:00Z level=warn msg="slow"', "warn"),
        ("E1114 10:00:00.123456       1 reflector.go:147] failed to watch", "error"),
        ("I1114 10:00:00.123456       1 main.go:10] started with ERROR budget", "info"),
        ("Traceback (most recent call last):\n  File x\nKeyError: 'id'", "error"),
        ("java.lang.IllegalStateException: closed", "error"),
        ("INFO retrying after an ERROR", "info"),
        ("all good", None),
    ],
)
def test_infer_level(message, level):
    assert infer_level(message) == level


# --- levels: each shipper's and logging library's way of stating one -------------------------------


def level_of(level_fields: dict, message: str = "settlement failed for batch 42") -> str | None:
    """The level normalize keeps for an ECS document whose level only `level_fields` state (None: skipped as
    not error level). The level step reads the same fields in every layout, so the rest of the document
    is Filebeat's Kubernetes metadata whatever shipper the level fields come from."""
    doc = ecs_doc(message=message)
    del doc["log"]
    doc.update(level_fields)
    event, stats = one(doc)
    assert event is not None or stats.skipped == {"not_error_level": 1}
    return event.level if event else None


def level_in_line(line: str) -> str | None:
    """The level normalize keeps for a Fluent Bit document whose `log` line is all there is to read."""
    event, stats = one(fluent_doc(line))
    assert event is not None or stats.skipped == {"not_error_level": 1}
    return event.level if event else None


def test_google_cloud_severity():
    # Google Cloud structured logging (cloud.google.com/logging/docs/structured-logging): a JSON line's
    # `severity` is a LogSeverity name
    # (cloud.google.com/logging/docs/reference/v2/rest/v2/LogEntry#logseverity): DEFAULT, DEBUG, INFO,
    # NOTICE, WARNING, ERROR, CRITICAL, ALERT, EMERGENCY. Elastic Agent's ndjson parser puts the line's keys
    # at the document root.
    assert level_of({"severity": "ERROR"}) == "error"
    assert level_of({"severity": "EMERGENCY"}) == "emergency"
    assert level_of({"severity": "WARNING"}) is None
    assert (
        level_of({"severity": "INFO"}, message="ERROR budget at 80%") is None
    )  # the field wins over the text


def test_logstash_grok_log_level():
    # Logstash `grok { match => { "message" => "%{LOGLEVEL:log_level} %{GREEDYDATA:message}" } }`: LOGLEVEL in
    # logstash-plugins/logstash-patterns-core patterns/ecs-v1/grok-patterns matches words such as ERROR, Err,
    # CRIT, Emergency, WARN, Info, and grok stores the word as it is.
    assert level_of({"log_level": "ERROR"}) == "error"
    assert level_of({"log_level": "Emergency"}) == "emergency"
    assert level_of({"log_level": "WARN"}) is None


def test_python_json_logger_levelname():
    # python-json-logger (github.com/nhairs/python-json-logger, README): JsonFormatter("%(levelname)s
    # %(message)s") writes {"levelname": "ERROR", "message": ...}, with logging's level names DEBUG, INFO,
    # WARNING, ERROR, CRITICAL.
    assert level_of({"levelname": "CRITICAL"}) == "critical"
    assert level_of({"levelname": "WARNING"}) is None


def test_loglevel():
    assert level_of({"loglevel": "ERROR"}) == "error"
    assert level_of({"loglevel": "info"}) is None


def test_pino_and_bunyan_numeric_levels():
    # pino lib/constants.js DEFAULT_LEVELS: trace 10, debug 20, info 30, warn 40, error 50, fatal 60; bunyan's
    # README ("Levels") uses the same numbers. Fluent Bit's Merge_Log keeps them JSON numbers at the root;
    # a pipeline that stores text has "50".
    assert level_of({"level": 50}) == "error"
    assert level_of({"level": 60}) == "error"
    assert level_of({"level": "50"}) == "error"
    assert level_of({"level": 40}) is None
    assert level_of({"level": 30}, message="ERROR budget at 80%") is None


def test_opentelemetry_severity():
    # OTel logs data model (opentelemetry.io/docs/specs/otel/logs/data-model/#field-severitynumber):
    # 0 UNSPECIFIED, 1-4 TRACE, 5-8 DEBUG, 9-12 INFO, 13-16 WARN, 17-20 ERROR, 21-24 FATAL. The collector's
    # elasticsearch exporter in `otel` mode (opentelemetry-collector-contrib,
    # exporter/elasticsearchexporter/internal/encoder/log/otel.go) writes `severity_text` when the record
    # has one and `severity_number` always, 0 included.
    assert level_of({"severity_text": "Error", "severity_number": 17}) == "error"
    assert level_of({"severity_number": 21}) == "error"
    assert level_of({"severity_number": 13}) is None
    assert level_of({"severity_text": "INFO", "severity_number": 9}, message="ERROR budget at 80%") is None
    # UNSPECIFIED (the filelog receiver without a severity parser) states no level: the message does.
    assert level_of({"severity_number": 0}, message="ERROR settlement failed") == "error"
    assert level_of({"severity_number": 0}) is None


def test_opentelemetry_ecs_mode_severity():
    # The exporter's `ecs` mode (encoder/log/ecs.go) writes the record's severity text as `log.level` and its
    # severity number, unless UNSPECIFIED, as `event.severity`.
    assert level_of({"log": {"level": "ERROR"}, "event": {"severity": 17}}) == "error"
    assert level_of({"event": {"severity": 18}}) == "error"
    assert level_of({"event": {"severity": 9}}) is None


def test_syslog_severity_code():
    # ECS log.syslog.severity.code (elastic.co/docs/reference/ecs/ecs-log): the syslog numeric severity of
    # RFC 5424 table 2: 0 Emergency, 1 Alert, 2 Critical, 3 Error, 4 Warning, 5 Notice, 6 Informational,
    # 7 Debug.
    assert level_of({"log": {"syslog": {"severity": {"code": 3, "name": "Error"}}}}) == "error"
    assert level_of({"log.syslog.severity.code": 0}) == "error"
    assert level_of({"log": {"syslog": {"severity": {"code": 4, "name": "Warning"}}}}) is None


def test_level_override_replaces_the_level_fields_and_keeps_their_numbers():
    by_number = ECS.override({"level": "severity_number"})
    doc = ecs_doc(message="settlement failed", severity_number=17)
    assert one(doc, by_number)[0].level == "error"
    assert (
        one(ecs_doc(message="settlement failed", log={"level": "info"}, severity_number=13), by_number)[0]
        is None
    )
    # `log.level` is no longer one of the fields: the message states the level.
    assert one(ecs_doc(message="settlement failed"), by_number)[0] is None
    assert (
        one(ecs_doc(message="settlement failed", app={"sev": "Fatal"}), ECS.override({"level": "app.sev"}))[
            0
        ].level
        == "fatal"
    )


def test_level_inside_a_json_message():
    # Fluent Bit's kubernetes filter without Merge_Log (docs.fluentbit.io/manual/pipeline/filters/kubernetes)
    # leaves the application's JSON line as the `log` string: pino's, python-json-logger's, ecs-logging's.
    assert (
        level_in_line('{"level":50,"time":1731579330250,"pid":1,"hostname":"api-1","msg":"db down"}')
        == "error"
    )
    assert level_in_line('{"level":30,"time":1731579330250,"msg":"ERROR budget at 80%"}\n') is None
    assert level_in_line('{"levelname": "INFO", "message": "recovered from ERROR state"}') is None
    # ecs-logging (elastic.co/guide/en/ecs-logging/overview): dotted `log.level` keys.
    assert (
        level_in_line('{"@timestamp":"2024-11-14T10:15:30Z","log.level":"error","message":"declined"}')
        == "error"
    )
    # Not JSON after all (cut short): read as text, where the level key still wins over the word.
    assert level_in_line('{"level":"info","msg":"ERROR budget') is None
    assert level_in_line('{"msg":"ERROR settlement failed"}') == "error"


def test_level_in_a_logfmt_line():
    # logfmt (brandur.org/logfmt) as Go's log/slog TextHandler writes it: `time=… level=ERROR msg=…`; log15
    # (inconshreveable/log15 logger.go) names its levels dbug, info, warn, eror, crit under `lvl`.
    assert level_in_line('time=2024-11-14T10:15:30Z level=ERROR msg="payment failed" order=42') == "error"
    assert level_in_line('t=2024-11-14T10:15:30+0000 lvl=eror msg="settlement failed" batch=42') == "eror"
    assert level_in_line('level=info msg="retrying" error="connection reset by peer"') is None


def test_node_error_line_is_an_error_and_a_count_of_errors_is_not():
    # Node.js (nodejs.org/api/errors.html#errorstack): an error's stack starts
    # `<error class name>: <message>`, which is what an uncaught `Error` prints to stderr.
    assert level_in_line("Error: connect ECONNREFUSED 10.0.0.7:5432") == "error"
    assert level_in_line("0 errors found, 3 files checked") is None
    assert level_in_line("lint: Error: 0, Warning: 2") is None


# --- attribution -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pod", "labels", "expected"),
    [
        (
            "nightly-settlement-29384720-x7k2p",
            {"job-name": "nightly-settlement-29384720"},
            ("Job", "nightly-settlement-29384720"),
        ),
        ("etl-29384720-x7k2p", {"job_name": "etl-29384720"}, ("Job", "etl-29384720")),
        (
            "batch-etl-job-57438-0-lmwj3-7g5jl",
            {"job-name": "batch-etl-job-57438-0-lmwj3"},
            ("Job", "batch-etl-job-57438-0-lmwj3"),
        ),
        ("migrate-q2w4r", {"batch.kubernetes.io/job-name": "migrate"}, ("Job", "migrate")),
        (
            "postgres-0",
            {
                "controller-revision-hash": "postgres-5d9f8c7b6",
                "statefulset.kubernetes.io/pod-name": "postgres-0",
            },
            ("StatefulSet", "postgres"),
        ),
        (
            "kafka-12",
            {"controller_revision_hash": "kafka-7c", "statefulset_kubernetes_io/pod-name": "kafka-12"},
            ("StatefulSet", "kafka"),
        ),
        (
            "fluent-bit-x7k2p",
            {"controller-revision-hash": "7f8c9d", "pod-template-generation": "3"},
            ("DaemonSet", "fluent-bit"),
        ),
        ("api-gw-7f9c6d8b5d-x2k9p", {"pod-template-hash": "7f9c6d8b5d"}, ("Deployment", "api-gw")),
    ],
)
def test_attribution_from_labels(pod, labels, expected):
    from core.layout import label_key

    workload = attribute("ns", pod, "c", {label_key(k): v for k, v in labels.items()})
    assert (workload.kind, workload.name) == expected


def test_labels_arrive_through_both_layouts():
    doc = fluent_doc(
        "ERROR settlement failed",
        pod_name="nightly-settlement-29384720-x7k2p",
        labels={"job-name": "nightly-settlement-29384720", "app": "settlement"},
    )
    event, _ = one(doc)
    assert event.workload == Workload("Job", "batch-processing", "nightly-settlement-29384720")
    assert event.app == "settlement"


def test_ecs_owner_fields_win_over_pod_name():
    doc = ecs_doc()
    doc["kubernetes"]["job"] = {"name": "report-29384720"}
    event, _ = one(doc)
    assert event.workload == Workload("Job", "card-servicing", "report-29384720")


@pytest.mark.parametrize(
    ("pod", "kind", "name"),
    [
        ("nightly-settlement-29384720-x7k2p", "Job", "nightly-settlement-29384720"),
        ("card-servicing-api-7f9c6d8b5d-x2k9p", "Deployment", "card-servicing-api"),
        ("kube-state-metrics-99bf89fcf-z5rmg", "Deployment", "kube-state-metrics"),
        ("postgres-0", "StatefulSet", "postgres"),
        ("kafka-1", "StatefulSet", "kafka"),
        ("fluent-bit-x7k2p", "DaemonSet", "fluent-bit"),
        ("node-exporter-b8s2m", "DaemonSet", "node-exporter"),
        ("db-migrate-q2w4r", "Job", "db-migrate"),
        ("standalone", "Pod", "standalone"),
    ],
)
def test_attribution_from_pod_name_patterns(pod, kind, name):
    assert workload_of_pod("ns", pod) == Workload(kind, "ns", name)


def test_no_pod_and_no_labels_is_unknown_named_after_the_container():
    assert attribute("ns", "", "worker", {}) == Workload("Unknown", "ns", "worker")


KSM_POD = "kube-state-metrics-99bf89fcf-z5rmg"


def scraper_doc(line: str, pod: str = KSM_POD, namespace: str = "monitoring") -> dict:
    return fluent_doc(
        line,
        namespace_name=namespace,
        pod_name=pod,
        container_name="kube-state-metrics",
        labels={"app.kubernetes.io/name": "kube-state-metrics", "pod-template-hash": "99bf89fcf"},
    )


def test_scraper_line_about_a_failed_job_lands_on_the_job_not_the_scraper():
    line = (
        'E1114 02:06:10.123456       1 job.go:211] KubeJobFailed job_name="batch-etl-job-57438-0-lmwj3" '
        f'namespace="production" job="kube-state-metrics" pod="{KSM_POD}"'
    )
    event, _ = one(scraper_doc(line))
    assert event.workload == Workload("Job", "production", "batch-etl-job-57438-0-lmwj3")
    assert event.namespace == "production"
    assert event.app == "batch-etl-job-57438-0-lmwj3"
    assert event.pod == KSM_POD  # the emitter stays findable


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            'job_name="nightly-settlement-29384720" namespace="batch-processing"',
            ("Job", "batch-processing", "nightly-settlement-29384720"),
        ),
        (
            'kube_job_status_failed{exported_namespace="batch-processing",namespace="monitoring",job_name="x-1"}',
            ("Job", "batch-processing", "x-1"),
        ),
        ('alert firing job="batch-processing/reconcile"', ("Job", "batch-processing", "reconcile")),
        ("Job batch-processing/reconcile has failed", ("Job", "batch-processing", "reconcile")),
        ("job reconcile failed: BackoffLimitExceeded", ("Job", "monitoring", "reconcile")),
        (
            'deployment="payments-gateway" namespace="payments" unavailable replicas 2',
            ("Deployment", "payments", "payments-gateway"),
        ),
        (
            'statefulset="postgres" namespace="core-db" replicas not ready',
            ("StatefulSet", "core-db", "postgres"),
        ),
        (
            'pod="card-opening-api-7f9c6d8b5d-x2k9p" namespace="card-opening" CrashLoopBackOff',
            ("Deployment", "card-opening", "card-opening-api"),
        ),
        ("could not get meta for pod=payments/kafka-1", ("StatefulSet", "payments", "kafka")),
    ],
)
def test_workload_named_in_scraper_lines(line, expected):
    assert workload_named_in(line, "monitoring") == Workload(*expected)


def test_shipper_own_errors_stay_with_the_shipper():
    line = "[2024/11/14 10:00:00] [error] [engine] failed to flush chunk '1-1731578400.1.flb', task_id=3"
    doc = fluent_doc(
        line,
        namespace_name="logging",
        pod_name="fluent-bit-x7k2p",
        container_name="fluent-bit",
        labels={"controller-revision-hash": "7f8c9d", "pod-template-generation": "3", "app": "fluent-bit"},
    )
    event, _ = one(doc)
    assert event.workload == Workload("DaemonSet", "logging", "fluent-bit")


def test_scraper_line_naming_only_scrapers_stays_with_the_scraper():
    event, _ = one(
        scraper_doc(f'E1114 10:00:00.1       1 x.go:1] error job="kube-state-metrics" pod="{KSM_POD}"')
    )
    assert event.workload == Workload("Deployment", "monitoring", "kube-state-metrics")


def test_ordinary_workload_mentioning_a_job_is_not_reattributed():
    event, _ = one(ecs_doc(message='ERROR cannot start job_name="nightly-settlement-29384720"'))
    assert event.workload == Workload("Deployment", "card-servicing", "card-servicing-api")


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("prometheus-kube-state-metrics",), True),
        (("payments-api", "fluent-bit"), True),
        (("otel-collector-agent",), True),
        (("my-vectorizer", "payments"), False),
        (("",), False),
    ],
)
def test_is_shipper_matches_whole_name_parts(names, expected):
    assert is_shipper(*names) is expected


# --- flattening only where the layouts read ------------------------------------------------------


def _read_paths(layout) -> set[str]:
    """Every path a field map of `layout` names, labels included."""
    return {
        path
        for fm in field_maps(layout)
        for group in (fm.timestamp, fm.namespace, fm.pod, fm.container, fm.labels, fm.level, fm.message)
        + (fm.error_type, fm.trace_id, fm.markers, tuple(path for _, path in fm.owners))
        for path in group
    }


_LAYOUTS = [None, *DETECTED, DETECTED[1:], ECS.override({"namespace": "meta.ns.name", "labels": "meta.lbl"})]
_SEGMENTS = sorted(
    {part for layout in _LAYOUTS for path in _read_paths(layout) for part in path.split(".")}
    | {"agent", "node", "image", "x", "a.b"}
)


_RUNS = sorted(  # a read path's runs of segments: how a shipper may spell part of it as one dotted key
    {
        ".".join(parts[i:j])
        for layout in _LAYOUTS
        for parts in (path.split(".") for path in _read_paths(layout))
        for i in range(len(parts))
        for j in range(i + 1, len(parts) + 1)
    }
    | {  # and a run into a label object: `kubernetes.labels.app`, `labels.app` inside `kubernetes`
        ".".join([*parts[i:], "app"])
        for layout in _LAYOUTS
        for fm in field_maps(layout)
        for parts in (label.split(".") for label in fm.labels)
        for i in range(len(parts))
    }
)
_keys = st.one_of(
    st.sampled_from(_RUNS),
    st.lists(st.sampled_from(_SEGMENTS), min_size=1, max_size=3).map(".".join),
)
_trees = st.recursive(
    st.one_of(st.none(), st.text(max_size=3), st.integers(-2, 2)),
    lambda children: st.dictionaries(_keys, children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _trees, max_size=8), st.sampled_from(_LAYOUTS))
def test_flattening_where_the_layouts_read_keeps_what_they_read(doc: dict, layout) -> None:
    """Documents that spell paths nested, dotted and both at once, over and over (a later spelling
    wins): at every path read and every label, `flatten_read` holds what `flatten` holds, labels in
    `flatten`'s order."""
    whole, kept = flatten(doc), flatten_read(doc, reads(layout))
    labels = tuple(label + "." for fm in field_maps(layout) for label in fm.labels)

    def read(flat: dict) -> list:
        return [(path, value) for path, value in flat.items() if path in paths or path.startswith(labels)]

    paths = _read_paths(layout) | {"log", "message", "kubernetes.namespace"}  # what detect_layout reads
    assert read(kept) == read(whole)


def test_flattening_where_the_layouts_read_skips_the_rest() -> None:
    doc = ecs_doc(agent={"type": "filebeat", "version": "8.13.4"})
    doc["kubernetes"]["node"] = {"name": "node-1"}
    kept = flatten_read(doc, reads(None))
    assert "agent" in kept and "kubernetes.node" in kept  # an object stays at its own path
    assert "agent.type" not in kept and "kubernetes.node.name" not in kept
    assert kept["kubernetes.labels.pod-template-hash"] == "7c9dbf8d5x"
