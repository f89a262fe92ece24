"""The shipper corpus: documents in the exact default shape each log shipper writes into Elasticsearch,
each with what a person reading it would say — the workload that produced it (never the shipper, and
the Job rather than the CronJob that made it), whether it is an error, and a piece of its message.

Every case names the documentation page or source file its shape is built from (`source`). A case
holds several documents when the shipper writes one line as several records (a Java stack trace
through Fluent Bit or Vector without a multiline parser): together they are ONE event.

`index` is the Elasticsearch index the shipper writes to by default, and `MAPPINGS` says which default
mapping that index gets: the ECS template (`ecs`), the OpenTelemetry `otel@mappings` (`otel`), or none,
so dynamic mapping applies (`dynamic`: Fluent Bit and Vector install no index template).

All documents lie on DAY (2026-02-10, UTC); each case has a pod of its own unless it says otherwise
(`SAME_JOB` lists cases of one pod shipped by different shippers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

DAY = datetime(2026, 2, 10, tzinfo=UTC)
DAY_END = DAY + timedelta(days=1)


def iso(clock: str) -> str:
    """`HH:MM:SS.mmm` on DAY as the ISO-8601 string shippers write (`2026-02-10T03:00:00.120Z`)."""
    return f"{DAY:%Y-%m-%d}T{clock}Z"


def epoch_ms(clock: str) -> int:
    """`HH:MM:SS.mmm` on DAY as epoch milliseconds (pino's `time`, Vector's `unix_ms`)."""
    return int(datetime.fromisoformat(iso(clock)).timestamp() * 1000)


def otel_time(clock: str, nanos: int = 456789) -> str:
    """The OTel exporter's `otel`-mode timestamp: epoch millis and the remaining nanoseconds, as a string
    (otelserializer/common.go writeTimestampField: `"1721314113467.654123"`)."""
    return f"{epoch_ms(clock)}.{nanos}"


@dataclass(frozen=True)
class ShipperCase:
    id: str
    shipper: str
    source: str  # the documentation page or source file the shape is built from
    documents: tuple[dict[str, Any], ...]
    workload: str  # Workload.__str__: kind/namespace/name, what a person names as the producer
    error: bool
    message: str  # text the event's message carries (the line, for a plain line)
    index: str  # the index the shipper writes to; MAPPINGS says its mapping

    @property
    def single(self) -> bool:
        return len(self.documents) == 1


MAPPINGS = {
    "filebeat": "ecs",
    "elastic-agent": "ecs",
    "logstash": "ecs",
    "otel-ecs": "ecs",
    "fluent-bit": "dynamic",
    "vector": "dynamic",
    "vector-unix-ms": "dynamic",
    "otel": "otel",
}

# --- Filebeat -----------------------------------------------------------------------------------------
# Filebeat `container` input + `add_kubernetes_metadata` (or kubernetes autodiscover): fields from
# https://www.elastic.co/guide/en/beats/filebeat/current/exported-fields-kubernetes-processor.html
# (kubernetes.pod.name, kubernetes.namespace, kubernetes.labels.*, kubernetes.replicaset.name,
# kubernetes.deployment.name, kubernetes.statefulset.name, kubernetes.container.name); labels de-dotted
# (`labels.dedot: true` is the default: `app.kubernetes.io/name` → `app_kubernetes_io/name`);
# `add_resource_metadata.cronjob: true` adds kubernetes.cronjob.name beside kubernetes.job.name
# (https://www.elastic.co/guide/en/beats/filebeat/current/add-kubernetes-metadata.html). Message is the
# raw container line; no level field unless a parser adds one.
FILEBEAT_SOURCE = (
    "https://www.elastic.co/guide/en/beats/filebeat/current/exported-fields-kubernetes-processor.html; "
    "https://www.elastic.co/guide/en/beats/filebeat/current/add-kubernetes-metadata.html"
)


def filebeat(clock: str, message: str, pod: str, namespace: str, container: str, **kubernetes: Any) -> dict:
    return {
        "@timestamp": iso(clock),
        "message": message,
        "stream": "stderr",
        "input": {"type": "container"},
        "log": {
            "offset": 48211,
            "file": {"path": f"/var/log/containers/{pod}_{namespace}_{container}-0f3c.log"},
        },
        "container": {
            "id": "0f3c9a7e51",
            "runtime": "containerd",
            "image": {"name": f"registry.example/{container}:1.8.2"},
        },
        "kubernetes": {
            "pod": {"name": pod, "uid": "7d1f0f4e-2b7c-4a49-9b1e-3c2f4e8a9b10", "ip": "10.244.3.17"},
            "namespace": namespace,
            "namespace_uid": "c0a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b",
            "node": {"name": "worker-3", "hostname": "worker-3"},
            "container": {"name": container},
            **kubernetes,
        },
        "agent": {"type": "filebeat", "name": "filebeat-x7k2p", "version": "8.19.0"},
        "ecs": {"version": "8.0.0"},
        "host": {"name": "filebeat-x7k2p"},
    }


FILEBEAT_CASES = [
    ShipperCase(
        id="filebeat-deployment",
        shipper="Filebeat",
        source=FILEBEAT_SOURCE,
        documents=(
            filebeat(
                "03:00:01.120",
                "2026-02-10T03:00:01.120Z ERROR 1 --- [nio-8080-exec-3] c.e.payments.CaptureService"
                "     : Payment capture failed for order 8812: upstream timeout after 3000 ms",
                pod="payments-api-7d9fbc5d8b-x2k4q",
                namespace="payments",
                container="payments-api",
                labels={"app_kubernetes_io/name": "payments-api", "pod-template-hash": "7d9fbc5d8b"},
                replicaset={"name": "payments-api-7d9fbc5d8b"},
                deployment={"name": "payments-api"},
            ),
        ),
        workload="Deployment/payments/payments-api",
        error=True,
        message="2026-02-10T03:00:01.120Z ERROR 1 --- [nio-8080-exec-3] c.e.payments.CaptureService",
        index="filebeat",
    ),
    ShipperCase(
        id="filebeat-cronjob-job",
        shipper="Filebeat (add_resource_metadata.cronjob: true)",
        source=FILEBEAT_SOURCE,
        documents=(
            filebeat(
                "03:01:02.500",
                "2026-02-10 03:01:02,500 ERROR settlement.run Settlement of batch 20260209 failed: "
                "ledger totals differ by 41.20 EUR",
                pod="nightly-settlement-29936280-7xk2p",
                namespace="batch",
                container="settlement",
                labels={
                    "job-name": "nightly-settlement-29936280",
                    "batch_kubernetes_io/job-name": "nightly-settlement-29936280",
                    "controller-uid": "5b0e7a52-9c1d-4e8f-a3b2-1c0d9e8f7a6b",
                    "batch_kubernetes_io/controller-uid": "5b0e7a52-9c1d-4e8f-a3b2-1c0d9e8f7a6b",
                },
                job={"name": "nightly-settlement-29936280"},
                cronjob={"name": "nightly-settlement"},
            ),
        ),
        workload="Job/batch/nightly-settlement-29936280",
        error=True,
        message="2026-02-10 03:01:02,500 ERROR settlement.run Settlement of batch 20260209 failed",
        index="filebeat",
    ),
    ShipperCase(
        id="filebeat-statefulset",
        shipper="Filebeat",
        source=FILEBEAT_SOURCE,
        documents=(
            filebeat(
                "03:02:00.000",
                "2026-02-10 03:02:00.000 UTC [87] FATAL:  remaining connection slots are reserved for "
                "non-replication superuser connections",
                pod="ledger-db-0",
                namespace="ledger",
                container="postgres",
                labels={
                    "app_kubernetes_io/name": "ledger-db",
                    "controller-revision-hash": "ledger-db-6c7b9d8f45",
                    "statefulset_kubernetes_io/pod-name": "ledger-db-0",
                },
                statefulset={"name": "ledger-db"},
            ),
        ),
        workload="StatefulSet/ledger/ledger-db",
        error=True,
        message="2026-02-10 03:02:00.000 UTC [87] FATAL:  remaining connection slots",
        index="filebeat",
    ),
    ShipperCase(
        id="filebeat-daemonset-klog",
        shipper="Filebeat",
        source=FILEBEAT_SOURCE,
        documents=(
            filebeat(
                "03:03:00.123",
                'E0210 03:03:00.123456      87 ipam_plugin.go:431] "Failed to release address" '
                'error="context deadline exceeded" handle="k8s-pod-network.4f1c"',
                pod="calico-node-8kq2v",
                namespace="kube-system",
                container="calico-node",
                labels={
                    "k8s-app": "calico-node",
                    "controller-revision-hash": "7b9d5c8f6d",
                    "pod-template-generation": "4",
                },
                daemonset={"name": "calico-node"},
            ),
        ),
        workload="DaemonSet/kube-system/calico-node",
        error=True,
        message='E0210 03:03:00.123456      87 ipam_plugin.go:431] "Failed to release address"',
        index="filebeat",
    ),
    ShipperCase(
        id="filebeat-info",
        shipper="Filebeat",
        source=FILEBEAT_SOURCE,
        documents=(
            filebeat(
                "03:04:00.000",
                "2026-02-10T03:04:00.000Z  INFO 1 --- [nio-8080-exec-5] c.e.payments.CaptureService"
                "     : Payment captured for order 8813",
                pod="payments-api-7d9fbc5d8b-x2k4q",
                namespace="payments",
                container="payments-api",
                labels={"app_kubernetes_io/name": "payments-api", "pod-template-hash": "7d9fbc5d8b"},
                replicaset={"name": "payments-api-7d9fbc5d8b"},
                deployment={"name": "payments-api"},
            ),
        ),
        workload="Deployment/payments/payments-api",
        error=False,
        message="Payment captured for order 8813",
        index="filebeat",
    ),
]

# --- Elastic Agent, Kubernetes integration (container logs) ---------------------------------------------
# elastic/integrations packages/kubernetes/data_stream/container_logs/sample_event.json (the document
# shape: kubernetes.deployment.name, kubernetes.replicaset.name, labels de-dotted, data_stream.*,
# input.type filestream) and agent/stream/stream.yml.hbs (the `container` parser, then the
# `additionalParsersConfig`). An `ndjson` parser there with no `target` lifts a Google-style structured
# line's keys — `severity`, `message`, `time` — to the top of the document, over what Filebeat set (the
# ECS logging guides' `- ndjson: {overwrite_keys: true, add_error_key: true, expand_keys: true}`,
# https://www.elastic.co/guide/en/ecs-logging/dotnet/current/_formatters.html); the one the
# integration's manifest.yml suggests, `- ndjson: {target: json, ignore_decoding_error: true}`, puts them
# under `json.` and leaves the raw line in `message`.
ELASTIC_AGENT_SOURCE = (
    "elastic/integrations packages/kubernetes/data_stream/container_logs/sample_event.json, "
    "agent/stream/stream.yml.hbs and manifest.yml (additionalParsersConfig: ndjson); "
    "https://www.elastic.co/guide/en/ecs-logging/dotnet/current/_formatters.html (ndjson to the root)"
)


def elastic_agent(clock: str, pod: str, namespace: str, container: str, **top: Any) -> dict:
    kubernetes = top.pop("kubernetes")
    return {
        "@timestamp": iso(clock),
        "container": {
            "image": {"name": f"registry.example/{container}:2.4.0"},
            "runtime": "containerd",
            "id": "6a5ac06268",
        },
        "kubernetes": {
            "container": {"name": container},
            "node": {
                "name": "worker-1",
                "hostname": "worker-1",
                "uid": "4b2a1961-1526-4ccb-bd8d-738dbbcf97da",
            },
            "pod": {"uid": "bf2630e4-b6fa-4477-a6d0-ebf62d3ad495", "ip": "10.244.0.10", "name": pod},
            "namespace": namespace,
            "namespace_uid": "2774c099-c88d-4819-b87c-d0a6d7a3fc99",
            "namespace_labels": {"kubernetes_io/metadata_name": namespace},
            **kubernetes,
        },
        "agent": {
            "name": "worker-1",
            "type": "filebeat",
            "version": "8.19.0",
            "id": "ae6e5950-8f6c-44a2-a801-1f8a21129d53",
        },
        "log": {
            "file": {"path": f"/var/log/containers/{pod}_{namespace}_{container}-6a5ac06268.log"},
            "offset": 3673,
        },
        "elastic_agent": {
            "id": "ae6e5950-8f6c-44a2-a801-1f8a21129d53",
            "version": "8.19.0",
            "snapshot": False,
        },
        "orchestrator": {"cluster": {"name": "prod-eu-1"}},
        "input": {"type": "filestream"},
        "stream": "stdout",
        "ecs": {"version": "8.0.0"},
        "data_stream": {"namespace": "default", "type": "logs", "dataset": "kubernetes.container_logs"},
        "event": {"dataset": "kubernetes.container_logs"},
        **top,
    }


CHECKOUT_KUBERNETES = {
    "replicaset": {"name": "checkout-api-5c8d7f9b6d"},
    "deployment": {"name": "checkout-api"},
    "labels": {"app": "checkout-api", "pod-template-hash": "5c8d7f9b6d"},
}

ELASTIC_AGENT_CASES = [
    ShipperCase(
        id="elastic-agent-google-severity",
        shipper="Elastic Agent (ndjson parser, Google-style structured JSON)",
        source=ELASTIC_AGENT_SOURCE,
        documents=(
            elastic_agent(
                "03:05:00.250",
                pod="checkout-api-5c8d7f9b6d-p4w8n",
                namespace="checkout",
                container="checkout-api",
                kubernetes=CHECKOUT_KUBERNETES,
                severity="ERROR",
                message="Charge declined by issuer for cart 5521: card_declined",
                time=iso("03:05:00.250"),
            ),
        ),
        workload="Deployment/checkout/checkout-api",
        error=True,
        message="Charge declined by issuer for cart 5521",
        index="elastic-agent",
    ),
    ShipperCase(
        id="elastic-agent-google-severity-info",
        shipper="Elastic Agent (ndjson parser, Google-style structured JSON)",
        source=ELASTIC_AGENT_SOURCE,
        documents=(
            elastic_agent(
                "03:05:30.000",
                pod="checkout-api-5c8d7f9b6d-p4w8n",
                namespace="checkout",
                container="checkout-api",
                kubernetes=CHECKOUT_KUBERNETES,
                severity="INFO",
                message="Retried charge for cart 5522 after Error: issuer timeout; charge accepted",
                time=iso("03:05:30.000"),
            ),
        ),
        workload="Deployment/checkout/checkout-api",
        error=False,
        message="Retried charge for cart 5522",
        index="elastic-agent",
    ),
    ShipperCase(
        id="elastic-agent-ndjson-target-json",
        shipper="Elastic Agent (ndjson parser target: json, as the integration's manifest suggests)",
        source=ELASTIC_AGENT_SOURCE,
        documents=(
            elastic_agent(
                "03:05:45.500",
                pod="payment-webhooks-9d7c6b5f48-x4z7q",
                namespace="checkout",
                container="payment-webhooks",
                kubernetes={
                    "replicaset": {"name": "payment-webhooks-9d7c6b5f48"},
                    "deployment": {"name": "payment-webhooks"},
                    "labels": {"app": "payment-webhooks", "pod-template-hash": "9d7c6b5f48"},
                },
                message=json.dumps(
                    {
                        "severity": "ERROR",
                        "message": "Refund webhook rejected: signature mismatch",
                        "time": iso("03:05:45.500"),
                    }
                ),
                json={
                    "severity": "ERROR",
                    "message": "Refund webhook rejected: signature mismatch",
                    "time": iso("03:05:45.500"),
                },
            ),
        ),
        workload="Deployment/checkout/payment-webhooks",
        error=True,
        message="Refund webhook rejected: signature mismatch",
        index="elastic-agent",
    ),
    ShipperCase(
        id="elastic-agent-job-labels",
        shipper="Elastic Agent",
        source=ELASTIC_AGENT_SOURCE,
        documents=(
            elastic_agent(
                "03:06:00.000",
                pod="statement-export-29936160-wq9zt",
                namespace="batch-processing",
                container="statement-export",
                kubernetes={
                    "labels": {
                        "job-name": "statement-export-29936160",
                        "batch_kubernetes_io/job-name": "statement-export-29936160",
                        "controller-uid": "0d5e4c3b-2a19-4f08-8e7d-6c5b4a392817",
                    },
                },
                message="2026-02-10 03:06:00,000 ERROR export Statement export for account group 7 failed: "
                "S3 PutObject returned 503 SlowDown",
            ),
        ),
        workload="Job/batch-processing/statement-export-29936160",
        error=True,
        message="2026-02-10 03:06:00,000 ERROR export Statement export for account group 7 failed",
        index="elastic-agent",
    ),
]

# --- Logstash with ECS compatibility ------------------------------------------------------------------
# Filebeat → Logstash `beats` input → `grok { match => { "message" => "%{TIMESTAMP_ISO8601:timestamp}
# %{LOGLEVEL:log_level} %{GREEDYDATA:log_message}" } }` → `elasticsearch` output (ecs_compatibility v8:
# the default since 8.0). Logstash adds `@version`; the Filebeat fields pass through; grok's LOGLEVEL
# matches `Error` as well as `ERROR`. https://www.elastic.co/guide/en/logstash/current/plugins-filters-grok.html,
# https://github.com/logstash-plugins/logstash-patterns-core/blob/main/patterns/ecs-v1/grok-patterns
# (LOGLEVEL), https://www.elastic.co/guide/en/logstash/current/ecs-ls.html
LOGSTASH_SOURCE = (
    "https://www.elastic.co/guide/en/logstash/current/plugins-filters-grok.html; "
    "logstash-plugins/logstash-patterns-core patterns/ecs-v1/grok-patterns (LOGLEVEL); "
    "https://www.elastic.co/guide/en/logstash/current/ecs-ls.html"
)


def logstash(
    clock: str, level: str, text: str, pod: str, namespace: str, container: str, deployment: str
) -> dict:
    doc = filebeat(
        clock,
        f"{iso(clock)} {level} {text}",
        pod=pod,
        namespace=namespace,
        container=container,
        labels={"app": deployment, "pod-template-hash": pod.split("-")[-2]},
        replicaset={"name": pod.rsplit("-", 1)[0]},
        deployment={"name": deployment},
    )
    doc.update({"@version": "1", "timestamp": iso(clock), "log_level": level, "log_message": text})
    doc["tags"] = ["beats_input_codec_plain_applied"]
    return doc


LOGSTASH_CASES = [
    ShipperCase(
        id="logstash-grok-log_level",
        shipper="Logstash (ECS, grok %{LOGLEVEL:log_level})",
        source=LOGSTASH_SOURCE,
        documents=(
            logstash(
                "03:07:00.000",
                "Error",
                "Reconciliation aborted for account 90017: statement balance mismatch",
                pod="recon-worker-6d9f8b7c5d-h2j4k",
                namespace="reconciliation",
                container="recon-worker",
                deployment="recon-worker",
            ),
        ),
        workload="Deployment/reconciliation/recon-worker",
        error=True,
        message="Reconciliation aborted for account 90017",
        index="logstash",
    ),
    ShipperCase(
        id="logstash-grok-info",
        shipper="Logstash (ECS, grok %{LOGLEVEL:log_level})",
        source=LOGSTASH_SOURCE,
        documents=(
            logstash(
                "03:07:30.000",
                "INFO",
                "Reconciled 120 accounts, 0 mismatches",
                pod="recon-worker-6d9f8b7c5d-h2j4k",
                namespace="reconciliation",
                container="recon-worker",
                deployment="recon-worker",
            ),
        ),
        workload="Deployment/reconciliation/recon-worker",
        error=False,
        message="Reconciled 120 accounts",
        index="logstash",
    ),
]

# --- Fluent Bit -------------------------------------------------------------------------------------------
# `tail` input with the `cri` parser (`log`, `stream`, `logtag`; `time` not kept), `kubernetes` filter
# (fluent/fluent-bit-docs pipeline/filters/kubernetes.md: kubernetes.pod_name, namespace_name, pod_id,
# labels, annotations, host, container_name, docker_id, container_hash, container_image; Merge_Log Off
# by default — when On, a JSON `log` is merged into the record's top level and `log` kept unless
# Keep_Log Off), `es` output (fluent/fluent-bit-docs pipelines/outputs/elasticsearch.md: Time_Key
# `@timestamp`, index `fluent-bit`, Replace_Dots turns dots in keys into `_`, no index template).
# Without a multiline parser every line of a stack trace is a record of its own.
FLUENT_BIT_SOURCE = (
    "fluent/fluent-bit-docs pipeline/filters/kubernetes.md (kubernetes filter, Merge_Log, Keep_Log); "
    "pipeline/outputs/elasticsearch.md (Time_Key @timestamp, Replace_Dots); pipeline/parsers/cri"
)


def fluent_bit(
    clock: str,
    pod: str,
    namespace: str,
    container: str,
    labels: dict,
    *,
    replace_dots: bool = False,
    **top: Any,
) -> dict:
    record = {
        "@timestamp": iso(clock),
        "stream": "stderr",
        "logtag": "F",
        "kubernetes": {
            "pod_name": pod,
            "namespace_name": namespace,
            "pod_id": "e3b1c2d4-5f6a-4b7c-8d9e-0f1a2b3c4d5e",
            "labels": labels,
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-02-01T08:00:00Z"},
            "host": "worker-2",
            "container_name": container,
            "docker_id": "8d1f4c2b9a7e6d5c4b3a2918f7e6d5c4b3a29180f7e6d5c4b3a2918f7e6d5c4b",
            "container_hash": f"registry.example/{container}@sha256:5163d0e5ea2",
            "container_image": f"registry.example/{container}:3.1.0",
        },
        **top,
    }
    return _dots_replaced(record) if replace_dots else record


def _dots_replaced(value: Any) -> Any:
    """What the es output's `Replace_Dots On` sends: every `.` in every key written as `_`."""
    if isinstance(value, dict):
        return {key.replace(".", "_"): _dots_replaced(item) for key, item in value.items()}
    return value


