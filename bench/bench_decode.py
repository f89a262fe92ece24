"""What decoding a line costs, whole or typed, with and without flattening it: one day of the demo
NDJSON file, each line decoded and dropped as the hot loop does (CPU, best of `--repeat` rounds, the
garbage collector off so that no round pays for another's heap).

    python3 bench/bench_decode.py --n 1000000 --day 2025-01-02

The typed decode reads Structs of only the paths the presets and `detect_layout` read (each object on
a read path a Struct, `read_paths_struct`). Then, over the lines whose read paths all pass through
objects, the values at those paths read from the Structs by one `attrgetter` into a dict, against
`flatten_read` of the whole decode: the dict normalize reads, without Python walking the document.
The bench counts where the two hold the same at every read path.

Last, over the day's nested ECS lines only, what normalize costs (decoding included) against a sketch
of it on a typed decode: the event's fields read from Structs of the ECS paths and an `Event` built,
without what makes normalize exact (other spellings of a path, trace joining, levels in messages,
binary or oversized messages): the price of the per-event Python that a typed decode leaves.
"""

from __future__ import annotations

import argparse
import gc
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from itertools import compress
from operator import attrgetter, is_not
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_pipeline import demo_file  # noqa: E402

from core.fetch import NdjsonSource, _counted, _lines_starting_in  # noqa: E402
from core.layout import _DETECTION_PATHS, ERROR_LEVELS, field_maps, flatten, flatten_read, label_key, reads  # noqa: E402
from core.model import Event, InputStats  # noqa: E402
from core.normalize import normalize, parse_timestamp  # noqa: E402
from core.pipeline import GC_THRESHOLDS  # noqa: E402
from core.workload import attributed  # noqa: E402

_SCALAR = str | int | float | None
_JSON_VALUE = str | int | float | bool | list | None  # what an object on a read path may hold instead


def read_paths_struct() -> tuple[type, tuple[str, ...], Any, tuple[Any, ...]]:
    """A Struct of every path the presets' field maps and `detect_layout` read (`reads(None)`), built
    from them: each object on a read path a frozen Struct whose default is its empty instance (so
    that one attribute chain reads any path, an absent object reading as unset), each read path an
    `Any` field, unset by default. And the read paths, one `attrgetter` of all of them, in order, and
    what each reads when absent (unset, or the object's empty instance)."""
    paths = set(_DETECTION_PATHS)
    for fm in field_maps(None):
        for field in fields(fm):
            value = getattr(fm, field.name)
            if field.name == "owners":
                paths.update(path for _, path in value)
            elif isinstance(value, tuple):
                paths.update(value)  # the label objects are read paths here, read whole
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    chains: dict[str, tuple[str, Any]] = {}

    def struct(node: dict[str, Any], prefix: str, chain: str) -> type:
        members = []
        for index, (key, child) in enumerate(sorted(node.items())):
            name = f"f{index}"
            if child:
                sub = struct(child, f"{prefix}{key}.", f"{chain}{name}.")
                kind, default = sub | _JSON_VALUE, sub()
            else:
                kind, default = Any, msgspec.UNSET
            chains[prefix + key] = (chain + name, default)
            members.append((name, kind, msgspec.field(default=default, name=key)))
        return msgspec.defstruct(f"Fields{len(chains)}", members, frozen=True, gc=False)

    document = struct(tree, "", "")
    read = tuple(sorted(paths))
    values = attrgetter(*(chains[path][0] for path in read))
    return document, read, values, tuple(chains[path][1] for path in read)


def typed_flat(decode: Callable[[bytes], Any], read: tuple[str, ...], values: Any, absent: tuple) -> Callable:
    """A line to the dict of the read paths it holds (an object at one as its Struct): what normalize
    reads of `flatten_read`'s dict, the insides of label objects aside (a path through a value that
    is not an object raises AttributeError, where normalize would take today's path)."""

    def flat(raw: bytes) -> dict[str, Any]:
        found = values(decode(raw))
        return dict(compress(zip(read, found, strict=True), map(is_not, found, absent)))

    return flat


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


def _reads(typed_read: Callable[[bytes], Any], raw: bytes) -> bool:
    try:
        typed_read(raw)
    except (AttributeError, msgspec.ValidationError):  # a read path through a value not an object
        return False
    return True


_DOTTED_KEY = re.compile(rb'"(?:kubernetes|log|k8s|resource|container|error|trace|event)\.')


def _same_reads(today: dict[str, Any], typed: dict[str, Any], read: tuple[str, ...]) -> bool:
    """Whether the two hold the same at every read path (an object as a dict in one, a Struct in the
    other: normalize reads either as a value of the wrong type)."""
    for path in read:
        a, b = today.get(path, msgspec.UNSET), typed.get(path, msgspec.UNSET)
        if isinstance(b, msgspec.Struct) and isinstance(a, dict):
            continue
        if type(a) is not type(b) or a != b:
            return False
    return True


def print_costs(ways: dict[str, Callable[[bytes], Any]], lines: list[bytes], repeat: int) -> None:
    print("| step | µs per line |\n|---|---:|")
    for name, way in ways.items():

        def run(way: Callable[[bytes], Any] = way) -> None:
            for raw in lines:
                way(raw)

        print(f"| {name} | {best_cpu(run, repeat) / len(lines) * 1e6:.2f} |")


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
    document, read, values, absent = read_paths_struct()
    whole, typed = msgspec.json.Decoder(), msgspec.json.Decoder(document)
    ways: dict[str, Callable[[bytes], Any]] = {
        "msgspec decode of the whole line into dicts": whole.decode,
        "msgspec decode into Structs of only the read paths": typed.decode,
        "whole decode + `flatten`": lambda raw: flatten(whole.decode(raw)),
        '`b"labels." in raw or b"\\\\u" in raw` (what the Structs cannot see)': lambda raw: (
            b"labels." in raw or b"\\u" in raw
        ),
    }
    gc.disable()
    print(f"{len(lines)} lines of {args.day}, {len(read)} read paths\n")
    print_costs(ways, lines, args.repeat)

    # What normalize reads, from the Structs: the lines whose read paths all pass through objects.
    typed_read, every_path = typed_flat(typed.decode, read, values, absent), reads(None)
    readable = [raw for raw in lines if _reads(typed_read, raw)]
    same = [
        raw
        for raw in readable
        if _same_reads(flatten_read(whole.decode(raw), every_path), typed_read(raw), read)
    ]
    dotted = sum(_DOTTED_KEY.search(raw) is not None for raw in readable)
    print(
        f"\n{len(readable)} of them read from Structs, as `flatten_read` reads them in {len(same)}; "
        f"{dotted} spell a read path with a dotted key, which the Structs do not see\n"
    )
    print_costs(
        {
            "whole decode + `flatten_read` (today)": lambda raw: flatten_read(whole.decode(raw), every_path),
            "Struct decode + the read paths' values (one `attrgetter`) into a dict": typed_read,
        },
        same,
        args.repeat,
    )

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
