"""Tests for core.aggregate: incidents per problem/window/workload, bounded samples, flat memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice

from core.aggregate import MAX_FINGERPRINTS, Aggregator
from core.model import MAX_SAMPLES, MAX_TRACE_IDS, Event, Fingerprint, InputStats, ProblemClass, Workload

DAY = datetime(2025, 3, 4, tzinfo=UTC)
DB_POOL = ProblemClass("DATABASE", "payments", "connection_pool", severity="high")
TIMEOUT = ProblemClass("TIMEOUT", "payments", "upstream_timeout")
VALIDATION = ProblemClass("BUSINESS", "payments", "validation_error", severity="low")
FP = Fingerprint("0123456789abcdef", "Connection to <HOST> refused after <NUM> ms")


def event(
    ts: datetime,
    message: str = "Connection to db.example.com refused after 30 ms",
    namespace: str = "payments",
    workload: str = "payments-api",
    trace_id: str | None = None,
    app: str = "payments-api",
) -> Event:
    return Event(
        timestamp=ts,
        namespace=namespace,
        pod=f"{workload}-7d9f8-abcde",
        container="app",
        workload=Workload("Deployment", namespace, workload),
        app=app,
        level="error",
        message=message,
        trace_id=trace_id,
    )


def aggregate(*items: tuple[Event, ProblemClass], fp: Fingerprint = FP) -> list:
    aggregator = Aggregator(DAY, DAY + timedelta(days=1))
    for ev, problem in items:
        aggregator.add(ev, fp, problem)
    return aggregator.result(InputStats()).incidents


def test_events_fold_into_incidents_per_problem_window_and_workload() -> None:
    at = DAY + timedelta(hours=10)
    incidents = aggregate(
        (event(at + timedelta(minutes=1)), DB_POOL),
        (event(at + timedelta(minutes=14, seconds=59)), DB_POOL),
        (event(at + timedelta(minutes=15)), DB_POOL),
        (event(at + timedelta(minutes=2), workload="payments-worker"), DB_POOL),
        (event(at + timedelta(minutes=3)), TIMEOUT),
    )

    keys = [(i.problem_id, i.window_start, i.workload_name, i.count) for i in incidents]
    assert keys == [
        ("DATABASE:payments:connection_pool", at, "payments-api", 2),
        ("DATABASE:payments:connection_pool", at, "payments-worker", 1),
        ("DATABASE:payments:connection_pool", at + timedelta(minutes=15), "payments-api", 1),
        ("TIMEOUT:payments:upstream_timeout", at, "payments-api", 1),
    ]
    first = incidents[0]
    assert first.first_seen == at + timedelta(minutes=1)
    assert first.last_seen == at + timedelta(minutes=14, seconds=59)
    assert first.window_end == at + timedelta(minutes=15)
    assert (first.category, first.flow, first.error_class, first.severity) == (
        "DATABASE",
        "payments",
        "connection_pool",
        "high",
    )


def test_first_and_last_seen_survive_out_of_order_arrival() -> None:
    at = DAY + timedelta(hours=3)
    incidents = aggregate(
        (event(at + timedelta(minutes=7)), DB_POOL),
        (event(at + timedelta(minutes=2)), DB_POOL),
        (event(at + timedelta(minutes=9)), DB_POOL),
    )
    assert incidents[0].first_seen == at + timedelta(minutes=2)
    assert incidents[0].last_seen == at + timedelta(minutes=9)


def test_samples_are_the_first_distinct_messages_and_bounded() -> None:
    at = DAY + timedelta(hours=1)
    messages = ["card 4111 1111 1111 1111 declined", "card 4111 1111 1111 1111 declined"] + [
        f"order {n} rejected for user{n}@example.com" for n in range(10)
    ]
    incidents = aggregate(*((event(at, message=m), VALIDATION) for m in messages))
    assert incidents[0].samples == [messages[0], messages[2], messages[3]]
    assert len(incidents[0].samples) == MAX_SAMPLES


def test_trace_ids_fingerprints_and_apps_are_distinct_and_bounded() -> None:
    aggregator = Aggregator(DAY, DAY + timedelta(days=1))
    at = DAY + timedelta(hours=2)
    for n in range(200):
        fp = Fingerprint(f"{n:016x}", f"template {n}")
        aggregator.add(event(at, trace_id=f"trace-{n % 80}", app=f"app-{n % 30}"), fp, DB_POOL)
    aggregator.add(event(at, trace_id="trace-0"), FP, DB_POOL)
    (incident,) = aggregator.result(InputStats()).incidents

    assert incident.count == 201
    # the smallest distinct values, not the first to arrive: the same set whatever the order
    assert incident.trace_ids == sorted(f"trace-{n}" for n in range(80))[:MAX_TRACE_IDS]
    assert len(incident.fingerprints) == MAX_FINGERPRINTS
    assert sorted(incident.fingerprints) == [f"{n:016x}" for n in range(MAX_FINGERPRINTS)]
    assert incident.fingerprints[f"{0:016x}"] == "template 0"
    assert len(incident.apps) == 20
    assert len(set(incident.apps)) == len(incident.apps)


def test_bounded_parts_do_not_depend_on_arrival_order() -> None:
    at = DAY + timedelta(hours=2)
    items = [
        (
            event(
                at + timedelta(seconds=n % 7),
                message=f"failure {n % 11}",
                trace_id=f"t-{n}",
                app=f"a-{n % 25}",
            ),
            Fingerprint(f"{n % 30:016x}", f"template {n % 30}"),
        )
        for n in range(300)
    ]

    def run(order):
        aggregator = Aggregator(DAY, DAY + timedelta(days=1))
        for ev, fp in order:
            aggregator.add(ev, fp, DB_POOL)
        (incident,) = aggregator.result(InputStats()).incidents
        return incident.samples, incident.trace_ids, incident.fingerprints, incident.apps

    assert run(items) == run(list(reversed(items))) == run(items[150:] + items[:150])


def test_events_outside_the_range_are_ignored_and_naive_times_are_utc() -> None:
    incidents = aggregate(
        (event(DAY - timedelta(seconds=1)), DB_POOL),
        (event(DAY + timedelta(days=1)), DB_POOL),
        (event(datetime(2025, 3, 4, 0, 0, 5)), DB_POOL),
    )
    assert len(incidents) == 1
    assert incidents[0].count == 1
    assert incidents[0].first_seen == DAY + timedelta(seconds=5)
    assert incidents[0].first_seen.tzinfo is not None


def test_minute_counts_per_problem_and_namespace() -> None:
    at = DAY + timedelta(hours=5)
    aggregator = Aggregator(DAY, DAY + timedelta(days=1))
    for seconds in (0, 10, 59, 60, 61):
        aggregator.add(event(at + timedelta(seconds=seconds)), FP, DB_POOL)
    aggregator.add(event(at, namespace="card-servicing"), FP, DB_POOL)
    stats = InputStats(fetched=6, accepted=6)
    analysis = aggregator.result(stats)

    assert analysis.minute_counts == {
        ("DATABASE:payments:connection_pool", "card-servicing"): {at: 1},
        ("DATABASE:payments:connection_pool", "payments"): {at: 3, at + timedelta(minutes=1): 2},
    }
    assert analysis.stats is stats
    assert (analysis.start, analysis.end) == (DAY, DAY + timedelta(days=1))


def test_result_order_does_not_depend_on_arrival_order() -> None:
    items = [
        (event(DAY + timedelta(minutes=m), namespace=ns), problem)
        for m in (50, 3, 31)
        for ns in ("payments", "card-servicing")
        for problem in (TIMEOUT, DB_POOL)
    ]
    forward = [i.key for i in aggregate(*items)]
    backward = [i.key for i in aggregate(*reversed(items))]
    assert forward == backward == sorted(forward)


def _days_events(count: int, per_pass: int) -> Iterator[tuple[Event, ProblemClass]]:
    """`count` events in passes of `per_pass` that each cover the whole day, every message distinct."""
    problems = (DB_POOL, TIMEOUT, VALIDATION)
    step = timedelta(days=1) / per_pass
    for n in range(count):
        at = DAY + (n % per_pass) * step
        yield event(at, message=f"request {n} failed", trace_id=f"trace-{n}"), problems[n % 3]


def test_memory_grows_with_problems_and_windows_not_events() -> None:
    aggregator = Aggregator(DAY, DAY + timedelta(days=1))
    events = _days_events(100_000, per_pass=20_000)
    for ev, problem in islice(events, 80_000):
        aggregator.add(ev, FP, problem)
    # Trace only the last 20 000 events: tracing is slow, and growth is what matters.
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for ev, problem in events:
            aggregator.add(ev, FP, problem)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    incidents = aggregator.result(InputStats()).incidents
    assert len(incidents) == 3 * 96
    assert sum(i.count for i in incidents) == 100_000
    assert all(len(i.samples) <= MAX_SAMPLES and len(i.trace_ids) <= MAX_TRACE_IDS for i in incidents)
    # Storing even 8 bytes per event would grow by 160 kB; the bounded sets churn (a smaller trace id
    # replaces a larger one) but do not grow.
    assert grown < 48 * 1024