def pino(level: int, clock: str, msg: str, hostname: str) -> dict[str, Any]:
    """A pino line's fields in pino's order (https://getpino.io/#/docs/api?id=logger-level: error = 50,
    info = 30; `time` in epoch ms), as Merge_Log lifts them, with the raw line kept in `log` (Keep_Log On)."""
    fields = {"level": level, "time": epoch_ms(clock), "pid": 1, "hostname": hostname, "msg": msg}
    return {"log": json.dumps(fields, separators=(",", ":")), **fields}


JOB_LABELS_DOTTED = {  # Replace_Dots Off (the default): label keys as Kubernetes spells them
    "job-name": "nightly-settlement-29936280",
    "batch.kubernetes.io/job-name": "nightly-settlement-29936280",
    "controller-uid": "5b0e7a52-9c1d-4e8f-a3b2-1c0d9e8f7a6b",
    "batch.kubernetes.io/controller-uid": "5b0e7a52-9c1d-4e8f-a3b2-1c0d9e8f7a6b",
}
LEDGER_LABELS = {"app": "ledger-posting", "pod-template-hash": "8f7d6c5b49"}
JAVA_TRACE = (
    "2026-02-10 03:20:00.101 ERROR 1 --- [   scheduling-1] c.e.ledger.PostingJob                    : "
    "Posting run failed",
    "java.lang.IllegalStateException: ledger period 2026-02 is closed",
    "\tat com.example.ledger.PostingJob.post(PostingJob.java:88)",
    "\tat org.springframework.scheduling.support.ScheduledMethodRunnable.run("
    "ScheduledMethodRunnable.java:84)",
    "Caused by: java.sql.SQLException: period locked by batch 7731",
    "\tat com.example.ledger.PeriodRepository.lock(PeriodRepository.java:41)",
    "\t... 12 more",
)

