"""Benchmark the Elasticsearch fetch strategy and the whole `backfill`, from Elasticsearch and from NDJSON.

Indexes N generated demo events (eight days, both field layouts) into the node, kept between runs
while its document count matches, then measures in one run:
(a) the bare fetch rate of `ElasticsearchSource` (just iterating it) against `helpers.scan`, and the
bare decode rate of the NDJSON file (its lines read with msgspec in one process, nothing else);
(b) the real `backfill` CLI in a subprocess over those days (temp SQLite DB): events/s and peak RSS,
from Elasticsearch and from the NDJSON file, with `--workers` as ANALYSIS_WORKERS. Prints a Markdown
table, the two ratios (backfill from Elasticsearch / bare PIT fetch, backfill from NDJSON / bare
decode) and appends JSON to results.jsonl.

With each figure goes the CPU it cost per document: the Python side's own (this process for the bare
fetch, the backfill and its workers for a run) and the Elasticsearch node's (its process CPU from the
nodes stats API, before and after). On a machine whose cores the node shares, no run can go faster than
cores / (CPU per document of both): that bound is printed next to the measured rate.

    python3 bench/bench_pipeline.py --n 100000
    python3 bench/bench_pipeline.py --n 100000 --fetch-repeat 1 --workers 2
    python3 bench/bench_pipeline.py --n 1000000 --fetch-repeat 2
    python3 bench/bench_pipeline.py --n 100000 1000000 --fetch-repeat 1 --workers 2   # and RSS(1M)/RSS(100k)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec  # noqa: E402
from elasticsearch import Elasticsearch  # noqa: E402
from elasticsearch.helpers import parallel_bulk, scan  # noqa: E402

from core import demo  # noqa: E402
from core.config import Settings  # noqa: E402
from core.fetch import ElasticsearchSource, client_options  # noqa: E402
from core.model import InputStats  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
END_DAY = date(2025, 1, 8)
DAYS = 8
SEED = 42
EVENTS_PER_SCALE = 135_619  # lines of the 8-day demo at scale 1 (seed 42): scale = N / this
INDEX_PREFIX = "logs-k8s-bench-"  # matches the logs-k8s-* template (subobjects: false)
# The backfill's own measurement: the summary lines it prints.
_FETCHED = re.compile(r"Events fetched: (\d+)")
_DURATION = re.compile(r"finished for \d+ days .* in ([\d.]+)s")


@dataclass
class FetchRate:
    strategy: str
    docs: int
    best_per_s: float
    median_per_s: float
    own_cpu_us: float = 0.0  # CPU of this process per document, the best round's
    es_cpu_us: float = 0.0  # CPU of the Elasticsearch node per document, the best round's


@dataclass
class BackfillRun:
    source: str
    events: int
    wall_s: float
    run_s: float  # the duration the backfill reports (without interpreter start-up and imports)
    events_per_s: float
    peak_rss_mb: float  # the largest of the backfill process and its analysis workers
    workers: int = 1
    own_cpu_us: float = 0.0  # CPU of the backfill and its workers per event
    es_cpu_us: float = 0.0  # CPU of the Elasticsearch node per event during the run


def demo_file(work: Path, n: int) -> Path:
    """The demo NDJSON of about `n` events, generated once per N."""
    path = work / f"demo-{n}.ndjson"
    if not path.is_file():
        print(f"generating ~{n} events into {path} …", flush=True)
        demo.generate(path, END_DAY, days=DAYS, seed=SEED, scale=n / EVENTS_PER_SCALE)
    return path


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def ensure_index(client: Elasticsearch, path: Path, n: int, lines: int) -> str:
    """The index holding exactly the file's documents: reused when its count matches, else rebuilt."""
    index = f"{INDEX_PREFIX}{n}"
    if client.indices.exists(index=index) and client.count(index=index)["count"] == lines:
        return index
    client.indices.delete(index=index, ignore_unavailable=True)
    client.indices.create(index=index, settings={"refresh_interval": "-1"})
    print(f"indexing {lines} documents into {index} …", flush=True)
    began = time.perf_counter()

    def actions() -> Iterator[dict]:
        with path.open("rb") as handle:
            for line in handle:
                if line.strip():
                    yield {"_index": index, "_source": json.loads(line)}

    for ok, item in parallel_bulk(client, actions(), thread_count=2, chunk_size=2000):
        if not ok:
            raise SystemExit(f"indexing failed: {item}")
    client.indices.put_settings(index=index, settings={"refresh_interval": "1s"})
    client.indices.refresh(index=index)
    client.indices.forcemerge(index=index, max_num_segments=1)
    print(f"indexed in {time.perf_counter() - began:.0f}s", flush=True)
    return index


