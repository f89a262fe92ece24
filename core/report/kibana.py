"""Links to the evidence: a Kibana Discover URL whose time range and query show exactly a problem's
(or an alert incident's) events, the way ElastAlert2's `kibana_discover` builds its links: the
Discover app with a rison-encoded global state (`_g`, the time range) and app state (`_a`, the data
view and a KQL query).

The query names the namespaces, the workloads by their pods' name prefix (a Deployment's pods are
`<name>-<hash>-<suffix>`, a StatefulSet's `<name>-<n>`, a Job's `<name>-<suffix>`), and the constant
words of the problem's template. Where the layout is not one known shape, each field is asked for on
every candidate path of the layouts (a path the data view does not have matches nothing).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import rison

from core.layout import Layout, field_maps
from core.model import Workload, isoformat
from core.report.model import Report

PAD = timedelta(minutes=1)
"""Added before the first and after the last event: Discover's range ends are exclusive to the ms."""

MAX_WORDS = 6
"""Constant words of a template in the query: enough to tell the message apart, short enough to read."""

_PLACEHOLDER = re.compile(r"<[A-Z*][A-Z0-9_]*>|<\*>")
_WORD = re.compile(r"[A-Za-z][A-Za-z_]{2,}")
_KQL_SPECIAL = re.compile(r'([\\():<>"*{}])')
_POD_KINDS = ("Pod", "Unknown", "ReplicaSet")  # a workload named as its pod (or pod set) is asked for exactly


@dataclass(frozen=True, slots=True)
class Kibana:
    """Where Kibana is (`KIBANA_URL`), which data view to open (`KIBANA_DATA_VIEW_ID`, else Kibana's
    default), and the field paths of the configured layout."""

    url: str
    data_view: str | None = None
    layout: Layout | None = None  # the run's layout (None: every preset)

    def discover(
        self,
        *,
        start: datetime,
        end: datetime,
        namespaces: Iterable[str] = (),
        workloads: Iterable[Workload | str] = (),
        template: str = "",
    ) -> str:
        """The Discover URL for the events of `workloads` in `namespaces` in [start, end] whose message
        holds the constant words of `template`."""
        query = kql(self._paths(), namespaces, workloads, template)
        global_state = {
            "filters": [],
            "refreshInterval": {"pause": True, "value": 0},
            "time": {"from": isoformat(start - PAD), "to": isoformat(end + PAD)},
        }
        app_state: dict[str, object] = {
            "columns": [],
            "filters": [],
            "interval": "auto",
            "query": {"language": "kuery", "query": query},
        }
        if self.data_view:
            app_state["index"] = self.data_view
        return (
            f"{self.url.rstrip('/')}/app/discover#/?_g={urllib.parse.quote(rison.dumps(global_state))}"
            f"&_a={urllib.parse.quote(rison.dumps(app_state))}"
        )

    def _paths(self) -> dict[str, tuple[str, ...]]:
        maps = field_maps(self.layout)
        return {
            name: tuple(dict.fromkeys(path for m in maps for path in getattr(m, name)))
            for name in ("namespace", "pod", "message")
        }


def kql(
    paths: dict[str, tuple[str, ...]],
    namespaces: Iterable[str],
    workloads: Iterable[Workload | str],
    template: str,
) -> str:
    """The KQL query: every clause must hold, each clause any of its field's paths."""
    clauses = []
    names = sorted(set(namespaces))
    if names:
        clauses.append(_any(paths["namespace"], [_quoted(n) for n in names]))
    pods = sorted({_pod_pattern(w) for w in workloads} - {""})
    if pods:
        clauses.append(_any(paths["pod"], pods))
    words = constant_words(template)
    if words:
        value = "(" + " and ".join(_quoted(w) for w in words) + ")"
        clauses.append("(" + " or ".join(f"{path}:{value}" for path in paths["message"]) + ")")
    return " and ".join(clauses)


def constant_words(template: str, limit: int = MAX_WORDS) -> list[str]:
    """The words of a template that masking left as they are, longest first, at most `limit`."""
    words = dict.fromkeys(_WORD.findall(_PLACEHOLDER.sub(" ", template)))
    return sorted(words, key=lambda w: (-len(w), w))[:limit]


def _any(paths: Sequence[str], values: Sequence[str]) -> str:
    value = values[0] if len(values) == 1 else "(" + " or ".join(values) + ")"
    return "(" + " or ".join(f"{path}:{value}" for path in paths) + ")"


def _quoted(value: str) -> str:
    """A KQL phrase: inside quotes only `\\` and `"` are special."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pod_pattern(workload: Workload | str) -> str:
    """Its pods' names as a KQL wildcard value (`card-api-*`), or the pod's own name when the workload
    is a pod; "" when it names nothing."""
    if isinstance(workload, str):  # "Kind/namespace/name"
        parts = workload.split("/")
        kind, name = parts[0], parts[-1]
    else:
        kind, name = workload.kind, workload.name
    if not name:
        return ""
    escaped = _KQL_SPECIAL.sub(r"\\\1", name).replace(" ", "\\ ")
    return escaped if kind in _POD_KINDS else f"{escaped}-*"


def link_problems(report: Report, kibana: Kibana) -> None:
    """Give every problem of the report the link to its events: its namespaces and workloads from
    its first to its last event, its most frequent template's constant words."""
    for problem in report.problems:
        problem.kibana_url = kibana.discover(
            start=problem.first_seen,
            end=problem.last_seen,
            namespaces=problem.namespaces,
            workloads=problem.workloads,
            template=problem.templates[0] if problem.templates else "",
        )
