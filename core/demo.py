"""Demo data: a deterministic NDJSON file of Kubernetes error logs with planted incidents, for offline runs.

`generate()` writes `days` UTC days of Elasticsearch `_source` documents ending with `end_day`: ordinary
days of recurring problems with a diurnal shape, then the incident day with five planted incidents
(a spike, a burst, a database outage that spreads to other namespaces, a brand-new error and a
failing CronJob Job reported by kube-state-metrics), each recorded in the returned `DemoManifest`.
Namespaces shipped by Filebeat use the ECS layout (one of them with dotted flat keys); the others
use the Fluent Bit layout. Lines are written hour by hour, sorted by time within the hour, so memory
stays bounded by one hour of logs.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from core.model import isoformat

MINUTE_US = 60_000_000
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US

# Kubernetes generates pod-name suffixes and ReplicaSet hashes from this alphabet (no vowels, no 0/1/3).
_K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_CARDS = ("4111111111111111", "5555555555554444", "4012888888881881", "378282246310005")
_IBANS = ("DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606")
_NAMES = ("jane.doe", "john.smith", "erika.mustermann", "max.power", "ana.silva", "li.wei")

Doc = dict[str, Any]
Emitted = list[tuple[int, Doc]]


@dataclass(frozen=True, slots=True)
class PlantedIncident:
    """One incident planted on the incident day, with the facts a test or a demo walk-through needs."""

    kind: str  # spike | burst | db_outage | new_error | failed_job
    namespaces: tuple[str, ...]  # where it shows; the first is where it starts
    workloads: tuple[str, ...]  # "Kind/namespace/name" as normalize must attribute its lines
    start: datetime
    end: datetime  # half-open: every planted line lies in [start, end)
    markers: tuple[str, ...]  # substrings: every planted line contains one of them
    error_type: str | None
    count: int = 0  # planted lines (on top of the problem's usual lines)
    usual_per_hour: float = 0.0  # the same problem's usual rate at that time of day (0: never seen)
    detail: str = ""


@dataclass(slots=True)
class DemoManifest:
    """What `generate()` wrote: the file, its days and layouts, and the planted incidents."""

    path: Path
    seed: int
    scale: float
    start: datetime  # midnight UTC of the first day
    end: datetime  # midnight UTC after the incident day (half-open)
    incident_day: date
    documents: int = 0
    documents_per_day: dict[str, int] = field(default_factory=dict)
    layouts: dict[str, str] = field(default_factory=dict)  # namespace → ecs | ecs-dotted | fluent-bit
    non_error_lines: int = 0  # INFO/WARN lines the pipeline must skip as not_error_level
    shared_trace_ids: int = 0  # outage requests whose trace id is on both the db and the service side
    planted: list[PlantedIncident] = field(default_factory=list)

    def incident(self, kind: str) -> PlantedIncident:
        return next(p for p in self.planted if p.kind == kind)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ISO-8601 UTC times, paths as strings."""
        data = asdict(self)
        data["path"] = str(self.path)
        data["start"], data["end"] = isoformat(self.start), isoformat(self.end)
        data["incident_day"] = self.incident_day.isoformat()
        for planted in data["planted"]:
            planted["start"], planted["end"] = isoformat(planted["start"]), isoformat(planted["end"])
        return data


@dataclass(frozen=True, slots=True)
class _Pod:
    namespace: str
    name: str
    container: str
    labels: dict[str, str]
    node: str
    image: str


@dataclass(slots=True)
class _Source:
    """A stream of log lines: how many per minute (`rate`) and what one occurrence writes (`emit`)."""

    rate: Callable[[int], float]  # expected occurrences in the minute starting at this epoch-µs
    emit: Callable[[random.Random, int], Emitted]
    start: int = 0  # active in [start, end), epoch µs
    end: int = 2**62
    counts_as: str | None = None  # the planted incident (or "non_error") its lines count toward
    first_at_start: bool = False  # one occurrence at `start` exactly: where a planted incident begins


def generate(path: Path, end_day: date, days: int = 8, seed: int = 42, scale: float = 1.0) -> DemoManifest:
    """Write the demo NDJSON file to `path` and return what was planted in it."""
    if days < 1 or scale <= 0:
        raise ValueError("days must be ≥ 1 and scale > 0")
    rng = random.Random(seed)
    first_day = end_day - timedelta(days=days - 1)
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    manifest = DemoManifest(
        path=Path(path),
        seed=seed,
        scale=scale,
        start=start,
        end=start + timedelta(days=days),
        incident_day=end_day,
        layouts=dict(_LAYOUTS),
    )
    world = _World(rng, scale, _epoch_us(start) + (days - 1) * DAY_US)
    sources = world.background() + world.incidents(manifest)
    counts: dict[str | None, int] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for day in range(days):
            day_us = _epoch_us(start) + day * DAY_US
            active = [s for s in sources if s.start < day_us + DAY_US and s.end > day_us]
            written = 0
            for hour_us in range(day_us, day_us + DAY_US, HOUR_US):
                lines = _hour(rng, active, hour_us, counts)
                out.writelines(json.dumps(doc, separators=(",", ":")) + "\n" for _, doc in lines)
                written += len(lines)
            manifest.documents_per_day[(first_day + timedelta(days=day)).isoformat()] = written
            manifest.documents += written
    manifest.non_error_lines = counts.get("non_error", 0)
    manifest.shared_trace_ids = world.shared_trace_ids
    manifest.planted = [replace(p, count=counts.get(p.kind, 0)) for p in manifest.planted]
    return manifest