FLUENT_BIT_CASES = [
    ShipperCase(
        id="fluent-bit-raw-job",
        shipper="Fluent Bit (Merge_Log Off)",
        source=FLUENT_BIT_SOURCE,
        documents=(
            fluent_bit(
                "03:01:02.500",
                pod="nightly-settlement-29936280-7xk2p",
                namespace="batch",
                container="settlement",
                labels=JOB_LABELS_DOTTED,
                log="2026-02-10 03:01:02,500 ERROR settlement.run Settlement of batch 20260209 failed: "
                "ledger totals differ by 41.20 EUR",
            ),
        ),
        workload="Job/batch/nightly-settlement-29936280",
        error=True,
        message="2026-02-10 03:01:02,500 ERROR settlement.run Settlement of batch 20260209 failed",
        index="fluent-bit",
    ),
    ShipperCase(
        id="fluent-bit-merge-log-levelname",
        shipper="Fluent Bit (Merge_Log On, Keep_Log Off, Replace_Dots On; python-json-logger)",
        source=FLUENT_BIT_SOURCE + "; python-json-logger (nhairs/python-json-logger) with the format"
        " '%(asctime)s %(levelname)s %(name)s %(message)s'",
        documents=(
            fluent_bit(
                "03:08:00.000",
                pod="refund-service-7b6c5d9f48-t6r2m",
                namespace="payments",
                container="refund-service",
                labels={
                    "app.kubernetes.io/name": "refund-service",
                    "app.kubernetes.io/part-of": "payments",
                    "pod-template-hash": "7b6c5d9f48",
                },
                replace_dots=True,
                asctime="2026-02-10 03:08:00,000",
                levelname="ERROR",
                name="refunds.worker",
                message="Refund 7741 could not be booked: ledger service answered 409 Conflict",
            ),
        ),
        workload="Deployment/payments/refund-service",
        error=True,
        message="Refund 7741 could not be booked",
        index="fluent-bit",
    ),
    ShipperCase(
        id="fluent-bit-merge-log-pino-50",
        shipper="Fluent Bit (Merge_Log On, Keep_Log On; pino)",
        source=FLUENT_BIT_SOURCE
        + "; https://getpino.io/#/docs/api?id=logger-level (error = 50, time = epoch ms)",
        documents=(
            fluent_bit(
                "03:09:00.321",
                pod="orders-api-5f7d9c8b64-zz8qd",
                namespace="orders",
                container="orders-api",
                labels={"app": "orders-api", "pod-template-hash": "5f7d9c8b64"},
                **pino(
                    50,
                    "03:09:00.321",
                    "order sync failed: inventory service unreachable",
                    hostname="orders-api-5f7d9c8b64-zz8qd",
                ),
            ),
        ),
        workload="Deployment/orders/orders-api",
        error=True,
        message="order sync failed: inventory service unreachable",
        index="fluent-bit",
    ),
    ShipperCase(
        id="fluent-bit-merge-log-pino-30",
        shipper="Fluent Bit (Merge_Log On, Keep_Log On; pino)",
        source=FLUENT_BIT_SOURCE + "; https://getpino.io/#/docs/api?id=logger-level (info = 30)",
        documents=(
            fluent_bit(
                "03:09:30.000",
                pod="orders-api-5f7d9c8b64-zz8qd",
                namespace="orders",
                container="orders-api",
                labels={"app": "orders-api", "pod-template-hash": "5f7d9c8b64"},
                **pino(
                    30, "03:09:30.000", "synced 40 orders, 0 errors", hostname="orders-api-5f7d9c8b64-zz8qd"
                ),
            ),
        ),
        workload="Deployment/orders/orders-api",
        error=False,
        message="synced 40 orders",
        index="fluent-bit",
    ),
    ShipperCase(
        id="fluent-bit-split-java-trace",
        shipper="Fluent Bit (no multiline parser: one record per line)",
        source=FLUENT_BIT_SOURCE + "; pipeline/inputs/tail.md (multiline.parser unset: each line a record)",
        documents=tuple(
            fluent_bit(
                f"03:20:00.{101 + n:03d}",
                pod="ledger-posting-8f7d6c5b49-k7v2c",
                namespace="ledger",
                container="ledger-posting",
                labels=LEDGER_LABELS,
                log=line,
            )
            for n, line in enumerate(JAVA_TRACE)
        ),
        workload="Deployment/ledger/ledger-posting",
        error=True,
        message=JAVA_TRACE[0],
        index="fluent-bit",
    ),
]

