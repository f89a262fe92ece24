"""What decoding a line costs, whole or typed, with and without flattening it: one day of the demo
NDJSON file, each line decoded and dropped as the hot loop does (CPU, best of `--repeat` rounds, the
garbage collector off so that no round pays for another's heap).

    python3 bench/bench_decode.py --n 1000000 --day 2025-01-02

The typed decode reads Structs of only the fields the ECS, Fluent Bit and Vector presets read (each
object on a read path a Struct, the label objects `dict[str, scalar]`); what it reads is not
checked against normalize here: it only prices the decoding.
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
from core.layout import ECS, FLUENT_BIT, LEVEL_PATHS, VECTOR, flatten  # noqa: E402

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


if __name__ == "__main__":
    main()
