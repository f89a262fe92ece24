"""Tests for core.propagate: chains of related incidents, their root, evidence and confidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.model import WINDOW, Analysis, Incident, InputStats
from core.propagate import PropagateConfig, propagate

OUTAGE = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
CFG = PropagateConfig()


def incident(
    problem_id: str,
    namespace: str,
    workload: str,
    first_seen: datetime,
    trace_ids: list[str],
    count: int = 50,
    kind: str = "Deployment",
) -> Incident:
    category, flow, error_class = problem_id.split(":")
    window = OUTAGE if first_seen < OUTAGE + WINDOW else OUTAGE + WINDOW * ((first_seen - OUTAGE) // WINDOW)
    return Incident(
        problem_id=problem_id,
        category=category,
        flow=flow,
        error_class=error_class,
        severity="high",
        window_start=window,
        window_end=window + WINDOW,
        namespace=namespace,
        workload_kind=kind,
        workload_name=workload,
        count=count,
        first_seen=first_seen,
        last_seen=window + timedelta(minutes=14),
        trace_ids=trace_ids,
        apps=[workload],
    )


def traces(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{n:04d}" for n in range(count)]


def db_outage() -> list[Incident]:
    return [
        incident(
            "DATABASE:core_db:connection_pool",
            "core-db",
            "postgres",
            OUTAGE,
            traces("a", 12) + traces("b", 5),
            kind="StatefulSet",
        ),
        incident(
            "TIMEOUT:card_servicing:upstream_timeout",
            "card-servicing",
            "card-api",
            OUTAGE + timedelta(seconds=90),
            traces("a", 12) + traces("c", 4),
        ),
        incident(
            "EXTERNAL:payments:gateway_error",
            "payments",
            "payments-api",
            OUTAGE + timedelta(seconds=150),
            traces("b", 5) + traces("c", 4),
        ),
        incident(
            "BUSINESS:onboarding:validation_error", "onboarding", "onboarding-api", OUTAGE, traces("z", 9)
        ),
    ]


def analyse(incidents: list[Incident]) -> Analysis:
    return Analysis(OUTAGE - timedelta(hours=10), OUTAGE + timedelta(hours=14), incidents, {}, InputStats())


def test_database_outage_chain_has_the_database_as_root() -> None:
    (chain,) = propagate(analyse(db_outage()), CFG)

    assert chain.root.problem_id == "DATABASE:core_db:connection_pool"
    assert chain.root.workload == "StatefulSet/core-db/postgres"
    assert chain.confidence > 0.7
    assert [m.namespace for m in chain.members] == ["core-db", "card-servicing", "payments"]
    assert (
        "12 shared trace ids between DATABASE:core_db:connection_pool in StatefulSet/core-db/postgres "
        "and TIMEOUT:card_servicing:upstream_timeout in Deployment/card-servicing/card-api"
    ) in chain.evidence
    assert (
        "DATABASE:core_db:connection_pool in StatefulSet/core-db/postgres first seen 90 s before "
        "TIMEOUT:card_servicing:upstream_timeout in Deployment/card-servicing/card-api"
    ) in chain.evidence


def test_configured_dependencies_raise_confidence_and_are_evidence() -> None:
    cfg = PropagateConfig(
        dependencies={"card-servicing": ["core-db"], "payments": ["core-db", "card-servicing"]}
    )
    (plain,) = propagate(analyse(db_outage()), CFG)
    (configured,) = propagate(analyse(db_outage()), cfg)

    assert configured.confidence > plain.confidence
    assert configured.confidence <= 1.0
    assert any(
        line.endswith(
            "depends on DATABASE:core_db:connection_pool in StatefulSet/core-db/postgres (configured)"
        )
        for line in configured.evidence
    )


def test_dependency_direction_outweighs_category_prior() -> None:
    # A timeout in an upstream service that the database's client depends on is the root, not the database.
    incidents = [
        incident("DATABASE:ledger:query_failed", "ledger", "ledger-db", OUTAGE + timedelta(seconds=30), []),
        incident("TIMEOUT:gateway:upstream_timeout", "gateway", "edge", OUTAGE, []),
    ]
    cfg = PropagateConfig(dependencies={"ledger": ["gateway"]})
    (chain,) = propagate(analyse(incidents), cfg)
    assert chain.root.problem_id == "TIMEOUT:gateway:upstream_timeout"
    assert "DATABASE:ledger:query_failed in Deployment/ledger/ledger-db depends on " in chain.evidence[2]


def test_unrelated_incidents_are_not_chained() -> None:
    incidents = [
        incident("DATABASE:core_db:connection_pool", "core-db", "postgres", OUTAGE, traces("a", 10)),
        incident(
            "TIMEOUT:card_servicing:upstream_timeout", "card-servicing", "card-api", OUTAGE, traces("b", 10)
        ),
    ]
    assert propagate(analyse(incidents), CFG) == []


def test_shared_trace_ids_hours_apart_are_not_chained() -> None:
    incidents = [
        incident("DATABASE:core_db:connection_pool", "core-db", "postgres", OUTAGE, traces("a", 10)),
        incident(
            "TIMEOUT:card_servicing:upstream_timeout",
            "card-servicing",
            "card-api",
            OUTAGE + timedelta(hours=3),
            traces("a", 10),
        ),
    ]
    assert propagate(analyse(incidents), CFG) == []


def test_incidents_in_consecutive_windows_merge_into_one_member() -> None:
    incidents = db_outage()[:2]
    incidents.append(
        incident(
            "DATABASE:core_db:connection_pool", "core-db", "postgres", OUTAGE + WINDOW, [], kind="StatefulSet"
        )
    )
    (chain,) = propagate(analyse(incidents), CFG)
    assert len(chain.members) == 2
    assert chain.root.count == 100
    assert chain.root.first_seen == OUTAGE


def test_low_confidence_chains_are_dropped() -> None:
    incidents = [
        incident("BUSINESS:cards:validation_error", "cards", "card-api", OUTAGE, traces("a", 3)),
        incident("BUSINESS:payments:validation_error", "payments", "payments-api", OUTAGE, traces("a", 3)),
    ]
    assert propagate(analyse(incidents), PropagateConfig(min_confidence=0.0)) != []
    assert propagate(analyse(incidents), CFG) == []


def test_chains_are_deterministic() -> None:
    incidents = db_outage()
    assert propagate(analyse(incidents), CFG) == propagate(analyse(list(reversed(incidents))), CFG)


def test_dependencies_file_in_both_shapes(tmp_path: Path) -> None:
    plain = tmp_path / "plain.yaml"
    plain.write_text("card-servicing: core-db\npayments: [core-db, card-servicing]\n", encoding="utf-8")
    full = tmp_path / "full.yaml"
    full.write_text(
        "dependencies:\n  payments: [core-db]\ncategory_prior:\n  EXTERNAL: 0.9\n", encoding="utf-8"
    )
    base = PropagateConfig(min_confidence=0.6)

    from_plain = PropagateConfig.load(plain, base=base)
    from_full = PropagateConfig.load(full)

    assert from_plain.dependencies == {
        "card-servicing": ["core-db"],
        "payments": ["core-db", "card-servicing"],
    }
    assert from_plain.min_confidence == 0.6
    assert from_full.dependencies == {"payments": ["core-db"]}
    assert from_full.category_prior["EXTERNAL"] == 0.9
    assert from_full.category_prior["DATABASE"] == 1.0


def test_invalid_dependencies_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "deps.yaml"
    bad.write_text("dependencies:\n  payments: [core-db]\ncategory_prior:\n  DATABASE: 3\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"deps\.yaml: category_prior\.DATABASE"):
        PropagateConfig.load(bad)
    bad.write_text("dependencies: [unclosed\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid YAML"):
        PropagateConfig.load(bad)
