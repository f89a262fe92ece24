"""Tests for core.propagate: chains of related incidents, their root, evidence and confidence."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.model import WINDOW, Analysis, Chain, ChainMember, Finding, Incident, InputStats
from core.propagate import DEFAULT_DATASTORES, MIN_LEAD, PropagateConfig, propagate, with_chains

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


def seconds(n: float) -> datetime:
    return OUTAGE + timedelta(seconds=n)


def workload(member: ChainMember) -> tuple[str, str]:
    kind, _, name = member.workload.split("/")
    return kind, name


def test_a_database_statefulset_is_the_root_though_its_client_logs_the_same_problem_more() -> None:
    # The outage: postgres refuses connections at 10:00; the API beside it and the services in
    # two other namespaces fail six minutes later (more than max_gap), with the same problem id and more
    # events, and trace ids shared with both.
    problem = "DATABASE:core_db:too_many_connections"
    incidents = [
        incident(problem, "core-db", "postgres", OUTAGE, traces("a", 20), count=80, kind="StatefulSet"),
        incident(problem, "core-db", "core-data-api", seconds(360), traces("a", 20) + traces("b", 9), 900),
        incident(
            "DATABASE:payments:too_many_connections", "payments", "gateway", seconds(380), traces("b", 9)
        ),
        incident("DATABASE:cards:too_many_connections", "cards", "card-api", seconds(385), traces("a", 5)),
    ]
    (chain,) = propagate(analyse(incidents), CFG)
    assert chain.root == ChainMember(problem, "core-db", "StatefulSet/core-db/postgres", OUTAGE, 80)
    assert (
        f"{problem} in Deployment/core-db/core-data-api depends on {problem} in StatefulSet/core-db/postgres "
        "(inferred: a data-store StatefulSet before its clients)"
    ) in chain.evidence


def test_a_statefulset_logging_a_database_problem_first_seen_later_is_still_the_root() -> None:
    # Clients time out before the store (no data-store word in its name) logs the refusal itself.
    incidents = [
        incident("DATABASE:ledger:deadlock", "ledger", "ledger-api", OUTAGE, traces("a", 10), 500),
        incident(
            "DATABASE:ledger:deadlock",
            "ledger",
            "ledger-store",
            seconds(20),
            traces("a", 10),
            40,
            "StatefulSet",
        ),
    ]
    (chain,) = propagate(analyse(incidents), CFG)
    assert workload(chain.root) == ("StatefulSet", "ledger-store")
    assert chain.root.first_seen == seconds(20)
    assert (
        "first seen 20 s after DATABASE:ledger:deadlock in Deployment/ledger/ledger-api" in chain.evidence[1]
    )


@pytest.mark.parametrize(
    ("dependencies", "root"), [({"orders": ["stock"]}, "stock-api"), ({"stock": ["orders"]}, "orders-api")]
)
def test_the_dependencies_file_direction_decides_the_root(dependencies, root, tmp_path: Path) -> None:
    deps = tmp_path / "dependencies.yaml"
    deps.write_text("\n".join(f"{k}: {v}" for k, v in dependencies.items()) + "\n", encoding="utf-8")
    incidents = [
        incident("APPLICATION:orders:checkout_failed", "orders", "orders-api", OUTAGE, []),
        incident("APPLICATION:stock:reserve_failed", "stock", "stock-api", seconds(120), []),
    ]
    (chain,) = propagate(analyse(incidents), PropagateConfig.load(deps, PropagateConfig(min_confidence=0.0)))
    assert workload(chain.root) == ("Deployment", root)


def test_trace_ids_decide_between_workloads_first_seen_within_the_clock_skew() -> None:
    # Every request passed through the hub; the two others never share a trace with each other.
    incidents = [
        incident("APPLICATION:web:render_failed", "web", "web", OUTAGE, traces("a", 6)),
        incident("APPLICATION:hub:call_failed", "hub", "hub", seconds(0.4), traces("a", 6) + traces("b", 6)),
        incident("APPLICATION:mobile:sync_failed", "mobile", "mobile", seconds(0.8), traces("b", 6)),
    ]
    (chain,) = propagate(analyse(incidents), PropagateConfig(min_confidence=0.0))
    assert workload(chain.root) == ("Deployment", "hub")


def test_the_earliest_workload_is_the_root_however_far_ahead_it_started() -> None:
    incidents = [
        incident("APPLICATION:orders:checkout_failed", "orders", "orders-api", OUTAGE, traces("a", 5)),
        incident(
            "APPLICATION:stock:reserve_failed",
            "stock",
            "stock-api",
            seconds(420),
            traces("a", 5) + traces("b", 5),
        ),
        incident("APPLICATION:ship:label_failed", "ship", "ship-api", seconds(425), traces("b", 5)),
    ]
    (chain,) = propagate(analyse(incidents), PropagateConfig(min_confidence=0.0))
    assert workload(chain.root) == ("Deployment", "orders-api")


# --- the root rule as a property ---------------------------------------------------------------------

_PARTS = re.compile(r"[^a-z0-9]+")


def _depends(dependent: ChainMember, dependency: ChainMember, cfg: PropagateConfig) -> bool:
    """docs/detection.md, "Root": does `dependent` directly depend on `dependency`?"""
    (kind, name), (dep_kind, dep_name) = workload(dependent), workload(dependency)
    if dependent.workload == dependency.workload:
        return False
    names = {dependent.namespace, name}
    if any(
        target in {dependency.namespace, dep_name} for n in names for target in cfg.dependencies.get(n, ())
    ):
        return True

    def store(kind: str, name: str) -> bool:
        return kind == "StatefulSet" and bool(set(_PARTS.split(name)) & cfg.datastores)

    if store(dep_kind, dep_name):
        return not store(kind, name)
    category, _, error_class = dependency.problem_id.split(":")
    theirs = dependent.problem_id.split(":")
    return (
        dep_kind == "StatefulSet"
        and category == "DATABASE"
        and kind != "StatefulSet"
        and not store(kind, name)
        and (theirs[0], theirs[2]) == (category, error_class)
    )


def _depends_on_root(member: ChainMember, chain: Chain, cfg: PropagateConfig) -> bool:
    seen, frontier = {chain.root}, [chain.root]
    while frontier:
        dependency = frontier.pop()
        for other in chain.members:
            if other not in seen and _depends(other, dependency, cfg):
                seen.add(other)
                frontier.append(other)
    return member in seen


_NAMES = ("postgres", "redis-0", "ledger-store", "api", "worker", "gateway")
_member = st.tuples(
    st.sampled_from(("DATABASE", "APPLICATION", "TIMEOUT")),
    st.sampled_from(("too_many_connections", "deadlock")),
    st.sampled_from(("core-db", "cards", "payments")),
    st.sampled_from(_NAMES),
    st.sampled_from(("Deployment", "StatefulSet")),
    st.floats(min_value=0, max_value=800, allow_nan=False),
    st.integers(min_value=1, max_value=1000),
    st.sets(st.sampled_from("abcd"), max_size=3),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    members=st.lists(_member, min_size=2, max_size=6),
    dependencies=st.dictionaries(
        st.sampled_from(("core-db", "cards", "payments", *_NAMES)),
        st.lists(st.sampled_from(("core-db", "cards", "payments", *_NAMES)), max_size=2),
        max_size=3,
    ),
)
@example(  # found by CI: a namespace configured to depend on itself linked two problems of one workload
    members=[
        ("DATABASE", "too_many_connections", "payments", "postgres", "Deployment", 1.0, 1, set()),
        ("APPLICATION", "too_many_connections", "payments", "postgres", "Deployment", 0.0, 1, set()),
    ],
    dependencies={"payments": ["payments"]},
)
def test_a_root_is_never_later_than_a_member_unless_that_member_depends_on_it(members, dependencies) -> None:
    cfg = PropagateConfig(dependencies=dependencies, min_confidence=0.0)
    incidents = [
        incident(
            f"{category}:{namespace.replace('-', '_')}:{error_class}",
            namespace,
            name,
            seconds(offset),
            [f"trace-{t}" for t in shared],
            count,
            kind,
        )
        for category, error_class, namespace, name, kind, offset, count, shared in members
    ]
    for chain in propagate(analyse(incidents), cfg):
        assert chain.root in chain.members
        for member in chain.members:
            if chain.root.first_seen - member.first_seen >= MIN_LEAD:
                assert _depends_on_root(member, chain, cfg), (chain.root, member)


def test_the_data_store_words_are_lower_case_name_parts() -> None:
    assert all(word == word.lower() and not _PARTS.search(word) for word in DEFAULT_DATASTORES)


def test_a_finding_of_a_chain_member_carries_the_chains_root_and_spread() -> None:
    (chain,) = propagate(analyse(db_outage()), CFG)
    member = chain.members[-1]
    findings = [
        Finding("spike", member.problem_id, OUTAGE, "critical", "spike", (member.namespace,)),
        Finding("cross_namespace", "TIMEOUT:*:upstream_timeout", OUTAGE, "high", "x", ("card-servicing",)),
        Finding("new", "AUTH:cards:access_denied", OUTAGE, "critical", "unrelated", ("cards",)),
    ]
    spike, spread, unrelated = with_chains(findings, [chain])
    assert spike.chain is not None and spike.chain == spread.chain
    assert (spike.chain.root, spike.chain.origin) == (
        "DATABASE:core_db:connection_pool",
        "StatefulSet/core-db/postgres",
    )
    assert spike.chain.first_seen == chain.root.first_seen
    assert spike.chain.namespaces == ("card-servicing", "core-db", "payments")
    assert unrelated.chain is None