def fetch_rates(
    settings: Settings, index: str, start: datetime, end: datetime, repeat: int
) -> list[FetchRate]:
    """The chosen strategy and `helpers.scan` over the same query and fields, interleaved so that
    the load of a shared machine hits both alike."""
    client = Elasticsearch(settings.es_endpoint(), **client_options(settings))
    source = ElasticsearchSource(
        client, index, page_size=settings.es_page_size, slices=settings.es_slices, endpoint=""
    )

    def pit() -> int:
        return sum(1 for _ in source.fetch(start, end, InputStats()))

    def helpers_scan() -> int:
        hits = scan(
            client,
            index=index,
            query={"query": source.query(start, end)},
            size=settings.es_page_size,
            _source_includes=source.source_fields(),
        )
        return sum(1 for _ in hits)

    strategies = {
        f"PIT slices={settings.es_slices} page={settings.es_page_size}": pit,
        "helpers.scan": helpers_scan,
    }
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in strategies}
    docs: dict[str, int] = {}
    pit()  # untimed: a node just started reads the first time at a third of its later rate
    for _ in range(repeat):
        for name, count in strategies.items():
            es_before, cpu_before, began = es_cpu_ms(client), time.process_time(), time.perf_counter()
            docs[name] = count()
            wall, own = time.perf_counter() - began, time.process_time() - cpu_before
            es = (es_cpu_ms(client) - es_before) / 1000
            runs[name].append((docs[name] / wall, own * 1e6 / docs[name], es * 1e6 / docs[name]))
    rates = []
    for name, r in runs.items():
        best = max(r)
        rates.append(
            FetchRate(name, docs[name], best[0], statistics.median(x[0] for x in r), best[1], best[2])
        )
    return rates


def ndjson_decode_rate(path: Path, repeat: int) -> FetchRate:
    """The bare decode of the file: every line read and decoded with msgspec in this process, the
    documents dropped. What no analysis of the file can beat, measured on the same machine and load."""
    decoder = msgspec.json.Decoder()
    runs = []
    for _ in range(repeat):
        cpu_before, began = time.process_time(), time.perf_counter()
        docs = 0
        with path.open("rb") as handle:
            for line in handle:
                if line.strip():
                    decoder.decode(line)
                    docs += 1
        wall, own = time.perf_counter() - began, time.process_time() - cpu_before
        runs.append((docs / wall, own * 1e6 / docs))
    best = max(runs)
    return FetchRate("NDJSON lines, msgspec", docs, best[0], statistics.median(r[0] for r in runs), best[1])


def es_cpu_ms(client: Elasticsearch) -> int:
    """CPU milliseconds the Elasticsearch nodes' processes used so far."""
    stats = client.nodes.stats(metric="process", filter_path="nodes.*.process.cpu.total_in_millis")
    return sum(node["process"]["cpu"]["total_in_millis"] for node in stats.body["nodes"].values())


def cpu_bound(own_us: float, es_us: float) -> float:
    """The most documents per second this machine's cores can give when each costs that much CPU."""
    return (os.cpu_count() or 1) * 1e6 / (own_us + es_us)


