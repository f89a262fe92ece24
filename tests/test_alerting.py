"""Alert incidents (core/alerting.py) and the shared wording and severity of core/model.py."""

from __future__ import annotations

from datetime import UTC, datetime

from core.alerting import group
from core.model import (
    ChainRef,
    Finding,
    against_baseline,
    finding_from_dict,
    finding_to_dict,
    plural,
    severity_rank,
    worst_severity,
)

T = datetime(2026, 2, 9, 16, 15, tzinfo=UTC)
DB = "DATABASE:core_db:too_many_connections"


def test_one_severity_order() -> None:
    assert worst_severity(["low", "critical", "medium"]) == "critical"
    assert worst_severity([]) == "low"
    assert [severity_rank(s) for s in ("critical", "high", "medium", "low")] == [0, 1, 2, 3]


def test_counts_and_baselines_read_as_people_say_them() -> None:
    assert plural(1, "namespace") == "1 namespace"
    assert plural(3, "namespace") == "3 namespaces"
    assert against_baseline(218.0, 0.0, "the 7-day baseline") == "218 events; none in the 7-day baseline"
    assert against_baseline(218.0, 10.0, "the 7-day baseline") == "218 events, 21.8× the 7-day baseline of 10"
    assert against_baseline(1.0, None, "") == "1 event"


def test_a_namespace_finding_reads_namespace_and_cross_namespace_needs_two() -> None:
    (alone,) = group([Finding("burst", "namespace:payments", T, "critical", "burst", ("payments",))])
    assert alone.headline().startswith("namespace payments (burst): started")
    (one,) = group([Finding("cross_namespace", DB, T, "critical", "x", ("core-db",))])
    assert "cross-namespace" not in one.headline()


def test_findings_that_belong_together_are_one_incident() -> None:
    findings = [
        Finding("new", DB, T, "critical", "new", ("core-db",), first_seen=T, origin="StatefulSet/core-db/pg"),
        Finding(
            "spike",
            DB,
            T,
            "critical",
            "spike",
            ("core-db",),
            observed=428.0,
            baseline=0.0,
            baseline_of="the 7-day baseline",
        ),
        Finding("spike", "namespace:core-db", T, "critical", "ns spike", ("core-db",)),
        Finding("new", "DATABASE:payments:too_many_connections", T, "critical", "new", ("payments",)),
        Finding("spike", "AUTH:cards:access_denied", T, "critical", "other", ("cards",)),
    ]
    auth, db = sorted(group(findings), key=lambda i: i.key)
    assert auth.key == "AUTH:cards:access_denied"
    assert db.key == DB and db.namespaces == ("core-db", "payments")
    assert db.headline() == (
        f"{DB} (new problem, spike): started 2026-02-09T16:15:00Z in StatefulSet/core-db/pg; "
        "affects 2 namespaces (core-db, payments); 428 events; none in the 7-day baseline"
    )


def test_the_members_of_one_chain_are_one_incident_named_by_its_root() -> None:
    # A database refusing connections and a client's pool running dry are two error classes; the
    # chain (shared trace ids, the dependency direction) says they are one outage, rooted in the database.
    earlier = datetime(2026, 2, 9, 16, 2, tzinfo=UTC)
    chain = ChainRef(
        DB,
        "StatefulSet/core-db/postgres",
        earlier,
        ("CronJob/batch-processing/settlement", "Deployment/payments/api", "StatefulSet/core-db/postgres"),
    )
    pool = "DATABASE:batch_processing:connection_pool"
    findings = [
        Finding("spike", pool, T, "critical", "pool", ("batch-processing",), first_seen=T, chain=chain),
        Finding(
            "new", "DATABASE:payments:too_many_connections", T, "critical", "new", ("payments",), chain=chain
        ),
        Finding("spike", "AUTH:cards:access_denied", T, "critical", "other", ("cards",)),
    ]
    auth, outage = sorted(group(findings), key=lambda i: i.key)
    assert auth.key == "AUTH:cards:access_denied" and auth.origin == ""
    assert outage.key == DB  # the root, though its own finding is not among these
    assert outage.origin == "StatefulSet/core-db/postgres" and outage.started_at == earlier
    assert outage.namespaces == ("batch-processing", "core-db", "payments")
    assert set(chain.workloads) <= set(outage.workloads)
    assert "affects 3 namespaces (batch-processing, core-db, payments)" in outage.headline()


def test_a_finding_with_its_chain_reads_back_from_json() -> None:
    chain = ChainRef(DB, "StatefulSet/core-db/postgres", T, ("StatefulSet/core-db/postgres",))
    finding = Finding("new", DB, T, "critical", "new", ("core-db",), chain=chain)
    assert finding_from_dict(finding_to_dict(finding)) == finding
    assert finding_from_dict({**finding_to_dict(finding), "chain": None}).chain is None


def test_a_namespace_surge_joins_only_the_findings_of_its_own_time() -> None:
    # A catch-up run holds a day of windows: the morning's spike of one problem and the evening's
    # outage in the same namespace are two incidents, though both surge the namespace.
    morning, evening = datetime(2026, 2, 9, 10, 0, tzinfo=UTC), T
    findings = [
        Finding("spike", "BUSINESS:cards:validation_error", morning, "critical", "spike", ("cards",)),
        Finding("spike", "namespace:cards", morning, "critical", "ns", ("cards",)),
        Finding("spike", "DATABASE:cards:too_many_connections", evening, "critical", "spike", ("cards",)),
        Finding("burst", "namespace:cards", evening, "critical", "ns", ("cards",)),
    ]
    first, second = group(findings)
    assert (first.key, first.started_at) == ("BUSINESS:cards:validation_error", morning)
    assert (second.key, second.started_at) == ("DATABASE:cards:too_many_connections", evening)
    assert second.members == ("DATABASE:cards:too_many_connections", "namespace:cards")
