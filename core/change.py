"""What changed: a new or regressed problem that first shows minutes after its workload rolled out a
new image tag says so ("first seen 4 min after card-opening-api rolled out 1.39.3").

The analysed events are error-level only, and a rollout shows in every line of the new pods, so the
images are read apart from the analysis: for each new or regressed problem of a report, the
documents of any level of its namespace in a short span before its first occurrence
(`RolloutSource.image_documents`, one aggregation in Elasticsearch), each pod attributed to its
workload once (`core.workload`). A rollout is a tag of the workload first seen within
`ChangeConfig.window` before the problem, after another tag of the same image was seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from core.layout import FieldMap, Layout, detect_layout, field_maps, flatten, is_scalar, label_key, valid_text
from core.model import Workload, utc
from core.normalize import parse_timestamp
from core.report.model import ProblemSummary
from core.workload import attributed

_RESOURCE = "resource.attributes."

IMAGE_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # ECS: `container.image.name` (Filebeat writes the pod spec's image, tag included) and
    # `container.image.tag` for a name without one.
    "ecs": (("container.image.name",), ("container.image.tag",)),
    # Fluent Bit's kubernetes filter and Vector's kubernetes_logs: the pod spec's image, "repo:tag".
    "fluent-bit": (("kubernetes.container_image",), ()),
    "vector": (("kubernetes.container_image",), ()),
    # OTel resource attributes: the name without its tag, the tag apart (or `tags`, a list).
    "otel": (
        (_RESOURCE + "container.image.name",),
        (_RESOURCE + "container.image.tag", _RESOURCE + "container.image.tags"),
    ),
}
"""Per layout (`FieldMap.name`), the paths of the container's image and of its tag. A layout of
another name (`custom`) tries them all."""


def image_paths(layout: FieldMap) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(image paths, tag paths) of a layout."""
    if layout.name in IMAGE_FIELDS:
        return IMAGE_FIELDS[layout.name]
    names = tuple(dict.fromkeys(path for names, _ in IMAGE_FIELDS.values() for path in names))
    tags = tuple(dict.fromkeys(path for _, tags in IMAGE_FIELDS.values() for path in tags))
    return names, tags


def all_image_paths(layout: Layout | None) -> list[str]:
    """Every image and tag path the documents of `layout` may hold."""
    paths = [path for fm in field_maps(layout) for group in image_paths(fm) for path in group]
    return list(dict.fromkeys(paths))


@runtime_checkable
class RolloutSource(Protocol):
    """A source that can show which images a namespace's pods ran."""

    def image_documents(self, namespace: str, start: datetime, end: datetime) -> Iterator[dict]:
        """Documents of any level of `namespace` in [start, end): at least the earliest one of each
        pod and image (more are allowed), each with its timestamp, pod, labels, owners and image."""
        ...


@dataclass(frozen=True, slots=True)
class ChangeConfig:
    """How a rollout is looked for (docs/detection.md, "What changed")."""

    window: timedelta = timedelta(minutes=30)  # CHANGE_WINDOW_MINUTES: rollout to first occurrence, at most
    earlier: timedelta = timedelta(hours=1)  # before the window: where the older tag must have been seen
    max_problems: int = 20  # new and regressed problems looked into per report, highest ranked first


EXPLAINED_FACTS = ("new", "regressed")


@dataclass(frozen=True, slots=True)
class Rollout:
    """A new tag of a workload's image, first seen at `at`, after `previous`."""

    workload: Workload
    repository: str
    tag: str
    previous: str
    at: datetime


def image_reference(image: str, tag: str | None = None) -> tuple[str, str] | None:
    """(repository, tag) of an image reference: "host:5000/team/api:1.39.3@sha256:…" is
    ("host:5000/team/api", "1.39.3"); a reference without a tag takes `tag`, else its digest
    ("sha256:" and 12 hex digits); None when it names no version at all."""
    name, _, digest = image.strip().partition("@")
    if name.startswith("sha256:"):  # an image ID, as a runtime may report a pod's image: no repository
        return None
    colon = name.rfind(":")
    if colon > name.rfind("/"):  # a colon before the last slash is a registry's port
        name, tag = name[:colon], name[colon + 1 :] or tag
    if not tag and digest:
        algorithm, _, value = digest.partition(":")
        tag = f"{algorithm}:{value[:12]}"
    return (name, tag) if name and tag else None


Sightings = dict[tuple[Workload, str], dict[str, datetime]]
"""(workload, image repository) → tag → when a document with it was first seen."""


def owner(workload: Workload) -> Workload:
    """What a rollout belongs to: a CronJob's Jobs are one workload, as each Job runs new pods."""
    cronjob = workload.cronjob
    return Workload("CronJob", workload.namespace, cronjob) if cronjob else workload