def backfill(env: dict[str, str], label: str, workers: int, es: Elasticsearch) -> BackfillRun:
    """One real `backfill` over the demo days in a fresh process; peak RSS from that process alone
    (RUSAGE_CHILDREN: the largest of it and its workers), CPU of it and its workers, and the node's."""
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        run_env = {
            **os.environ,
            **env,
            "DATABASE_URL": f"sqlite:///{tmp}/state.db",
            "REGISTRY_DIR": f"{tmp}/registry",
            "EXPORT_DIR": f"{tmp}/exports",
            "BASELINE_DAYS": "0",
            "LOG_FORMAT": "json",
            "ANALYSIS_WORKERS": str(workers),
        }
        first = END_DAY - timedelta(days=DAYS - 1)
        command = [
            sys.executable,
            str(REPO / "scripts" / "backfill.py"),
            "--from",
            first.isoformat(),
            "--to",
            END_DAY.isoformat(),
            "--output",
            f"{tmp}/reports",
        ]
        # A wrapper process per run: RUSAGE_CHILDREN of the wrapper is this backfill's peak alone.
        wrapper = (
            "import resource, subprocess, sys, time;"
            "t = time.perf_counter(); p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
            "w = time.perf_counter() - t;"
            "sys.stdout.write(p.stdout); sys.stderr.write(p.stderr[-2000:]);"
            "u = resource.getrusage(resource.RUSAGE_CHILDREN);"
            "print(f'@@ {p.returncode} {w} {u.ru_maxrss} {u.ru_utime + u.ru_stime}')"
        )
        es_before = es_cpu_ms(es)
        done = subprocess.run(
            [sys.executable, "-c", wrapper, *command], env=run_env, capture_output=True, text=True
        )
        es_s = (es_cpu_ms(es) - es_before) / 1000
    code, wall, rss_kb, cpu_s = done.stdout.rsplit("@@ ", 1)[1].split()
    if code != "0":
        raise SystemExit(f"backfill from {label} failed ({code}):\n{done.stdout}\n{done.stderr}")
    events = int(_FETCHED.search(done.stdout).group(1))
    found = _DURATION.search(done.stdout)
    run_s = float(found.group(1)) if found else float(wall)
    return BackfillRun(
        label,
        events,
        float(wall),
        run_s,
        events / float(wall),
        int(rss_kb) / 1024,
        workers,
        float(cpu_s) * 1e6 / events,
        es_s * 1e6 / events,
    )


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {memory_gb:.0f} GB RAM, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--n",
        type=int,
        nargs="+",
        default=[100_000],
        help="events to generate and index (about); several N in one run",
    )
    parser.add_argument("--es-url", default=os.environ.get("TEST_ES_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ai-log-analyzer-bench")
    parser.add_argument("--fetch-repeat", type=int, default=3, help="rounds of the bare fetch comparison")
    parser.add_argument("--skip-backfill", action="store_true", help="only the bare fetch comparison")
    parser.add_argument("--workers", type=int, default=1, help="ANALYSIS_WORKERS of the backfill runs")
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    measured = {n: measure(n, args) for n in sorted(set(args.n))}
    if len(measured) > 1 and not args.skip_backfill:
        (small, small_runs), (large, large_runs) = measured[min(measured)], measured[max(measured)]
        print(f"\npeak RSS at N = {large} / at N = {small} (target ≤ 1.2):")
        for mine, theirs in zip(large_runs, small_runs, strict=True):
            print(
                f"- {mine.source}: {mine.peak_rss_mb:.0f} / {theirs.peak_rss_mb:.0f} = "
                f"{mine.peak_rss_mb / theirs.peak_rss_mb:.2f}"
            )


def measure(n: int, args: argparse.Namespace) -> tuple[int, list[BackfillRun]]:
    """The bare reads and the backfills over the demo of about `n` events, printed and appended to
    `results.jsonl`: (documents, the backfill runs)."""
    path = demo_file(args.work, n)
    lines = count_lines(path)
    settings = Settings(_env_file=None, es_url=args.es_url)
    with Elasticsearch(args.es_url, request_timeout=300) as client:
        index = ensure_index(client, path, n, lines)
    start = datetime(END_DAY.year, END_DAY.month, END_DAY.day, tzinfo=UTC) - timedelta(days=DAYS - 1)
    end = start + timedelta(days=DAYS)

    print(f"\n{machine()}; N = {lines} documents in {index}\n", flush=True)
    rates = fetch_rates(settings, index, start, end, args.fetch_repeat)
    rates.append(ndjson_decode_rate(path, args.fetch_repeat))
    print(
        "| fetch strategy | docs | best docs/s | median docs/s | CPU µs/doc: Python | Elasticsearch "
        "| CPU bound docs/s |\n|---|---:|---:|---:|---:|---:|---:|"
    )
    for r in rates:
        print(
            f"| {r.strategy} | {r.docs} | {r.best_per_s:,.0f} | {r.median_per_s:,.0f} | {r.own_cpu_us:.1f} "
            f"| {r.es_cpu_us:.1f} | {cpu_bound(r.own_cpu_us, r.es_cpu_us):,.0f} |",
            flush=True,
        )

    runs: list[BackfillRun] = []
    if not args.skip_backfill:
        with Elasticsearch(args.es_url, request_timeout=60) as es:
            es_env = {"ES_URL": args.es_url, "ES_INDEX_PATTERN": index}
            runs.append(backfill(es_env, "Elasticsearch", args.workers, es))
            file_env = {"LOG_FILE": str(path), "ES_URL": "", "ES_HOST": ""}
            runs.append(backfill(file_env, "NDJSON", args.workers, es))
        print(
            "\n| backfill from | workers | events | wall s | run s | events/s | peak RSS MB "
            "| CPU µs/event: pipeline | Elasticsearch | CPU bound events/s |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for b in runs:
            print(
                f"| {b.source} | {b.workers} | {b.events} | {b.wall_s:.1f} | {b.run_s:.1f} "
                f"| {b.events_per_s:,.0f} | {b.peak_rss_mb:.0f} | {b.own_cpu_us:.1f} | {b.es_cpu_us:.1f} "
                f"| {cpu_bound(b.own_cpu_us, b.es_cpu_us):,.0f} |"
            )
        bare, decode = rates[0].best_per_s, rates[-1].best_per_s
        print(
            f"\nend-to-end from Elasticsearch / bare fetch = {runs[0].events_per_s / bare:.2f} "
            f"(target ≥ 0.8); the most these CPU costs allow on {os.cpu_count()} cores: "
            f"{cpu_bound(runs[0].own_cpu_us, runs[0].es_cpu_us) / bare:.2f}\n"
            f"end-to-end from NDJSON / bare decode = {runs[1].events_per_s / decode:.2f} (target ≥ 0.33)"
        )

    with (args.work / "results.jsonl").open("a") as out:
        record = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "n": lines,
            "fetch": [asdict(r) for r in rates],
            "backfill": [asdict(b) for b in runs],
        }
        out.write(json.dumps(record) + "\n")
    return lines, runs


if __name__ == "__main__":
    main()