# --- Vector -----------------------------------------------------------------------------------------------
# `kubernetes_logs` source → `elasticsearch` sink (bulk mode, index `vector-%Y.%m.%d`, no template):
# vectordotdev/vector website/cue/reference/components/sources/kubernetes_logs.cue (output fields and
# its Sample Output: file, kubernetes.container_name, kubernetes.pod_labels, kubernetes.pod_name,
# kubernetes.pod_namespace, kubernetes.pod_node_name, kubernetes.pod_owner "ReplicaSet/coredns-565d847f94",
# kubernetes.pod_uid, message, source_type, stream, timestamp; `multiline: enabled: false`). The sink's
# `encoding.timestamp_format = "unix_ms"` writes `timestamp` as epoch milliseconds.
VECTOR_SOURCE = (
    "vectordotdev/vector website/cue/reference/components/sources/kubernetes_logs.cue (output, Sample Output)"
)


def vector(
    clock: str,
    message: str,
    pod: str,
    namespace: str,
    container: str,
    owner: str,
    labels: dict,
    *,
    unix_ms: bool = False,
) -> dict:
    return {
        "file": f"/var/log/pods/{namespace}_{pod}_93bde4d0-9731-4785-a80e-cd27ba8ad7c2/{container}/0.log",
        "kubernetes": {
            "container_id": "containerd://f24c81dcd531c5d353751c77fe0556a4",
            "container_image": f"registry.example/{container}:5.0.1",
            "container_name": container,
            "namespace_labels": {"kubernetes.io/metadata.name": namespace},
            "pod_ip": "10.244.5.23",
            "pod_ips": ["10.244.5.23"],
            "pod_labels": labels,
            "pod_name": pod,
            "pod_namespace": namespace,
            "pod_node_name": "worker-5",
            "pod_owner": owner,
            "pod_uid": "93bde4d0-9731-4785-a80e-cd27ba8ad7c2",
        },
        "message": message,
        "source_type": "kubernetes_logs",
        "stream": "stderr",
        "timestamp": epoch_ms(clock) if unix_ms else iso(clock)[:-1] + "499555Z",
    }