def sightings(docs: Iterable[Any], layout: Layout | None = None) -> Sightings:
    """When each tag of each workload's images was first seen in `docs`, each read with its layout's
    paths by the layout primitives alone: not through normalize's records, which are the hot loop's
    and shaped for it, while this reads a few documents per problem."""
    seen: Sightings = {}
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        flat = flatten(doc)
        fm = layout if isinstance(layout, FieldMap) else detect_layout(flat, layout or ())
        names, tags = image_paths(fm)
        image, namespace, pod = _text(flat, names), _text(flat, fm.namespace), _text(flat, fm.pod)
        at = parse_timestamp(next((flat[p] for p in fm.timestamp if flat.get(p) is not None), None))
        reference = image_reference(image, _tag(flat, tags)) if image else None
        if reference is None or not namespace or not pod or at is None:
            continue
        owners = tuple((kind, name) for kind, path in fm.owners if (name := _text(flat, (path,))))
        container = _text(flat, fm.container) or ""
        workload = attributed(namespace, pod, container, _labels(flat, fm.labels), owners)[0]
        repository, tag = reference
        tags_seen = seen.setdefault((owner(workload), repository), {})
        if tag not in tags_seen or at < tags_seen[tag]:
            tags_seen[tag] = at
    return seen


def _text(flat: dict[str, Any], paths: Sequence[str]) -> str | None:
    """The first of `paths` holding a non-empty string or number, stripped."""
    for path in paths:
        value = flat.get(path)
        if is_scalar(value) and (found := valid_text(str(value).strip())):
            return found
    return None


def _labels(flat: dict[str, Any], paths: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """The pod labels under any of `paths`, by canonical key (`label_key`), as attribution takes them."""
    prefixes = tuple(path + "." for path in paths)
    return tuple(
        (label_key(key[len(prefix) :]), valid_text(str(value)))
        for prefix in prefixes
        for key, value in flat.items()
        if key.startswith(prefix) and is_scalar(value)
    )


def _tag(flat: dict[str, Any], paths: Sequence[str]) -> str | None:
    for path in paths:
        value = flat.get(path)
        if isinstance(value, list):  # ECS and OTel may list several tags: the first names the image
            value = value[0] if value else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def rollout_before(
    seen: Sightings, workload: Workload, first_seen: datetime, window: timedelta
) -> Rollout | None:
    """The latest rollout of `workload` within `window` before `first_seen`: a tag first seen then,
    while another tag of the same image was seen before it."""
    key, first_seen = owner(workload), utc(first_seen)
    found: Rollout | None = None
    for (workload_seen, repository), tags in seen.items():
        if workload_seen != key:
            continue
        for tag, at in tags.items():
            if not first_seen - window <= at <= first_seen:
                continue
            older = [(when, other) for other, when in tags.items() if other != tag and when < at]
            if older and (found is None or at > found.at):
                found = Rollout(workload_seen, repository, tag, max(older)[1], at)
    return found


def sentence(first_seen: datetime, rollout: Rollout) -> str:
    """ "first seen 4 min after card-opening-api rolled out 1.39.3"; minutes rounded down."""
    minutes = (utc(first_seen) - rollout.at) // timedelta(minutes=1)
    after = "less than 1 min" if minutes < 1 else f"{minutes} min"
    return f"first seen {after} after {rollout.workload.name} rolled out {rollout.tag}"


@dataclass(frozen=True, slots=True)
class Subject:
    """A problem to explain: its id, and the workload and time of its first occurrence."""

    problem_id: str
    workload: Workload
    first_seen: datetime


def subjects(problems: Iterable[ProblemSummary]) -> list[Subject]:
    """The new and regressed problems, in their order, each with the workload that showed it first."""
    found = []
    for problem in problems:
        if problem.fact in EXPLAINED_FACTS and problem.workload_stats:
            origin = min(problem.workload_stats, key=lambda stats: (stats.first_seen, str(stats.workload)))
            found.append(Subject(problem.id, origin.workload, origin.first_seen))
    return found


def explain(
    subjects: Iterable[Subject], source: RolloutSource, config: ChangeConfig, layout: Layout | None = None
) -> dict[str, str]:
    """Problem id → the sentence saying which rollout it followed, for the subjects that followed one.
    A source error is raised: the caller decides that it costs only the sentences."""
    changes: dict[str, str] = {}
    for subject in list(subjects)[: config.max_problems]:
        first_seen = utc(subject.first_seen)
        start = first_seen - config.window - config.earlier
        # The end is exclusive: the first occurrence's own second is in it, as a new pod's first line
        # may be the error itself.
        docs = source.image_documents(subject.workload.namespace, start, first_seen + timedelta(seconds=1))
        rollout = rollout_before(sightings(docs, layout), subject.workload, first_seen, config.window)
        if rollout is not None:
            changes[subject.problem_id] = sentence(first_seen, rollout)
    return changes
