"""Self-monitoring: the figures of one run, pushed to a Prometheus Pushgateway when the run ends.

A CronJob pod lives for minutes, so nothing can scrape it: every run pushes its figures to the
Pushgateway under the grouping key {job, phase}, and Prometheus scrapes the gateway. The gateway
keeps the last push per group, so every metric here is a gauge describing the *latest* run of a
phase; none carries the `_total` suffix, which Prometheus reserves for monotonic counters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

import structlog
from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway

from core.model import utc

log = structlog.get_logger(__name__)

Phase = Literal["regular", "backfill"]
PublishStatus = Literal["ok", "failed", "skipped"]
PUBLISH_STATUSES: tuple[PublishStatus, ...] = ("ok", "failed", "skipped")

NAMESPACE = "ai_log_analyzer"
PUSH_TIMEOUT_S = 10.0
"""A run must not hang on its own monitoring; the gateway answers in milliseconds when healthy."""


@dataclass(slots=True)
class RunMetrics:
    """What one run of a phase did, as the entrypoint knows it when the run ends."""

    phase: Phase
    success: bool
    started_at: datetime
    finished_at: datetime
    events_read: int = 0
    events_skipped: int = 0
    incidents: int = 0
    incidents_by_category: Mapping[str, int] = field(default_factory=dict)
    problems_new: int = 0
    problems_known: int = 0
    peaks: int = 0
    publish_status: Mapping[str, PublishStatus] = field(default_factory=dict)
    db_write_seconds: float = 0.0
    db_up: bool | None = None  # None: the run never got as far as the database

    @property
    def duration_s(self) -> float:
        return (utc(self.finished_at) - utc(self.started_at)).total_seconds()


def run_registry(metrics: RunMetrics) -> CollectorRegistry:
    """The metrics of one run in a registry of their own (never the process-global one).

    The last-success timestamp is only present after a success: pushed with POST, a failed run
    then leaves the previous success time in the gateway untouched.
    """
    registry = CollectorRegistry()

    def gauge(name: str, documentation: str, value: float) -> None:
        Gauge(name, documentation, namespace=NAMESPACE, registry=registry).set(value)

    finished = utc(metrics.finished_at).timestamp()
    gauge("run_success", "1 if the latest run of the phase succeeded, else 0.", int(metrics.success))
    gauge("run_duration_seconds", "Wall-clock duration of the latest run.", metrics.duration_s)
    gauge("last_run_timestamp_seconds", "Unix time the latest run finished, success or not.", finished)
    if metrics.success:
        gauge("last_success_timestamp_seconds", "Unix time the latest successful run finished.", finished)
    gauge("run_events_read", "Log events read from Elasticsearch by the latest run.", metrics.events_read)
    gauge(
        "run_events_skipped",
        "Malformed events counted and skipped by the latest run.",
        metrics.events_skipped,
    )
    gauge("run_incidents", "Incidents saved by the latest run.", metrics.incidents)
    gauge("run_problems_new", "Problems seen for the first time in the latest run.", metrics.problems_new)
    gauge("run_problems_known", "Already known problems seen in the latest run.", metrics.problems_known)
    gauge("run_peaks", "Peaks (spikes and bursts) recorded by the latest run.", metrics.peaks)
    gauge(
        "run_db_write_seconds", "Time the latest run spent writing to the database.", metrics.db_write_seconds
    )
    if metrics.db_up is not None:
        gauge("db_up", "1 if the latest run could reach the database, else 0.", int(metrics.db_up))

    # Label sets are only created when there is something to report: an empty family pushed
    # with POST would wipe what an earlier run recorded (e.g. the last Confluence outcome).
    if metrics.incidents_by_category:
        by_category = Gauge(
            "run_incidents_by_category",
            "Incidents saved by the latest run, per problem category.",
            ["category"],
            namespace=NAMESPACE,
            registry=registry,
        )
        for category, count in metrics.incidents_by_category.items():
            by_category.labels(category=category).set(count)
    if metrics.publish_status:
        publish = Gauge(
            "publish_status",
            "1 for the outcome of the latest publish attempt per channel (ok, failed or skipped).",
            ["channel", "status"],
            namespace=NAMESPACE,
            registry=registry,
        )
        for channel, outcome in metrics.publish_status.items():
            for status in PUBLISH_STATUSES:
                publish.labels(channel=channel, status=status).set(int(status == outcome))
    return registry


def push_run_metrics(metrics: RunMetrics, gateway_url: str | None, job: str = "ai_log_analyzer") -> bool:
    """Push the run's metrics to the Pushgateway; True if the gateway accepted them.

    Monitoring must never fail the analysis: no gateway configured, or one that cannot be
    reached, is a warning and a False, never an exception.
    """
    if not gateway_url:
        log.debug("metrics_push_disabled", phase=metrics.phase)
        return False
    try:
        # POST (pushadd), not PUT: PUT replaces the whole group and would erase the last-success
        # timestamp that a failed run deliberately leaves out.
        pushadd_to_gateway(
            gateway_url,
            job=job,
            registry=run_registry(metrics),
            grouping_key={"phase": metrics.phase},
            timeout=PUSH_TIMEOUT_S,
        )
    # URLError, HTTPError and timeouts are OSErrors; a malformed URL is a ValueError.
    except (OSError, ValueError) as error:
        log.warning("metrics_push_failed", phase=metrics.phase, gateway=_host(gateway_url), error=str(error))
        return False
    log.debug("metrics_pushed", phase=metrics.phase, gateway=_host(gateway_url))
    return True


def _host(url: str) -> str:
    """The gateway's host and port for a log line; a URL may carry basic-auth credentials."""
    return urlsplit(url if "://" in url else f"http://{url}").netloc.rpartition("@")[2]