PYTHON_TRACE = (
    "ERROR:statement_export:Upload of statement batch 42 failed",
    "Traceback (most recent call last):",
    '  File "/app/statement_export/upload.py", line 31, in run',
    "    client.put_object(Bucket=bucket, Key=key, Body=body)",
    '  File "/usr/local/lib/python3.12/site-packages/botocore/client.py", line 569, in _api_call',
    "    return self._make_api_call(operation_name, kwargs)",
    "botocore.exceptions.EndpointConnectionError: Could not connect to the endpoint URL: "
    '"https://s3.eu-central-1.amazonaws.com/statements/42.pdf"',
)
STATEMENT_JOB_LABELS = {
    "job-name": "statement-export-29936220",
    "batch.kubernetes.io/job-name": "statement-export-29936220",
    "controller-uid": "1e2d3c4b-5a69-4788-97a6-b5c4d3e2f1a0",
}

VECTOR_CASES = [
    ShipperCase(
        id="vector-deployment-logfmt",
        shipper="Vector kubernetes_logs",
        source=VECTOR_SOURCE,
        documents=(
            vector(
                "03:10:00.000",
                'ts=2026-02-10T03:10:00.000Z level=error caller=push.go:112 msg="push delivery failed" '
                "provider=apns status=503",
                pod="notification-gateway-6f9c8d7b54-q7x2m",
                namespace="notifications",
                container="gateway",
                owner="ReplicaSet/notification-gateway-6f9c8d7b54",
                labels={"app.kubernetes.io/name": "notification-gateway", "pod-template-hash": "6f9c8d7b54"},
            ),
        ),
        workload="Deployment/notifications/notification-gateway",
        error=True,
        message='ts=2026-02-10T03:10:00.000Z level=error caller=push.go:112 msg="push delivery failed"',
        index="vector",
    ),
    ShipperCase(
        id="vector-statefulset",
        shipper="Vector kubernetes_logs",
        source=VECTOR_SOURCE,
        documents=(
            vector(
                "03:11:00.120",
                "[2026-02-10 03:11:00,120] ERROR [ReplicaManager broker=2] Error processing append operation "
                "on partition payments-events-3 (kafka.server.ReplicaManager)",
                pod="kafka-broker-2",
                namespace="streaming",
                container="kafka",
                owner="StatefulSet/kafka-broker",
                labels={
                    "app.kubernetes.io/name": "kafka-broker",
                    "controller-revision-hash": "kafka-broker-7d8c9b6f54",
                    "statefulset.kubernetes.io/pod-name": "kafka-broker-2",
                },
            ),
        ),
        workload="StatefulSet/streaming/kafka-broker",
        error=True,
        message="[2026-02-10 03:11:00,120] ERROR [ReplicaManager broker=2]",
        index="vector",
    ),
    ShipperCase(
        id="vector-info-logfmt",
        shipper="Vector kubernetes_logs",
        source=VECTOR_SOURCE,
        documents=(
            vector(
                "03:12:00.000",
                'ts=2026-02-10T03:12:00.000Z level=info caller=push.go:80 msg="delivered 120 notifications"',
                pod="notification-gateway-6f9c8d7b54-q7x2m",
                namespace="notifications",
                container="gateway",
                owner="ReplicaSet/notification-gateway-6f9c8d7b54",
                labels={"app.kubernetes.io/name": "notification-gateway", "pod-template-hash": "6f9c8d7b54"},
            ),
        ),
        workload="Deployment/notifications/notification-gateway",
        error=False,
        message='msg="delivered 120 notifications"',
        index="vector",
    ),
    ShipperCase(
        id="vector-split-python-traceback-job",
        shipper="Vector kubernetes_logs (no multiline: one record per line)",
        source=VECTOR_SOURCE,
        documents=tuple(
            vector(
                f"03:13:00.{200 + n:03d}",
                line,
                pod="statement-export-29936220-b8d4x",
                namespace="batch-processing",
                container="statement-export",
                owner="Job/statement-export-29936220",
                labels=STATEMENT_JOB_LABELS,
            )
            for n, line in enumerate(PYTHON_TRACE)
        ),
        workload="Job/batch-processing/statement-export-29936220",
        error=True,
        message=PYTHON_TRACE[0],
        index="vector",
    ),
    ShipperCase(
        id="vector-unix-ms-error-prefix",
        shipper="Vector kubernetes_logs (elasticsearch sink encoding.timestamp_format = unix_ms)",
        source=VECTOR_SOURCE
        + "; website/cue/reference/components/sinks (encoding.timestamp_format: unix_ms)",
        documents=(
            vector(
                "03:14:00.777",
                "Error: connect ECONNREFUSED 10.0.4.12:5432",
                pod="fx-rates-7c9d5f6b48-n4m8s",
                namespace="fx",
                container="fx-rates",
                owner="ReplicaSet/fx-rates-7c9d5f6b48",
                labels={"app.kubernetes.io/name": "fx-rates", "pod-template-hash": "7c9d5f6b48"},
                unix_ms=True,
            ),
        ),
        workload="Deployment/fx/fx-rates",
        error=True,
        message="Error: connect ECONNREFUSED 10.0.4.12:5432",
        index="vector-unix-ms",
    ),
]

