"""What each stage of the hot loop costs per document, in this process: reading and decoding a range of
the demo NDJSON file, normalize, fingerprint, classify and aggregate, each timed apart over the
previous stage's output (CPU time, the best of `--repeat` rounds, each round with cold caches as a
backfill's day starts them), the file's hour layout, which a run works out once, and redaction, which
every sample and template passes when a range is stored and a report published (here every message).

    python3 bench/bench_stages.py --n 100000
    python3 bench/bench_stages.py --n 1000000 --day 2025-01-02
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_pipeline import DAYS, END_DAY, demo_file  # noqa: E402

from core.aggregate import Aggregator  # noqa: E402
from core.classify import Classifier  # noqa: E402
from core.fetch import NdjsonSource  # noqa: E402
from core.fingerprint import Fingerprinter  # noqa: E402
from core.model import InputStats  # noqa: E402
from core.normalize import normalize  # noqa: E402
from core.pipeline import GC_THRESHOLDS  # noqa: E402
from core.redact import redact  # noqa: E402


def best_cpu(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The least CPU seconds of `repeat` runs, and what the last returned."""
    best, result = float("inf"), None
    for _ in range(repeat):
        began = time.process_time()
        result = run()
        best = min(best, time.process_time() - began)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="events of the demo file (about)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ai-log-analyzer-bench")
    parser.add_argument("--day", type=date.fromisoformat, help="one UTC day (default: all 8 demo days)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    source = NdjsonSource(demo_file(args.work, args.n))
    if args.day:
        start = datetime(args.day.year, args.day.month, args.day.day, tzinfo=UTC)
        end = start + timedelta(days=1)
    else:
        end = datetime(END_DAY.year, END_DAY.month, END_DAY.day, tzinfo=UTC) + timedelta(days=1)
        start = end - timedelta(days=DAYS)
    gc.set_threshold(*GC_THRESHOLDS)

    layout_began = time.process_time()
    source._layout()  # the file's hour layout, once per run (kept while the file is unchanged)
    layout_s = time.process_time() - layout_began
    docs = list(source.fetch(start, end, InputStats()))
    read_s, _ = best_cpu(lambda: sum(1 for _ in source.fetch(start, end, InputStats())), args.repeat)
    normalize_s, events = best_cpu(lambda: list(normalize(docs, InputStats())), args.repeat)

    def fingerprints() -> tuple[list, Fingerprinter]:
        fingerprinter = Fingerprinter()
        return [fingerprinter.fingerprint(e.message, e.error_type) for e in events], fingerprinter

    fingerprint_s, (fps, fingerprinter) = best_cpu(fingerprints, args.repeat)

    def classes() -> list:
        classifier = Classifier()
        return [classifier.classify(event, fp) for event, fp in zip(events, fps, strict=True)]

    classify_s, problems = best_cpu(classes, args.repeat)

    def aggregate() -> None:
        aggregator = Aggregator(start, end)
        for event, fp, problem in zip(events, fps, problems, strict=True):
            aggregator.add(event, fp, problem)

    aggregate_s, _ = best_cpu(aggregate, args.repeat)
    redact_s, _ = best_cpu(lambda: [redact(event.message) for event in events], args.repeat)

    n = len(docs)
    cache = fingerprinter._cached.cache_info()
    print(f"{n} documents, {len(events)} events, {start:%Y-%m-%d} – {end:%Y-%m-%d}")
    print(f"fingerprint cache: {cache.misses} messages masked, {cache.hits} hits")
    print(f"hour layout of the whole file, once per run: {layout_s:.2f} s of CPU")
    print(f"redaction, per sample and template kept: {redact_s / len(events) * 1e6:.1f} µs per message\n")
    print("| stage | CPU µs per document |\n|---|---:|")
    stages = {
        "read + decode": read_s,
        "normalize": normalize_s,
        "fingerprint": fingerprint_s,
        "classify": classify_s,
        "aggregate": aggregate_s,
    }
    for stage, seconds in stages.items():
        print(f"| {stage} | {seconds / n * 1e6:.1f} |")
    print(f"| **hot loop** | **{sum(stages.values()) / n * 1e6:.1f}** |")


if __name__ == "__main__":
    main()
