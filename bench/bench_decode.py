"""What decoding a line costs, whole or typed, with and without flattening it: one day of the demo
NDJSON file, each line decoded and dropped as the hot loop does (CPU, best of `--repeat` rounds, the
garbage collector off so that no round pays for another's heap).

    python3 bench/bench_decode.py --n 1000000 --day 2025-01-02

The typed decode reads Structs of only the fields the ECS, Fluent Bit and Vector presets read (each
object on a read path a Struct, the label objects `dict[str, scalar]`); what it reads is not
checked against normalize here: it only prices the decoding.

Then, over the day's nested ECS lines only, what normalize costs (decoding included) against a sketch
of it on a typed decode: the event's fields read from Structs of the ECS paths and an `Event` built,
without what makes normalize exact (other spellings of a path, trace joining, levels in messages,
binary or oversized messages): the price of the per-event Python that a typed decode leaves.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_pipeline import demo_file  # noqa: E402

from core.fetch import NdjsonSource, _counted, _lines_starting_in  # noqa: E402
from core.layout import ECS, ERROR_LEVELS, FLUENT_BIT, LEVEL_PATHS, VECTOR, flatten, label_key  # noqa: E402
from core.model import Event, InputStats  # noqa: E402
from core.normalize import normalize, parse_timestamp  # noqa: E402
from core.pipeline import GC_THRESHOLDS  # noqa: E402
from core.workload import attributed  # noqa: E402

_SCALAR = str | int | float | None


def preset_struct() -> type:
    """A Struct of every path the three nested presets read, built from their field maps."""
    tree: dict[str, Any] = {}
    labels: set[str] = set()
    paths = {"log", "message", *LEVEL_PATHS}
    for fm in (ECS, FLUENT_BIT, VECTOR):
        for field in fields(fm):
            value = getattr(fm, field.name)
            if field.name == "labels":
                labels.update(value)
            elif field.name == "owners":
                paths.update(path for _, path in value)
            elif isinstance(value, tuple):
                paths.update(value)
    for path in paths | labels:
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
        node[""] = "labels" if path in labels else "leaf"

    def struct(node: dict[str, Any], name: str) -> type:
        members = []
        for index, (key, child) in enumerate(sorted((k, v) for k, v in node.items() if k)):
            kids = {k: v for k, v in child.items() if k}
            if child.get("") == "labels":
                kind: Any = dict[str, _SCALAR] | None
            elif kids:
                sub = struct(child, key)
                kind = _SCALAR | sub if child.get("") == "leaf" else sub | None
            else:
                kind = _SCALAR
            members.append(
                (f"f{index}", kind | msgspec.UnsetType, msgspec.field(default=msgspec.UNSET, name=key))
            )
        return msgspec.defstruct(f"{name.title()}Fields", members, gc=False)

    return struct(tree, "document")


_MAYBE = msgspec.UnsetType


class _Name(msgspec.Struct, gc=False):
    name: _SCALAR | _MAYBE = msgspec.UNSET


class _Kubernetes(msgspec.Struct, gc=False):
    namespace: _SCALAR | _MAYBE = msgspec.UNSET
    pod: _Name | _SCALAR | _MAYBE = msgspec.UNSET
    container: _Name | _SCALAR | _MAYBE = msgspec.UNSET
    labels: dict[str, Any] | _SCALAR | _MAYBE = msgspec.UNSET
    deployment: _Name | _SCALAR | _MAYBE = msgspec.UNSET
    replicaset: _Name | _SCALAR | _MAYBE = msgspec.UNSET


class _Level(msgspec.Struct, gc=False):
    level: _SCALAR | _MAYBE = msgspec.UNSET


class _Type(msgspec.Struct, gc=False):
    type: _SCALAR | _MAYBE = msgspec.UNSET


class _Id(msgspec.Struct, gc=False):
    id: _SCALAR | _MAYBE = msgspec.UNSET


class _EcsDocument(msgspec.Struct, gc=False):
    timestamp: _SCALAR | _MAYBE = msgspec.field(default=msgspec.UNSET, name="@timestamp")
    message: _SCALAR | _MAYBE = msgspec.UNSET
    log: _Level | _SCALAR | _MAYBE = msgspec.UNSET
    kubernetes: _Kubernetes | _SCALAR | _MAYBE = msgspec.UNSET
    error: _Type | _SCALAR | _MAYBE = msgspec.UNSET
    trace: _Id | _SCALAR | _MAYBE = msgspec.UNSET


def typed_events(lines: list[bytes]) -> list[Event]:
    """The sketch: nested ECS lines to events through `_EcsDocument` (see the module's docstring)."""
    decode, events = msgspec.json.Decoder(_EcsDocument).decode, []
    for raw in lines:
        doc = decode(raw)
        k8s, level = doc.kubernetes, doc.log.level.lower()
        if level not in ERROR_LEVELS:
            continue
        pod, container = k8s.pod.name, k8s.container.name
        labels = tuple((label_key(key), str(value)) for key, value in k8s.labels.items())
        owners = tuple(
            (kind, owner.name)
            for kind, owner in (("Deployment", k8s.deployment), ("ReplicaSet", k8s.replicaset))
            if type(owner) is _Name
        )
        workload, app, _ = attributed(k8s.namespace, pod, container, labels, owners)
        events.append(
            Event(
                timestamp=parse_timestamp(doc.timestamp),
                namespace=workload.namespace,
                pod=pod,
                container=container,
                workload=workload,
                app=app,
                level=level,
                message=doc.message,
                error_type=doc.error.type if type(doc.error) is _Type else None,
                trace_id=doc.trace.id if type(doc.trace) is _Id else None,
            )
        )
    return events


def best_cpu(run: Callable[[], None], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.process_time()
        run()
        best = min(best, time.process_time() - began)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="events of the demo file (about)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ai-log-analyzer-bench")
    parser.add_argument("--day", type=date.fromisoformat, default=date(2025, 1, 2))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    source = NdjsonSource(demo_file(args.work, args.n))
    start = datetime(args.day.year, args.day.month, args.day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    with source.path.open("rb") as handle:
        lines = [
            raw
            for first, stop in source._segments(start, end)[0]
            for raw in _lines_starting_in(handle, first, stop)
            if _counted(raw, start, end)
        ]
    whole, typed, to_builtins = (
        msgspec.json.Decoder(),
        msgspec.json.Decoder(preset_struct()),
        msgspec.to_builtins,
    )
    ways: dict[str, Callable[[bytes], Any]] = {
        "msgspec decode of the whole line into dicts": whole.decode,
        "msgspec decode into Structs of only the preset fields": typed.decode,
        "whole decode + `flatten`": lambda raw: flatten(whole.decode(raw)),
        "Struct decode + `msgspec.to_builtins` + `flatten`": lambda raw: flatten(
            to_builtins(typed.decode(raw))
        ),
    }
    gc.disable()
    print(f"{len(lines)} lines of {args.day}\n\n| step | µs per line |\n|---|---:|")
    for name, way in ways.items():

        def run(way: Callable[[bytes], Any] = way) -> None:
            for raw in lines:
                way(raw)

        print(f"| {name} | {best_cpu(run, args.repeat) / len(lines) * 1e6:.2f} |")

    nested = [
        raw for raw in lines if raw.startswith(b'{"@timestamp"') and b'"kubernetes":{"namespace"' in raw
    ]
    gc.set_threshold(*GC_THRESHOLDS)  # as in a run: the events are kept, and the collector walks them
    gc.enable()

    def order(event: Event) -> tuple:  # normalize yields an event when its stream moves on
        return event.timestamp, event.pod, event.message

    today = sorted(normalize(map(whole.decode, nested), InputStats()), key=order)
    same = sum(a == b for a, b in zip(today, sorted(typed_events(nested), key=order), strict=True))
    print(f"\n{len(nested)} of them nested ECS lines: {len(today)} events, the sketch's equal in {same}")
    print("\n| step | µs per line |\n|---|---:|")
    ways = {
        "decode + normalize (today)": lambda: list(normalize(map(whole.decode, nested), InputStats())),
        "typed decode + the event's fields + `Event` (a sketch)": lambda: typed_events(nested),
    }
    for name, way in ways.items():
        print(f"| {name} | {best_cpu(way, args.repeat) / len(nested) * 1e6:.2f} |")


if __name__ == "__main__":
    main()