# --- OpenTelemetry Collector, elasticsearch exporter ------------------------------------------------------
# `otel` mapping mode: open-telemetry/opentelemetry-collector-contrib
# exporter/elasticsearchexporter/internal/serializer/otelserializer/logs.go (SerializeLog: @timestamp,
# observed_timestamp, data_stream, severity_text, severity_number — both left out when unset —,
# trace_id, attributes, resource.attributes, scope, body.text) and common.go (timestamps as
# "<epoch ms>.<ns>" strings; attribute keys written as they are, dotted). Resource attributes from the
# filelog receiver + k8sattributes processor (k8s.namespace.name, k8s.pod.name, k8s.deployment.name,
# k8s.job.name, k8s.cronjob.name, k8s.container.name …).
OTEL_SOURCE = (
    "open-telemetry/opentelemetry-collector-contrib exporter/elasticsearchexporter/internal/serializer/"
    "otelserializer/logs.go and common.go (otel mapping mode)"
)
# `ecs` mapping mode: exporter/elasticsearchexporter/model.go (ecsModeEncoder.encodeLog:
# resourceAttrsConversionMap k8s.namespace.name → kubernetes.namespace, k8s.pod.name → kubernetes.pod.name,
# k8s.deployment.name → kubernetes.deployment.name …; log.level = severity text; event.severity =
# severity number; message = a string body; dedotted into objects).
OTEL_ECS_SOURCE = (
    "open-telemetry/opentelemetry-collector-contrib exporter/elasticsearchexporter/model.go"
    " (ecs mapping mode)"
)


