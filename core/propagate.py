"""Propagation: link incidents that overlap in time into chains and name the workload where it started.

The algorithm is pure and deterministic; only `PropagateConfig.load` reads a file (the known
dependencies). The root rule, the evidence and the confidence formula are in docs/detection.md.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import combinations
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.model import Analysis, Chain, ChainMember, ChainRef, Finding, Incident

DEFAULT_CATEGORY_PRIOR: dict[str, float] = {
    "DATABASE": 1.0,
    "INFRA": 1.0,
    "NETWORK": 0.8,
    "CONFIG": 0.7,
    "AUTH": 0.5,
    "APPLICATION": 0.4,
    "BUSINESS": 0.3,
    "EXTERNAL": 0.2,
    "TIMEOUT": 0.2,
}
"""How likely a problem of each category is a root rather than a symptom (0..1)."""
Prior = Annotated[float, Field(ge=0.0, le=1.0)]

UNKNOWN_CATEGORY_PRIOR = 0.4

# Weights of the root score; they sum to 1 so the score is the chain's confidence.
WEIGHT_TRACES = 0.3
WEIGHT_ORDER = 0.25
WEIGHT_DEPENDENCY = 0.25
WEIGHT_PRIOR = 0.2

MIN_LEAD = timedelta(seconds=1)
"""The least lead in first occurrence that counts as ordering evidence."""

INFERRED_DEPENDENCY_WEIGHT = 0.5
"""An inferred dependency (what the workload is) counts half a configured one in the confidence."""

DEFAULT_DATASTORES: frozenset[str] = frozenset(
    {
        "cassandra", "clickhouse", "cockroachdb", "db", "elasticsearch", "etcd", "kafka", "mariadb",
        "memcached", "mongo", "mongodb", "mysql", "nats", "opensearch", "postgres", "postgresql",
        "pulsar", "rabbitmq", "redis", "valkey", "zookeeper",
    }
)  # fmt: skip
"""Words that make a StatefulSet a data store when one of its name's or app label's parts is one."""

MAX_EVIDENCE = 12
"""Evidence lines kept per chain; a big chain lists the strongest links and says how many it left out."""


@dataclass(frozen=True)
class PropagateConfig:
    """Known dependencies and thresholds; PROPAGATE_* variables override them (docs/detection.md)."""

    # The environment overrides parse and check a field by its annotation, bounds included.
    dependencies: dict[str, list[str]] = field(default_factory=dict)
    """Dependent → what it depends on, over namespaces, apps or workload names, e.g.
    {"payments": ["core-db", "card-servicing"]} (PROPAGATE_DEPENDENCIES)."""
    max_gap_minutes: Annotated[float, Field(gt=0)] = 5.0
    """A root precedes a dependent by at most this much to count as ordering evidence
    (PROPAGATE_MAX_GAP_MINUTES)."""
    min_confidence: Annotated[float, Field(ge=0, le=1)] = 0.4
    """Chains whose root confidence is lower are dropped (PROPAGATE_MIN_CONFIDENCE)."""
    min_shared_traces: Annotated[int, Field(ge=1)] = 1
    """Trace ids two incidents must share to be linked by traces (PROPAGATE_MIN_SHARED_TRACES)."""
    category_prior: dict[str, Prior] = field(default_factory=lambda: dict(DEFAULT_CATEGORY_PRIOR))
    """Category → prior likelihood of being a root (0..1); unknown categories get 0.4."""
    datastores: frozenset[str] = DEFAULT_DATASTORES
    """Name parts that make a StatefulSet a data store, a dependency of its chain's other workloads
    (PROPAGATE_DATASTORES, a JSON list; an empty list turns the inference off)."""

    def unknown_categories(self, known: Collection[str]) -> list[str]:
        """The categories given a prior that are neither `known` (the taxonomy's) nor a default one:
        a misspelt category's prior would never be used."""
        return sorted(set(self.category_prior) - set(DEFAULT_CATEGORY_PRIOR) - set(known))

    @classmethod
    def load(cls, path: str | Path, base: PropagateConfig | None = None) -> PropagateConfig:
        """`base` with the dependencies (and category priors) of a YAML file (DEPENDENCIES_FILE)."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML: {exc}") from None
        return cls.from_config(data, str(path), base)

    @classmethod
    def from_config(
        cls, data: object, source: str = "<dependencies>", base: PropagateConfig | None = None
    ) -> PropagateConfig:
        """From `{"dependencies": {dependent: [dependency, …]}, "category_prior": {CATEGORY: 0..1}}`;
        a mapping without those keys is taken as the dependencies alone."""
        if isinstance(data, Mapping) and not {"dependencies", "category_prior"} & set(data):
            data = {"dependencies": data}
        try:
            spec = _DependenciesFile.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'top level'}: {error['msg']}"
                for error in exc.errors()
            )
            raise ValueError(f"{source}: {problems}") from None
        base = base or cls()
        prior = {**base.category_prior, **(spec.category_prior or {})}
        return replace(base, dependencies={**base.dependencies, **spec.dependencies}, category_prior=prior)


class _DependenciesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dependencies: dict[str, list[str]] = {}
    category_prior: dict[str, Prior] | None = None

    @field_validator("dependencies", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        # `payments: core-db` is as natural to write as `payments: [core-db]`.
        if isinstance(value, Mapping):
            return {key: [item] if isinstance(item, str) else item for key, item in value.items()}
        return value


@dataclass(slots=True)
class _Episode:
    """One problem in one workload over a run of consecutive windows: a chain member candidate."""

    problem_id: str
    category: str
    error_class: str
    namespace: str
    workload_kind: str
    workload: str
    names: frozenset[str]  # what dependencies may name it by: namespace, workload name, apps
    window_start: datetime
    window_end: datetime
    first_seen: datetime
    count: int
    trace_ids: set[str]
    apps: frozenset[str]  # the workload's name and app labels: what says it is a data store

    @property
    def label(self) -> str:
        return f"{self.problem_id} in {self.workload}"

    @property
    def order_key(self) -> tuple[datetime, str, str]:
        return (self.first_seen, self.problem_id, self.workload)


@dataclass(slots=True)
class _Link:
    shared_traces: int = 0
    # (dependency, dependent) pairs of episode indices configured as "dependent depends on dependency"
    depends: set[tuple[int, int]] = field(default_factory=set)


def propagate(analysis: Analysis, cfg: PropagateConfig) -> list[Chain]:
    """Chains of related incidents with their most likely root, ordered by the root's first occurrence."""
    episodes = _episodes(analysis.incidents)
    links = _links(episodes, cfg)
    chains = []
    for component in _components(len(episodes), links):
        chain = _chain(component, episodes, links, cfg)
        if chain.confidence >= cfg.min_confidence:
            chains.append(chain)
    chains.sort(key=lambda c: (c.root.first_seen, c.root.problem_id, c.root.workload))
    return chains


def with_chains(findings: Iterable[Finding], chains: Iterable[Chain]) -> list[Finding]:
    """Each finding with the chain its problem is a member of (the most confident one; a
    cross-namespace finding `CATEGORY:*:class` belongs to a chain holding a problem of its class), so
    that an alert about it names the chain's root and every workload the chain reached."""
    ranked = sorted(chains, key=lambda chain: -chain.confidence)

    def member_of(finding: Finding, chain: Chain) -> bool:
        category, wildcard, error_class = finding.problem_id.partition(":*:")
        return any(
            m.problem_id == finding.problem_id
            or (
                wildcard
                and m.problem_id.startswith(f"{category}:")
                and m.problem_id.endswith(f":{error_class}")
            )
            for m in chain.members
        )

    enriched = []
    for finding in findings:
        chain = next((chain for chain in ranked if member_of(finding, chain)), None)
        if chain is not None:
            root = chain.root
            workloads = tuple(sorted({m.workload for m in chain.members if m.workload}))
            finding = replace(
                finding, chain=ChainRef(root.problem_id, root.workload, root.first_seen, workloads)
            )
        enriched.append(finding)
    return enriched


def _episodes(incidents: Iterable[Incident]) -> list[_Episode]:
    """Incidents merged per (problem, workload) over runs of consecutive windows."""
    episodes: list[_Episode] = []
    current: dict[tuple[str, str, str, str], _Episode] = {}
    for incident in sorted(incidents, key=lambda i: (i.key[0], *i.key[2:], i.window_start)):
        key = (incident.problem_id, incident.namespace, incident.workload_kind, incident.workload_name)
        episode = current.get(key)
        if episode is not None and incident.window_start <= episode.window_end:
            episode.window_end = max(episode.window_end, incident.window_end)
            episode.first_seen = min(episode.first_seen, incident.first_seen or incident.window_start)
            episode.count += incident.count
            episode.trace_ids.update(incident.trace_ids)
            continue
        episode = _Episode(
            problem_id=incident.problem_id,
            category=incident.category,
            error_class=incident.error_class,
            namespace=incident.namespace,
            workload_kind=incident.workload_kind,
            workload=str(incident.workload),
            names=frozenset({incident.namespace, incident.workload_name, *incident.apps}),
            apps=frozenset({incident.workload_name, *incident.apps}),
            window_start=incident.window_start,
            window_end=incident.window_end,
            first_seen=incident.first_seen or incident.window_start,
            count=incident.count,
            trace_ids=set(incident.trace_ids),
        )
        current[key] = episode
        episodes.append(episode)
    episodes.sort(key=lambda e: e.order_key)
    return episodes


def _links(episodes: list[_Episode], cfg: PropagateConfig) -> dict[tuple[int, int], _Link]:
    """Evidence between pairs (i < j) of episodes that overlap in time (same or adjacent windows)."""
    links: dict[tuple[int, int], _Link] = defaultdict(_Link)

    def overlap(i: int, j: int) -> bool:
        a, b = episodes[i], episodes[j]
        return a.window_start <= b.window_end and b.window_start <= a.window_end

    by_trace: dict[str, list[int]] = defaultdict(list)
    by_name: dict[str, list[int]] = defaultdict(list)
    for index, episode in enumerate(episodes):
        for trace_id in episode.trace_ids:
            by_trace[trace_id].append(index)
        for name in episode.names:
            by_name[name].append(index)

    for members in by_trace.values():
        for i, j in combinations(members, 2):
            if overlap(i, j):
                links[(min(i, j), max(i, j))].shared_traces += 1
    for dependent, episode in enumerate(episodes):
        for name in sorted(episode.names):
            for dependency_name in cfg.dependencies.get(name, ()):
                for dependency in by_name.get(dependency_name, ()):
                    # a dependency is between workloads: two problems of one workload are not one
                    if episodes[dependency].workload != episode.workload and overlap(dependency, dependent):
                        pair = (min(dependency, dependent), max(dependency, dependent))
                        links[pair].depends.add((dependency, dependent))
    return {
        pair: link
        for pair, link in links.items()
        if link.shared_traces >= cfg.min_shared_traces or link.depends
    }


def _components(count: int, links: Mapping[tuple[int, int], _Link]) -> list[list[int]]:
    """Connected groups of two or more episodes, each sorted."""
    parent = list(range(count))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in links:
        parent[find(i)] = find(j)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(count):
        groups[find(i)].append(i)
    return sorted(group for group in groups.values() if len(group) > 1)


def _chain(
    component: list[int],
    episodes: list[_Episode],
    links: Mapping[tuple[int, int], _Link],
    cfg: PropagateConfig,
) -> Chain:
    gap = timedelta(minutes=cfg.max_gap_minutes)
    in_chain = set(component)
    pairs = {pair: link for pair, link in links.items() if pair[0] in in_chain}
    trace_graph: dict[int, set[int]] = defaultdict(set)
    configured: dict[int, set[int]] = defaultdict(set)  # dependency → its dependents
    for (i, j), link in pairs.items():
        if link.shared_traces >= cfg.min_shared_traces:
            trace_graph[i].add(j)
            trace_graph[j].add(i)
        for dependency, dependent in link.depends:
            configured[dependency].add(dependent)
    inferred = _inferred_dependents(component, episodes, cfg)
    dependents: dict[int, set[int]] = defaultdict(set)
    for graph in (configured, inferred):
        for dependency, theirs in graph.items():
            dependents[dependency] |= set(theirs)
    reach = {c: _reachable(c, dependents) for c in component}
    others = len(component) - 1

    def later(a: int, b: int) -> bool:
        # Under a second is within the clock skew between nodes: no order at all.
        return episodes[a].first_seen - episodes[b].first_seen >= MIN_LEAD

    def precedes(root: int, other: int) -> bool:
        return MIN_LEAD <= episodes[other].first_seen - episodes[root].first_seen <= gap

    def prior(c: int) -> float:
        return cfg.category_prior.get(episodes[c].category, UNKNOWN_CATEGORY_PRIOR)

    def score(c: int) -> float:
        configured_reach = _reachable(c, configured)
        dependency = len(configured_reach) + INFERRED_DEPENDENCY_WEIGHT * len(reach[c] - configured_reach)
        return (
            WEIGHT_TRACES * (len(_reachable(c, trace_graph)) / others)
            + WEIGHT_ORDER * (sum(precedes(c, o) for o in component if o != c) / others)
            + WEIGHT_DEPENDENCY * (dependency / others)
            + WEIGHT_PRIOR * prior(c)
        )

    # Where it started: no member first seen earlier unless that member depends on it. The earliest
    # member always qualifies; among those that do, the widest dependency, then the most direct trace
    # links (what every request passed through), the prior, and the earliest (component is in order).
    candidates = [c for c in component if all(o in reach[c] for o in component if later(c, o))]
    root = max(
        candidates,
        key=lambda c: (len(reach[c]), len(trace_graph[c]), prior(c), -component.index(c)),
    )
    confidence = min(1.0, max(0.0, score(root)))

    label = episodes[root].label
    evidence = [f"{label} is a {episodes[root].category} problem (root prior {prior(root):.1f})"]
    earliest = component[0]
    if later(root, earliest):
        seconds = (episodes[root].first_seen - episodes[earliest].first_seen).total_seconds()
        evidence.append(
            f"{label} first seen {seconds:.0f} s after {episodes[earliest].label}, which depends on it"
        )
    for other in component:
        if precedes(root, other):
            seconds = (episodes[other].first_seen - episodes[root].first_seen).total_seconds()
            evidence.append(f"{label} first seen {seconds:.0f} s before {episodes[other].label}")
    for dependent in sorted(inferred.get(root, {}), key=lambda d: episodes[d].order_key):
        evidence.append(f"{episodes[dependent].label} depends on {label} ({inferred[root][dependent]})")
    for (i, j), link in sorted(pairs.items(), key=lambda item: (-item[1].shared_traces, item[0])):
        if link.shared_traces:
            evidence.append(
                f"{link.shared_traces} shared trace ids between {episodes[i].label} and {episodes[j].label}"
            )
        for dependency, dependent in sorted(link.depends):
            evidence.append(
                f"{episodes[dependent].label} depends on {episodes[dependency].label} (configured)"
            )
    if len(evidence) > MAX_EVIDENCE:
        left_out = len(evidence) - (MAX_EVIDENCE - 1)
        evidence = [*evidence[: MAX_EVIDENCE - 1], f"… and {left_out} more"]

    members = tuple(_member(episodes[i]) for i in component)
    return Chain(
        members=members,
        root=members[component.index(root)],
        evidence=tuple(evidence),
        confidence=round(confidence, 3),
    )


_NAME_PARTS = re.compile(r"[^a-z0-9]+")


def _is_datastore(episode: _Episode, words: frozenset[str]) -> bool:
    """A StatefulSet whose name or app label has a data-store word as one of its parts."""
    return episode.workload_kind == "StatefulSet" and any(
        part in words for name in episode.apps for part in _NAME_PARTS.split(name.lower())
    )


def _inferred_dependents(
    component: list[int], episodes: list[_Episode], cfg: PropagateConfig
) -> dict[int, dict[int, str]]:
    """Dependency → {dependent: why}, from what the workloads are (docs/detection.md, "Root"): a data-store
    StatefulSet is a dependency of the chain's other workloads that are no data store; a StatefulSet
    logging a DATABASE problem is one of the workloads of other kinds logging the same class."""
    inferred: dict[int, dict[int, str]] = defaultdict(dict)
    words = frozenset(word.lower() for word in cfg.datastores)
    stores = {c for c in component if _is_datastore(episodes[c], words)}
    for d in component:
        dependency = episodes[d]
        if dependency.workload_kind != "StatefulSet":
            continue
        for c in component:
            client = episodes[c]
            if c in stores or client.workload == dependency.workload:
                continue
            if d in stores:
                inferred[d][c] = "inferred: a data-store StatefulSet before its clients"
            elif (
                dependency.category == "DATABASE"
                and client.workload_kind != "StatefulSet"
                and (client.category, client.error_class) == (dependency.category, dependency.error_class)
            ):
                inferred[d][c] = "inferred: the same database problem, logged first by the StatefulSet"
    return inferred


def _reachable(start: int, graph: Mapping[int, set[int]]) -> set[int]:
    """Episodes reachable from `start` (not counting itself)."""
    seen = {start}
    frontier = [start]
    while frontier:
        node = frontier.pop()
        for neighbour in graph.get(node, ()):
            if neighbour not in seen:
                seen.add(neighbour)
                frontier.append(neighbour)
    return seen - {start}


def _member(episode: _Episode) -> ChainMember:
    return ChainMember(
        problem_id=episode.problem_id,
        namespace=episode.namespace,
        workload=episode.workload,
        first_seen=episode.first_seen,
        count=episode.count,
    )