def _hour(
    rng: random.Random, sources: Sequence[_Source], hour_us: int, counts: dict[str | None, int]
) -> Emitted:
    """Every line of one hour, sorted by time."""
    lines: Emitted = []
    for minute_us in range(hour_us, hour_us + HOUR_US, MINUTE_US):
        for source in sources:
            lo, hi = max(minute_us, source.start), min(minute_us + MINUTE_US, source.end)
            if lo >= hi:
                continue
            if source.first_at_start and lo == source.start:
                emitted = source.emit(rng, lo)
                lines.extend(emitted)
                counts[source.counts_as] = counts.get(source.counts_as, 0) + len(emitted)
            expected = source.rate(minute_us) * (hi - lo) / MINUTE_US
            for _ in range(_poisson(rng, expected)):
                emitted = source.emit(rng, lo + rng.randrange(hi - lo))
                lines.extend(emitted)
                counts[source.counts_as] = counts.get(source.counts_as, 0) + len(emitted)
    lines.sort(key=lambda line: line[0])
    return lines


def _poisson(rng: random.Random, expected: float) -> int:
    if expected <= 0:
        return 0
    if expected > 30:
        return max(0, round(rng.gauss(expected, math.sqrt(expected))))
    limit, k, p = math.exp(-expected), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _epoch_us(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000


def _diurnal(hour: int) -> float:
    """Traffic shape of a business day in Europe: quiet at night, busiest early afternoon UTC."""
    return 0.25 + 0.75 * math.exp(-(((hour - 13) / 4.5) ** 2))


_LAYOUTS = {
    "card-servicing": "ecs",
    "card-opening": "ecs",
    "payments": "ecs",
    "customer-portal": "ecs-dotted",
    "batch-processing": "fluent-bit",
    "core-db": "fluent-bit",
    "logging": "fluent-bit",
    "monitoring": "fluent-bit",
}
_NODES = ("aks-pool1-18734621-vmss000000", "aks-pool1-18734621-vmss000001", "aks-pool1-18734621-vmss000002")


def _document(
    pod: _Pod,
    us: int,
    message: str,
    level: str | None = "error",
    error_type: str | None = None,
    trace_id: str | None = None,
) -> tuple[int, Doc]:
    layout = _LAYOUTS[pod.namespace]
    seconds, micros = divmod(us, 1_000_000)
    second = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if layout == "fluent-bit":
        doc: Doc = {"time": f"{second}.{micros:06d}{us % 997:03d}Z"}
        if pod.namespace != "monitoring":  # monitoring's Fluent Bit keeps only its own time key
            doc["@timestamp"] = f"{second}.{micros:06d}Z"
        doc["stream"] = "stderr"
        doc["log"] = message
        if level is not None:
            doc["level"] = level
        if trace_id:
            doc["trace_id"] = trace_id
        doc["kubernetes"] = {
            "pod_name": pod.name,
            "namespace_name": pod.namespace,
            "labels": pod.labels,
            "host": pod.node,
            "container_name": pod.container,
            "container_image": pod.image,
        }
        return us, doc
    labels = {key.replace(".", "_"): value for key, value in pod.labels.items()}  # Filebeat de-dots labels
    doc = {
        "@timestamp": f"{second}.{micros // 1000:03d}Z",
        "message": message,
        "log": {"level": level},
        "kubernetes": {
            "namespace": pod.namespace,
            "pod": {"name": pod.name},
            "container": {"name": pod.container},
            "node": {"name": pod.node},
            "labels": labels,
        },
        "container": {"image": {"name": pod.image}},
        "agent": {"type": "filebeat", "version": "8.13.4"},
        "ecs": {"version": "8.0.0"},
    }
    if error_type:
        doc["error"] = {"type": error_type}
    if trace_id:
        doc["trace"] = {"id": trace_id}
    return us, (_dotted(doc) if layout == "ecs-dotted" else doc)


def _next_patch(image: str) -> str:
    """ "registry/app:1.39.2" → "registry/app:1.39.3"."""
    name, _, version = image.rpartition(":")
    major_minor, _, patch = version.rpartition(".")
    return f"{name}:{major_minor}.{int(patch) + 1}"


def _dotted(doc: Doc, prefix: str = "") -> Doc:
    """The same document with dotted flat keys, as some Elastic Agent pipelines store it."""
    flat: Doc = {}
    for key, value in doc.items():
        if isinstance(value, dict) and key != "labels":
            flat.update(_dotted(value, f"{prefix}{key}."))
        elif isinstance(value, dict):
            flat.update({f"{prefix}{key}.{k}": v for k, v in value.items()})
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _java(headline: str, exception: str, detail: str, frames: Sequence[str], cause: str | None = None) -> str:
    """A Java log message with its stack trace, as a multi-line Filebeat/Fluent Bit event carries it."""
    lines = [headline, f"{exception}: {detail}", *(f"\tat {frame}" for frame in frames)]
    if cause:
        lines += [f"Caused by: {cause}", f"\tat {frames[-1]}", f"\t... {len(frames) + 11} more"]
    return "\n".join(lines)


def _python(frames: Sequence[tuple[str, int, str, str]], exception: str) -> str:
    lines = ["Traceback (most recent call last):"]
    for file, line, func, code in frames:
        lines += [f'  File "{file}", line {line}, in {func}', f"    {code}"]
    return "\n".join([*lines, exception])


class _World:
    """The demo cluster: its pods, its recurring problems and the incidents planted on the incident day."""

    def __init__(self, rng: random.Random, scale: float, incident_day_us: int) -> None:
        self.rng = rng
        self.scale = scale
        self.day_us = incident_day_us
        self.shared_trace_ids = 0
        self.card_servicing = self._deployment("card-servicing", "card-servicing-api", 3)
        self.card_limits = self._deployment("card-servicing", "card-limits-worker", 2)
        self.card_opening = self._deployment("card-opening", "card-opening-api", 2)
        # The new ReplicaSet runs the next patch release: the rollout the new error follows.
        self.card_opening_new = tuple(
            replace(pod, image=_next_patch(self.card_opening[0].image))
            for pod in self._deployment("card-opening", "card-opening-api", 2)
        )
        self.deployed_us = incident_day_us + 12 * HOUR_US + 30 * MINUTE_US
        self.payments = self._deployment("payments", "payments-gateway", 3)
        self.kafka = self._statefulset("payments", "kafka", 3)
        self.portal = self._deployment("customer-portal", "customer-portal-web", 2)
        self.scheduler = self._deployment("batch-processing", "batch-scheduler", 1)
        self.postgres = self._statefulset("core-db", "postgres", 2)
        self.core_data_api = self._deployment("core-db", "core-data-api", 2)
        self.fluent_bit = self._daemonset("logging", "fluent-bit")
        self.ksm = self._deployment("monitoring", "kube-state-metrics", 1)
        self.prometheus = self._statefulset("monitoring", "prometheus-k8s", 1)

    # --- pods -----------------------------------------------------------------------------------

    def _token(self, length: int) -> str:
        return "".join(self.rng.choice(_K8S_ALPHABET) for _ in range(length))

    def _deployment(self, namespace: str, name: str, replicas: int) -> tuple[_Pod, ...]:
        template_hash = self._token(self.rng.choice((9, 10)))
        labels = {"app.kubernetes.io/name": name, "pod-template-hash": template_hash}
        image = (
            f"registry.example.com/{namespace}/{name}:1.{self.rng.randrange(4, 40)}.{self.rng.randrange(9)}"
        )
        return tuple(
            _Pod(namespace, f"{name}-{template_hash}-{self._token(5)}", name, labels, _NODES[i % 3], image)
            for i in range(replicas)
        )

    def _statefulset(self, namespace: str, name: str, replicas: int) -> tuple[_Pod, ...]:
        revision = f"{name}-{self._token(10)}"
        return tuple(
            _Pod(
                namespace,
                f"{name}-{i}",
                name.split("-")[0],
                {
                    "app.kubernetes.io/name": name,
                    "controller-revision-hash": revision,
                    "statefulset.kubernetes.io/pod-name": f"{name}-{i}",
                },
                _NODES[i % len(_NODES)],
                f"docker.io/library/{name.split('-')[0]}:16.{i}",
            )
            for i in range(replicas)
        )

    def _daemonset(self, namespace: str, name: str) -> tuple[_Pod, ...]:
        labels = {
            "app.kubernetes.io/name": name,
            "controller-revision-hash": self._token(10),
            "pod-template-generation": "4",
        }
        return tuple(
            _Pod(
                namespace,
                f"{name}-{self._token(5)}",
                name,
                labels,
                node,
                "cr.fluentbit.io/fluent/fluent-bit:3.0.7",
            )
            for node in _NODES
        )

    def _job_pod(self, namespace: str, cronjob: str, scheduled_us: int, salt: int) -> _Pod:
        """The pod of the CronJob's run at `scheduled_us` (attempt `salt`): the same pod on every call."""
        job = f"{cronjob}-{scheduled_us // MINUTE_US}"
        suffix = "".join(
            _K8S_ALPHABET[(scheduled_us // MINUTE_US * 7 + salt * 31 + i * 13) % 27] for i in range(5)
        )
        labels = {"job-name": job, "batch.kubernetes.io/job-name": job, "app.kubernetes.io/name": cronjob}
        return _Pod(
            namespace,
            f"{job}-{suffix}",
            cronjob,
            labels,
            _NODES[salt % 3],
            f"registry.example.com/{namespace}/{cronjob}:2.3.1",
        )

    def _opening_pods(self, us: int) -> tuple[_Pod, ...]:
        return self.card_opening_new if us >= self.deployed_us else self.card_opening

    # --- variables ------------------------------------------------------------------------------

    def _trace(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def _email(self) -> str:
        return f"{self.rng.choice(_NAMES)}{self.rng.randrange(1, 99)}@example.com"

    def _ip(self) -> str:
        return f"10.42.{self.rng.randrange(0, 8)}.{self.rng.randrange(2, 254)}"

    def _uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def _amount(self) -> str:
        return f"{self.rng.randrange(100, 500_000) / 100:.2f}"

    def _steady(self, per_hour: float) -> Callable[[int], float]:
        """Occurrences per minute for a problem seen `per_hour` times an hour at the busiest time."""
        per_minute = [per_hour * self.scale * _diurnal(hour) / 60 for hour in range(24)]
        return lambda us: per_minute[us // HOUR_US % 24]

    # --- recurring problems -----------------------------------------------------------------------

    def background(self) -> list[_Source]:
        steady = self._steady
        return [
            _Source(steady(VALIDATION_PER_HOUR), self._validation_error),
            _Source(steady(100), self._issuer_timeout),
            _Source(steady(50), self._limit_conflict),
            _Source(steady(120), self._access_denied),
            _Source(steady(80), self._kyc_unavailable),
            _Source(steady(100), self._acquirer_timeout),
            _Source(steady(150), self._payment_declined),
            _Source(steady(20), self._kafka_fetcher),
            _Source(steady(80), self._statement_timeout),
            _Source(steady(3), self._session_cache),
            _Source(steady(40), self._settlement_partial),
            _Source(
                lambda us: 5.0 * self.scale if 5 <= us // MINUTE_US % 60 < 15 else 0.0, self._statement_export
            ),
            _Source(steady(25), self._duplicate_key),
            _Source(steady(12), self._recovery_conflict),
            _Source(steady(15), self._flush_failed),
            _Source(lambda us: 2 * self.scale / 60, self._ksm_watch),
            _Source(steady(8), self._scrape_failed),
            _Source(steady(1.5), self._harmless, counts_as="non_error"),
            _Source(
                lambda us: 1.0 if us // MINUTE_US % 1440 == 123 else 0.0,
                self._settlement_done,
                end=self.day_us,
                counts_as="non_error",
            ),
        ]

    def _validation_error(self, rng: random.Random, us: int) -> Emitted:
        card, request = rng.choice(_CARDS), rng.randrange(10**6, 10**7)
        message = _java(
            f"Request {request} failed card validation: card {card} expiry {rng.randrange(1, 13):02d}/"
            f"{rng.randrange(19, 24)} is in the past",
            VALIDATION_ERROR,
            f"expiry date in the past for customer {self._email()}",
            (
                "com.example.cardservicing.validation.CardValidator.validateExpiry(CardValidator.java:88)",
                "com.example.cardservicing.api.CardController.updateCard(CardController.java:142)",
                "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885)",
            ),
        )
        return [
            _document(rng.choice(self.card_servicing), us, message, "error", VALIDATION_ERROR, self._trace())
        ]

    def _issuer_timeout(self, rng: random.Random, us: int) -> Emitted:
        message = (
            f"Issuer call for card {rng.choice(_CARDS)} timed out after {rng.randrange(5000, 5400)} ms "
            f"(issuer host issuer-{rng.randrange(1, 4)}.example.com)"
        )
        return [
            _document(
                rng.choice(self.card_servicing),
                us,
                message,
                "ERROR",
                "java.net.SocketTimeoutException",
                self._trace(),
            )
        ]

    def _limit_conflict(self, rng: random.Random, us: int) -> Emitted:
        version = rng.randrange(2, 400)
        message = (
            f"Limit update {rng.randrange(10**5, 10**6)} for account {rng.choice(_IBANS)} rejected: "
            f"version conflict (expected {version}, found {version + 1})"
        )
        return [
            _document(
                rng.choice(self.card_limits),
                us,
                message,
                "error",
                "jakarta.persistence.OptimisticLockException",
            )
        ]

    def _access_denied(self, rng: random.Random, us: int) -> Emitted:
        message = (
            f"Access denied for user {self._email()} to POST /api/v1/applications/"
            f"{rng.randrange(10**5, 10**6)}: missing scope cards:write"
        )
        return [
            _document(
                rng.choice(self._opening_pods(us)),
                us,
                message,
                "error",
                "org.springframework.security.access.AccessDeniedException",
                self._trace(),
            )
        ]

    def _kyc_unavailable(self, rng: random.Random, us: int) -> Emitted:
        message = (
            f"KYC check {self._uuid()} failed: POST https://kyc.example.com/v2/checks returned "
            f"503 Service Unavailable after {rng.randrange(80, 2500)} ms"
        )
        return [
            _document(
                rng.choice(self._opening_pods(us)),
                us,
                message,
                "error",
                "org.springframework.web.client.HttpServerErrorException",
                self._trace(),
            )
        ]

    def _acquirer_timeout(self, rng: random.Random, us: int) -> Emitted:
        """A portal request fails as payments timed out at the acquirer: one trace id in both namespaces."""
        trace, payment = self._trace(), f"pay_{rng.getrandbits(48):012x}"
        gateway = (
            f"Authorization {payment} for {self._amount()} EUR timed out at acquirer "
            f"https://acquirer.example.com/v1/authorize after {rng.randrange(10000, 10300)} ms"
        )
        portal = (
            f"Upstream payments-gateway returned 504 for GET /api/payments/{payment} (client {self._ip()})"
        )
        return [
            _document(
                rng.choice(self.payments), us, gateway, "error", "java.net.SocketTimeoutException", trace
            ),
            _document(
                rng.choice(self.portal),
                # The portal sees the 504 milliseconds later, but within the hour being written.
                min(us + rng.randrange(2000, 40000), us - us % HOUR_US + HOUR_US - 1),
                portal,
                "error",
                "requests.exceptions.HTTPError",
                trace,
            ),
        ]

    def _payment_declined(self, rng: random.Random, us: int) -> Emitted:
        message = (
            f"Payment pay_{rng.getrandbits(48):012x} declined: amount {self._amount()} EUR exceeds the "
            f"daily limit for card {rng.choice(_CARDS)}"
        )
        return [
            _document(
                rng.choice(self.payments),
                us,
                message,
                "error",
                "com.example.payments.PaymentDeclinedException",
                self._trace(),
            )
        ]

    def _kafka_fetcher(self, rng: random.Random, us: int) -> Emitted:
        broker = rng.randrange(3)
        message = (
            f"[ReplicaFetcher replicaId={broker}, leaderId={(broker + 1) % 3}, fetcherId=0] Error for "
            f"partition payments-events-{rng.randrange(12)} at offset {rng.randrange(10**6, 10**8)} "
            "(kafka.server.ReplicaFetcherThread)\n"
            "org.apache.kafka.common.errors.NotLeaderOrFollowerException: "
            "This server is not the leader for that topic-partition."
        )
        return [
            _document(
                self.kafka[broker],
                us,
                message,
                "ERROR",
                "org.apache.kafka.common.errors.NotLeaderOrFollowerException",
            )
        ]

    def _statement_timeout(self, rng: random.Random, us: int) -> Emitted:
        message = _python(
            (
                (
                    "/app/portal/views/statements.py",
                    88,
                    "get_statement",
                    "statement = client.fetch(account_id)",
                ),
                (
                    "/app/portal/clients/statements.py",
                    41,
                    "fetch",
                    "response = self.session.get(url, timeout=10)",
                ),
            ),
            "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='statements.example.com', port=443): "
            f"Read timed out. (read timeout=10) account={rng.choice(_IBANS)}",
        )
        return [
            _document(
                rng.choice(self.portal),
                us,
                message,
                "error",
                "requests.exceptions.ReadTimeout",
                self._trace(),
            )
        ]

    def _session_cache(self, rng: random.Random, us: int) -> Emitted:
        message = _python(
            (
                (
                    "/app/portal/middleware/session.py",
                    57,
                    "__call__",
                    "session = self.store.load(session_key)",
                ),
                (
                    "/usr/local/lib/python3.12/site-packages/redis/connection.py",
                    707,
                    "connect",
                    "raise ConnectionError(self._error_message(e))",
                ),
            ),
            f"{SESSION_CACHE_ERROR}: Error 104 connecting to session-cache.customer-portal.svc:6379. "
            f"Connection reset by peer. (session {rng.getrandbits(64):016x})",
        )
        return [_document(rng.choice(self.portal), us, message, "error", SESSION_CACHE_ERROR)]

    def _settlement_partial(self, rng: random.Random, us: int) -> Emitted:
        total = rng.randrange(200, 5000)
        message = (
            f"{_spring_prefix(us)} ERROR 1 --- [pool-3-thread-{rng.randrange(1, 9)}] "
            f"c.e.batch.SettlementScheduler : Settlement batch {rng.randrange(10**4, 10**5)} partially "
            f"failed: {rng.randrange(1, 40)} of {total} records rejected"
        )
        return [_document(self.scheduler[0], us, message, None)]

    def _statement_export(self, rng: random.Random, us: int) -> Emitted:
        pod = self._job_pod("batch-processing", "statement-export", us - us % HOUR_US + 5 * MINUTE_US, 1)
        message = (
            f"failed to render statement {rng.randrange(10**6, 10**7)} for account {rng.choice(_IBANS)}: "
            "jinja2.exceptions.UndefinedError: 'closing_balance' is undefined"
        )
        return [_document(pod, us, message, "error", "jinja2.exceptions.UndefinedError")]

    def _duplicate_key(self, rng: random.Random, us: int) -> Emitted:
        message = (
            f"{_pg_prefix(us, rng)} payments_app@payments ERROR:  duplicate key value violates unique "
            f'constraint "payments_idempotency_key"\n\tDETAIL:  Key (idempotency_key)=({self._uuid()}) '
            "already exists."
        )
        return [_document(self.postgres[0], us, message, None)]

    def _recovery_conflict(self, rng: random.Random, us: int) -> Emitted:
        message = (
            f"{_pg_prefix(us, rng)} reporting@cards ERROR:  canceling statement due to conflict with "
            "recovery\n\tDETAIL:  User query might have needed to see row versions that must be removed."
        )
        return [_document(self.postgres[1], us, message, None)]

    def _flush_failed(self, rng: random.Random, us: int) -> Emitted:
        stamp = datetime.fromtimestamp(us // 1_000_000, UTC).strftime("%Y/%m/%d %H:%M:%S")
        if rng.random() < 0.5:
            message = (
                f"[{stamp}] [error] [engine] failed to flush chunk '1-{us // 1_000_000}."
                f"{rng.randrange(10**8, 10**9)}.flb', retry in {rng.randrange(6, 60)} seconds: "
                f"task_id={rng.randrange(0, 40)}, input=tail.0 > output=es.0 (out_id=0)"
            )
        else:
            message = (
                f"[{stamp}] [error] [output:es:es.0] HTTP status=429 URI=/_bulk, response: "
                '{"error":{"type":"es_rejected_execution_exception"}}'
            )
        return [_document(rng.choice(self.fluent_bit), us, message, None)]

    def _ksm_watch(self, rng: random.Random, us: int) -> Emitted:
        message = (
            f"{_klog('E', us)} reflector.go:147] k8s.io/client-go/tools/cache/reflector.go:229: Failed to "
            'watch *v1.Pod: an error on the server ("unable to decode an event from the watch stream: '
            'http2: client connection lost") has prevented the request from succeeding'
        )
        return [_document(self.ksm[0], us, message, None)]

    def _scrape_failed(self, rng: random.Random, us: int) -> Emitted:
        target = f"http://{self._ip()}:8080/actuator/prometheus"
        message = (
            f"ts={isoformat(datetime.fromtimestamp(us // 1_000_000, UTC))} caller=scrape.go:1384 "
            'level=error component="scrape manager" scrape_pool=serviceMonitor/payments/payments-gateway/0 '
            f'target={target} msg="Scrape failed" err="Get \\"{target}\\": context deadline exceeded"'
        )
        return [_document(self.prometheus[0], us, message, None)]

    def _harmless(self, rng: random.Random, us: int) -> Emitted:
        choice = rng.randrange(4)
        if choice == 0:
            return [
                _document(
                    rng.choice(self.card_servicing),
                    us,
                    f"Card {rng.choice(_CARDS)} limit cache refreshed in {rng.randrange(3, 90)} ms",
                    "info",
                )
            ]
        if choice == 1:
            return [
                _document(
                    rng.choice(self.portal),
                    us,
                    f"Slow response for GET /api/statements took {rng.randrange(2, 9)}s",
                    "warning",
                )
            ]
        if choice == 2:
            return [
                _document(
                    self.scheduler[0],
                    us,
                    f"{_spring_prefix(us)}  WARN 1 --- [main] "
                    "c.e.batch.SettlementScheduler : retrying lock acquisition",
                    None,
                )
            ]
        stamp = datetime.fromtimestamp(us // 1_000_000, UTC).strftime("%Y/%m/%d %H:%M:%S")
        return [
            _document(
                rng.choice(self.fluent_bit),
                us,
                f"[{stamp}] [ info] [input:tail:tail.0] inotify_fs_add(): inode={rng.randrange(10**6)} "
                "watch_fd=12 name=/var/log/containers/app.log",
                None,
            )
        ]

    def _started(self, rng: random.Random, us: int) -> Emitted:
        """Each new card-opening pod's Spring Boot start line, a second apart: the rollout, at INFO."""
        return [
            _document(
                pod,
                us + i * 1_000_000,
                f"{_spring_prefix(us + i * 1_000_000)}  INFO 1 --- [main] c.e.c.CardOpeningApplication : "
                f"Started CardOpeningApplication in {7.2 + i / 10:.1f} seconds",
                "info",
            )
            for i, pod in enumerate(self.card_opening_new)
        ]

    def _settlement_done(self, rng: random.Random, us: int) -> Emitted:
        pod = self._job_pod("batch-processing", NIGHTLY, us - us % DAY_US + 2 * HOUR_US, 0)
        return [
            _document(pod, us, f"settlement batch completed: {rng.randrange(10**4, 10**5)} records", "INFO")
        ]

    # --- planted incidents ----------------------------------------------------------------------

    def incidents(self, manifest: DemoManifest) -> list[_Source]:
        day, scale = self.day_us, self.scale

        def at(hours: int, minutes: int, seconds: int = 0) -> int:
            return day + hours * HOUR_US + minutes * MINUTE_US + seconds * 1_000_000

        def when(us: int) -> datetime:
            return datetime.fromtimestamp(us / 1_000_000, UTC)

        spike_start, spike_end = at(10, 0), at(11, 0)
        usual = VALIDATION_PER_HOUR * scale * _diurnal(10)
        burst_start, burst_end = at(14, 7), at(14, 9)
        # The clients' pools hold their connections for a while: they fail six minutes after postgres
        # starts refusing new ones, later than propagation's max_gap, so ordering alone cannot tell.
        db_start, deps_start, db_end = at(16, 20), at(16, 26), at(16, 45)
        new_start, new_end = self.deployed_us + 2 * MINUTE_US, day + DAY_US
        job_start, ksm_start, job_end = at(2, 0), at(2, 6), at(2, 36)
        job = f"{NIGHTLY}-{job_start // MINUTE_US}"
        manifest.planted = [
            PlantedIncident(
                "spike",
                ("card-servicing",),
                ("Deployment/card-servicing/card-servicing-api",),
                when(spike_start),
                when(spike_end),
                ("failed card validation",),
                VALIDATION_ERROR,
                usual_per_hour=round(usual, 1),
                detail="card validation errors at ~9x their usual rate for one hour",
            ),
            PlantedIncident(
                "burst",
                ("customer-portal",),
                ("Deployment/customer-portal/customer-portal-web",),
                when(burst_start),
                when(burst_end),
                ("connecting to session-cache",),
                SESSION_CACHE_ERROR,
                usual_per_hour=round(3 * scale * _diurnal(14), 2),
                detail="session cache connection resets: hundreds of lines inside two minutes",
            ),
            PlantedIncident(
                "db_outage",
                ("core-db", "card-servicing", "payments", "batch-processing"),
                (
                    "StatefulSet/core-db/postgres",
                    "Deployment/core-db/core-data-api",
                    "Deployment/card-servicing/card-servicing-api",
                    "Deployment/payments/payments-gateway",
                    "Deployment/batch-processing/batch-scheduler",
                ),
                when(db_start),
                when(db_end),
                DB_OUTAGE_MARKERS,
                "java.sql.SQLTransientConnectionException",
                detail=f"postgres-0 refuses connections from {isoformat(when(db_start))}; core-data-api "
                "beside it logs the same problem, more often, and the services in three other namespaces "
                f"fail, from {isoformat(when(deps_start))}; shared trace ids link both sides",
            ),
            PlantedIncident(
                "new_error",
                ("card-opening",),
                ("Deployment/card-opening/card-opening-api",),
                when(new_start),
                when(new_end),
                ("NullPointerException",),
                NEW_ERROR,
                detail=f"after the {isoformat(when(self.deployed_us))} rollout of a new ReplicaSet running "
                f"{self.card_opening_new[0].image.rpartition(':')[2]}",
            ),
            PlantedIncident(
                "failed_job",
                ("batch-processing", "monitoring"),
                (f"Job/batch-processing/{job}",),
                when(job_start),
                when(job_end),
                (job,),
                "sqlalchemy.exc.PendingRollbackError",
                detail=f"Job {job} fails (BackoffLimitExceeded); kube-state-metrics in monitoring "
                "reports it with job_name= and namespace= labels",
            ),
        ]
        burst_per_minute = 450 * scale
        return [
            _Source(lambda us: 8 * usual / 60, self._validation_error, spike_start, spike_end, "spike"),
            _Source(
                lambda us: burst_per_minute * (0.4 if us < burst_start + MINUTE_US else 0.6),
                self._session_cache,
                burst_start,
                burst_end,
                "burst",
            ),
            _Source(lambda us: 40 * scale, self._db_refused, db_start, db_end, "db_outage", True),
            _Source(lambda us: 250 * scale, self._core_api_refused, deps_start, db_end, "db_outage"),
            _Source(lambda us: 150 * scale, self._pool_exhausted, deps_start, db_end, "db_outage"),
            _Source(lambda us: 0.0, self._started, self.deployed_us, new_start, "non_error", True),
            _Source(self._steady(250), self._null_pointer, new_start, new_end, "new_error"),
            _Source(lambda us: 6 * scale, self._settlement_failed, job_start, ksm_start, "failed_job"),
            _Source(lambda us: 1.5, self._ksm_job_failed, ksm_start, job_end, "failed_job"),
        ]

    def _db_refused(self, rng: random.Random, us: int, app: str = "", trace: str | None = None) -> Emitted:
        user = {
            "": "cards_app@cards",
            "card-servicing-api": "cards_app@cards",
            "payments-gateway": "payments_app@payments",
            "batch-scheduler": "batch@settlement",
            "core-data-api": "core_api@cards",
        }[app]
        text = DB_OUTAGE_MARKERS[0] if rng.random() < 0.75 else DB_OUTAGE_MARKERS[1]
        message = f"{_pg_prefix(us, rng)} {user} FATAL:  {text}"
        return [_document(self.postgres[0], us, message, None, None, trace)]

    def _core_api_refused(self, rng: random.Random, us: int) -> Emitted:
        """The data API beside the database is refused a connection: the same problem as postgres's own."""
        trace = self._trace()
        message = _java(
            f"Could not open JDBC Connection for {rng.choice(('GET', 'POST'))} /internal/v1/accounts/"
            f"{rng.randrange(10**5, 10**6)}",
            "org.postgresql.util.PSQLException",
            f"FATAL: {DB_OUTAGE_MARKERS[1]}",
            (
                "org.postgresql.core.v3.ConnectionFactoryImpl.doAuthentication(ConnectionFactoryImpl.java:693)",
                "org.postgresql.core.v3.ConnectionFactoryImpl.openConnectionImpl(ConnectionFactoryImpl.java:203)",
                "org.postgresql.jdbc.PgConnection.<init>(PgConnection.java:258)",
            ),
        )
        pod = rng.choice(self.core_data_api)
        lines = [_document(pod, us, message, "error", "org.postgresql.util.PSQLException", trace)]
        if rng.random() < 0.25:  # postgres logs a refusal for a quarter of them: the API logs more
            self.shared_trace_ids += 1
            lines += self._db_refused(rng, us - rng.randrange(1000, 20000), "core-data-api", trace)
        return lines

    def _pool_exhausted(self, rng: random.Random, us: int) -> Emitted:
        """A service waits 30 s for a connection; half the requests also reached postgres, with a trace."""
        pods = rng.choice((self.card_servicing, self.card_servicing, self.payments, self.scheduler))
        waited = 30000 + rng.randrange(0, 15)
        trace = self._trace()
        if pods is self.scheduler:
            message = (
                f"{_spring_prefix(us)} ERROR 1 --- [pool-3-thread-{rng.randrange(1, 9)}] "
                "c.e.batch.SettlementScheduler : Settlement batch aborted\n"
                f"java.sql.SQLTransientConnectionException: {DB_OUTAGE_MARKERS[2]} after {waited}ms."
            )
            lines = [_document(pods[0], us, message, None, None, trace)]
        else:
            message = _java(
                f"Could not open JPA EntityManager for transaction on {rng.choice(('GET', 'POST'))} /api/v1/"
                f"{'cards' if pods is self.card_servicing else 'payments'}/{rng.randrange(10**5, 10**6)}",
                "java.sql.SQLTransientConnectionException",
                f"{DB_OUTAGE_MARKERS[2]} after {waited}ms.",
                (
                    "com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:696)",
                    "com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:181)",
                    "com.zaxxer.hikari.HikariDataSource.getConnection(HikariDataSource.java:100)",
                ),
                cause="org.postgresql.util.PSQLException: FATAL: remaining connection slots are reserved",
            )
            lines = [
                _document(
                    rng.choice(pods), us, message, "error", "java.sql.SQLTransientConnectionException", trace
                )
            ]
        if rng.random() < 0.5:
            self.shared_trace_ids += 1
            app = pods[0].labels["app.kubernetes.io/name"]
            lines += self._db_refused(rng, us - waited * 1000 + rng.randrange(1000, 20000), app, trace)
        return lines

    def _null_pointer(self, rng: random.Random, us: int) -> Emitted:
        message = _java(
            f"Application {rng.randrange(10**6, 10**7)} submission failed for {self._email()}",
            NEW_ERROR,
            'Cannot invoke "com.example.cardopening.model.Address.getCountry()" because the return value of '
            '"com.example.cardopening.model.Applicant.getAddress()" is null',
            (
                "com.example.cardopening.risk.ResidencyCheck.evaluate(ResidencyCheck.java:47)",
                "com.example.cardopening.service.ApplicationService.submit(ApplicationService.java:213)",
                "com.example.cardopening.api.ApplicationController.submit(ApplicationController.java:96)",
            ),
        )
        return [_document(rng.choice(self.card_opening_new), us, message, "error", NEW_ERROR, self._trace())]

    def _settlement_failed(self, rng: random.Random, us: int) -> Emitted:
        start = self.day_us + 2 * HOUR_US
        attempt = min(2, (us - start) // (2 * MINUTE_US))  # backoffLimit 2: three pods, two minutes apart
        pod = self._job_pod("batch-processing", NIGHTLY, start, int(attempt))
        headline = f"ERROR settlement[{pod.labels['job-name']}]:"
        if rng.random() < 0.5:
            message = (
                f"{headline} batch {rng.randrange(10**4, 10**5)} aborted after {rng.randrange(10, 900)} "
                'records: duplicate key value violates unique constraint "settlement_line_pkey"'
            )
        else:
            message = f"{headline} run failed\n" + _python(
                (
                    ("/app/settlement/run.py", 131, "main", "session.commit()"),
                    (
                        "/usr/local/lib/python3.12/site-packages/sqlalchemy/orm/session.py",
                        1969,
                        "commit",
                        "trans.commit(_to_root=True)",
                    ),
                ),
                "sqlalchemy.exc.PendingRollbackError: This Session's transaction has been rolled back due to "
                "a previous exception during flush.",
            )
        return [_document(pod, us, message, "ERROR", "sqlalchemy.exc.PendingRollbackError")]

    def _ksm_job_failed(self, rng: random.Random, us: int) -> Emitted:
        job = f"{NIGHTLY}-{(self.day_us + 2 * HOUR_US) // MINUTE_US}"
        # Carries the scraper's own pod and scrape job too: the trap that sends naive attribution astray.
        message = (
            f'{_klog("E", us)} job_metrics.go:211] KubeJobFailed job_name="{job}" '
            f'namespace="batch-processing" condition="Failed" reason="BackoffLimitExceeded" '
            f'job="kube-state-metrics" pod="{self.ksm[0].name}" kube_job_status_failed=1'
        )
        return [_document(self.ksm[0], us, message, None)]


VALIDATION_PER_HOUR = 300
VALIDATION_ERROR = "com.example.cardservicing.validation.CardValidationException"
SESSION_CACHE_ERROR = "redis.exceptions.ConnectionError"
NEW_ERROR = "java.lang.NullPointerException"
NIGHTLY = "nightly-settlement"
DB_OUTAGE_MARKERS = (
    "remaining connection slots are reserved for non-replication superuser connections",
    "sorry, too many clients already",
    "HikariPool-1 - Connection is not available, request timed out",
)


def _pg_prefix(us: int, rng: random.Random) -> str:
    stamp = datetime.fromtimestamp(us // 1_000_000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp}.{us // 1000 % 1000:03d} UTC [{rng.randrange(1000, 65000)}]"


def _spring_prefix(us: int) -> str:
    stamp = datetime.fromtimestamp(us // 1_000_000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp}.{us // 1000 % 1000:03d}"


def _klog(severity: str, us: int) -> str:
    stamp = datetime.fromtimestamp(us // 1_000_000, UTC).strftime("%m%d %H:%M:%S")
    return f"{severity}{stamp}.{us % 1_000_000:06d}       1"