def otel(clock: str, resource: dict, body: str, *, severity_text: str = "", severity_number: int = 0) -> dict:
    doc: dict[str, Any] = {
        "@timestamp": otel_time(clock),
        "observed_timestamp": otel_time(clock, nanos=987654),
        "data_stream": {"type": "logs", "dataset": "generic.otel", "namespace": "default"},
    }
    if severity_text:
        doc["severity_text"] = severity_text
    if severity_number:
        doc["severity_number"] = severity_number
    doc["attributes"] = {"log.file.path": "/var/log/pods/x/0.log", "log.iostream": "stderr", "logtag": "F"}
    doc["resource"] = {
        "attributes": {
            "k8s.node.name": "worker-4",
            "k8s.pod.uid": "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d",
            "k8s.container.restart_count": "0",
            **resource,
        }
    }
    doc["scope"] = {}
    doc["body"] = {"text": body}
    return doc


OTEL_CASES = [
    ShipperCase(
        id="otel-deployment-severity-text",
        shipper="OpenTelemetry Collector (elasticsearch exporter, otel mode)",
        source=OTEL_SOURCE,
        documents=(
            otel(
                "03:15:00.123",
                {
                    "k8s.namespace.name": "identity",
                    "k8s.pod.name": "auth-service-5d8f7c9b46-m2kqp",
                    "k8s.container.name": "auth-service",
                    "k8s.replicaset.name": "auth-service-5d8f7c9b46",
                    "k8s.deployment.name": "auth-service",
                    "service.name": "auth-service",
                },
                "token validation failed: signature expired for client mobile-app",
                severity_text="ERROR",
                severity_number=17,
            ),
        ),
        workload="Deployment/identity/auth-service",
        error=True,
        message="token validation failed: signature expired",
        index="otel",
    ),
    ShipperCase(
        id="otel-cronjob-job-severe",
        shipper="OpenTelemetry Collector (elasticsearch exporter, otel mode; java.util.logging SEVERE)",
        source=OTEL_SOURCE,
        documents=(
            otel(
                "03:16:00.000",
                {
                    "k8s.namespace.name": "finance",
                    "k8s.pod.name": "ledger-close-29936340-f9g2h",
                    "k8s.container.name": "ledger-close",
                    "k8s.job.name": "ledger-close-29936340",
                    "k8s.cronjob.name": "ledger-close",
                },
                "Month-end close aborted: 3 unbalanced journals",
                severity_text="SEVERE",
                severity_number=17,
            ),
        ),
        workload="Job/finance/ledger-close-29936340",
        error=True,
        message="Month-end close aborted",
        index="otel",
    ),
    ShipperCase(
        id="otel-severity-number-only",
        shipper="OpenTelemetry Collector (elasticsearch exporter, otel mode; severity_number only)",
        source=OTEL_SOURCE,
        documents=(
            otel(
                "03:16:30.000",
                {
                    "k8s.namespace.name": "identity",
                    "k8s.pod.name": "session-store-1",
                    "k8s.container.name": "session-store",
                    "k8s.statefulset.name": "session-store",
                },
                "replica sync stopped: peer session-store-0 unreachable",
                severity_number=18,
            ),
        ),
        workload="StatefulSet/identity/session-store",
        error=True,
        message="replica sync stopped",
        index="otel",
    ),
    ShipperCase(
        id="otel-no-severity-go-panic",
        shipper="OpenTelemetry Collector (elasticsearch exporter, otel mode; no severity)",
        source=OTEL_SOURCE,
        documents=(
            otel(
                "03:17:00.000",
                {
                    "k8s.namespace.name": "kube-system",
                    "k8s.pod.name": "gpu-device-plugin-2xlbd",
                    "k8s.container.name": "device-plugin",
                    "k8s.daemonset.name": "gpu-device-plugin",
                },
                "panic: runtime error: index out of range [3] with length 3",
            ),
        ),
        workload="DaemonSet/kube-system/gpu-device-plugin",
        error=True,
        message="panic: runtime error: index out of range",
        index="otel",
    ),
    ShipperCase(
        id="otel-info",
        shipper="OpenTelemetry Collector (elasticsearch exporter, otel mode)",
        source=OTEL_SOURCE,
        documents=(
            otel(
                "03:17:30.000",
                {
                    "k8s.namespace.name": "identity",
                    "k8s.pod.name": "auth-service-5d8f7c9b46-m2kqp",
                    "k8s.container.name": "auth-service",
                    "k8s.deployment.name": "auth-service",
                },
                "Error budget report generated: 99.95% availability",
                severity_text="INFO",
                severity_number=9,
            ),
        ),
        workload="Deployment/identity/auth-service",
        error=False,
        message="Error budget report generated",
        index="otel",
    ),
    ShipperCase(
        id="otel-ecs-mode",
        shipper="OpenTelemetry Collector (elasticsearch exporter, ecs mode)",
        source=OTEL_ECS_SOURCE,
        documents=(
            {
                "@timestamp": iso("03:18:00.000"),
                "agent": {"name": "otlp"},
                "data_stream": {"type": "logs", "dataset": "generic", "namespace": "default"},
                "event": {"severity": 17},
                "host": {"hostname": "worker-4", "name": "worker-4"},
                "kubernetes": {
                    "namespace": "risk",
                    "pod": {
                        "name": "fraud-scorer-6b8d9c7f45-r5t7y",
                        "uid": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
                    },
                    "container": {"name": "fraud-scorer"},
                    "replicaset": {"name": "fraud-scorer-6b8d9c7f45"},
                    "deployment": {"name": "fraud-scorer"},
                    "node": {"name": "worker-4"},
                },
                "log": {"level": "ERROR", "file": {"path": "/var/log/pods/x/0.log"}},
                "service": {"name": "fraud-scorer"},
                "message": "model scoring timed out after 250 ms for transaction 8a2f",
            },
        ),
        workload="Deployment/risk/fraud-scorer",
        error=True,
        message="model scoring timed out after 250 ms",
        index="otel-ecs",
    ),
]

CASES: tuple[ShipperCase, ...] = tuple(
    FILEBEAT_CASES + ELASTIC_AGENT_CASES + LOGSTASH_CASES + FLUENT_BIT_CASES + VECTOR_CASES + OTEL_CASES
)

SAME_JOB = ("filebeat-cronjob-job", "fluent-bit-raw-job")
"""One pod of one Job, shipped once by Filebeat (with the CronJob's name beside the Job's) and once by
Fluent Bit: one workload, whichever shipper wrote the line."""


def case(case_id: str) -> ShipperCase:
    return next(c for c in CASES if c.id == case_id)


def document_id(shipper_case: ShipperCase, n: int) -> str:
    """The `_id` of a case's n-th document in Elasticsearch, so an event can be traced to its case."""
    return f"{shipper_case.id}.{n}"


def case_of(doc_id: str | None) -> str | None:
    return doc_id.rpartition(".")[0] if doc_id else None
