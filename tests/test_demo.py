"""Tests for core.demo: determinism, layouts, the planted incidents, and a clean pass through normalize."""

import json
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from core.change import ChangeConfig, Subject, explain
from core.demo import DemoManifest, generate
from core.fetch import NdjsonSource
from core.layout import flatten
from core.model import InputStats, Workload
from core.normalize import normalize, parse_timestamp

END_DAY = date(2024, 11, 14)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[DemoManifest, list[dict]]:
    path = tmp_path_factory.mktemp("demo") / "logs.ndjson"
    manifest = generate(path, END_DAY, days=3, seed=7, scale=0.25)
    with path.open(encoding="utf-8") as lines:
        docs = [json.loads(line) for line in lines]
    for doc in docs:
        _TIMES[id(doc)] = parse_timestamp(doc.get("@timestamp") or doc["time"])
    return manifest, docs


_TIMES: dict[int, datetime] = {}


def timestamp(doc: dict) -> datetime:
    return _TIMES[id(doc)]


def text(doc: dict) -> str:
    return doc.get("message") or doc.get("log")


def lines_with(docs: list[dict], markers: tuple[str, ...]) -> list[dict]:
    return [doc for doc in docs if any(marker in text(doc) for marker in markers)]


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path):
    first, second, other = tmp_path / "a.ndjson", tmp_path / "b.ndjson", tmp_path / "c.ndjson"
    generate(first, END_DAY, days=2, seed=3, scale=0.05)
    generate(second, END_DAY, days=2, seed=3, scale=0.05)
    generate(other, END_DAY, days=2, seed=4, scale=0.05)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_manifest_matches_the_file(demo):
    manifest, docs = demo
    assert manifest.documents == len(docs) == sum(manifest.documents_per_day.values())
    assert list(manifest.documents_per_day) == ["2024-11-12", "2024-11-13", "2024-11-14"]
    assert manifest.documents_per_day["2024-11-14"] > 1.3 * manifest.documents_per_day["2024-11-13"]
    times = [timestamp(doc) for doc in docs]
    assert manifest.start <= min(times) and max(times) < manifest.end
    assert {p.kind for p in manifest.planted} == {"spike", "burst", "db_outage", "new_error", "failed_job"}
    assert all(p.count > 0 for p in manifest.planted)


def test_manifest_to_dict_is_json(demo):
    manifest, _ = demo
    data = json.loads(json.dumps(manifest.to_dict()))
    assert data["incident_day"] == "2024-11-14"
    assert data["planted"][0]["start"].endswith("Z")
    assert data["layouts"]["core-db"] == "fluent-bit"


def test_both_layouts_nested_and_dotted(demo):
    _, docs = demo
    shapes = Counter(
        "fluent-bit"
        if "namespace_name" in doc.get("kubernetes", {})
        else "ecs-dotted"
        if "kubernetes.namespace" in doc
        else "ecs"
        for doc in docs
    )
    assert shapes["ecs"] > 100 and shapes["ecs-dotted"] > 100 and shapes["fluent-bit"] > 100


def test_realistic_content(demo):
    _, docs = demo
    messages = [text(doc) for doc in docs]
    assert any("\n\tat " in m and "Caused by: " in m for m in messages)
    assert any(m.startswith("Traceback (most recent call last):") for m in messages)
    assert any("4111111111111111" in m for m in messages)
    assert any("@example.com" in m for m in messages)
    pods = {
        flatten(doc).get("kubernetes.pod.name") or flatten(doc).get("kubernetes.pod_name") for doc in docs
    }
    assert {"postgres-0", "kafka-1"} <= pods
    assert any(pod.startswith("nightly-settlement-") for pod in pods)


def test_whole_file_normalizes_without_skips_except_non_error_lines(demo):
    manifest, docs = demo
    stats = InputStats()
    events = list(normalize(docs, stats))
    assert stats.skipped == {"not_error_level": manifest.non_error_lines}
    assert manifest.non_error_lines > 0
    assert stats.accepted == len(events) == len(docs) - manifest.non_error_lines
    assert not any(event.workload.kind in ("Pod", "Unknown") for event in events)


def test_spike_is_about_nine_times_the_usual_rate(demo):
    manifest, docs = demo
    spike = manifest.incident("spike")
    lines = [d for d in lines_with(docs, spike.markers) if spike.start <= timestamp(d) < spike.end]
    assert len(lines) >= spike.count
    assert 6 <= len(lines) / spike.usual_per_hour <= 12
    events = list(normalize(lines, InputStats()))
    assert {str(e.workload) for e in events} == {spike.workloads[0]}


def test_burst_is_hundreds_of_lines_in_two_minutes_in_a_quiet_namespace(demo):
    manifest, docs = demo
    burst = manifest.incident("burst")
    assert burst.end - burst.start == timedelta(minutes=2)
    inside = [d for d in lines_with(docs, burst.markers) if burst.start <= timestamp(d) < burst.end]
    hour_before = [
        d
        for d in lines_with(docs, burst.markers)
        if burst.start - timedelta(hours=1) <= timestamp(d) < burst.start
    ]
    assert len(inside) >= burst.count >= 100
    assert len(hour_before) < 10


def test_db_outage_starts_in_core_db_then_spreads_with_shared_traces(demo):
    manifest, docs = demo
    outage = manifest.incident("db_outage")
    lines = [d for d in lines_with(docs, outage.markers) if outage.start <= timestamp(d) < outage.end]
    assert len(lines) == outage.count
    events = sorted(normalize(lines, InputStats()), key=lambda e: e.timestamp)
    assert events[0].namespace == "core-db"
    first_seen = {}
    for event in events:
        first_seen.setdefault(event.namespace, event.timestamp)
    assert set(first_seen) == set(outage.namespaces)
    assert first_seen["core-db"] == outage.start
    for namespace in ("card-servicing", "payments", "batch-processing"):
        assert timedelta(minutes=5) < first_seen[namespace] - first_seen["core-db"] <= timedelta(minutes=7)
    assert {str(e.workload) for e in events} == set(outage.workloads)
    db = Workload("StatefulSet", "core-db", "postgres")
    db_traces = {e.trace_id for e in events if e.workload == db and e.trace_id}
    service_traces = {e.trace_id for e in events if e.workload != db and e.trace_id}
    assert len(db_traces & service_traces) == manifest.shared_trace_ids > 10
    assert not lines_with([d for d in docs if timestamp(d) < outage.start], outage.markers)


def test_new_error_never_appears_before_it_is_planted(demo):
    manifest, docs = demo
    new = manifest.incident("new_error")
    lines = lines_with(docs, new.markers)
    assert len(lines) == new.count
    assert all(new.start <= timestamp(d) < new.end for d in lines)
    events = list(normalize(lines, InputStats()))
    assert {str(e.workload) for e in events} == set(new.workloads)
    assert new.usual_per_hour == 0


def test_new_error_follows_a_rollout_of_the_next_patch_release(demo):
    """The demo report's "What changed" line: the new pods start (INFO) with a tag that no pod of the
    workload ran before, two minutes before the new error."""
    manifest, docs = demo
    new = manifest.incident("new_error")
    api = [d for d in docs if flatten(d).get("kubernetes.pod.name", "").startswith("card-opening-api-")]
    tags = {d["container"]["image"]["name"].rpartition(":")[2] for d in lines_with(docs, new.markers)}
    assert len(tags) == 1
    tag = tags.pop()
    assert tag in new.detail
    rolled_out = min(timestamp(d) for d in api if d["container"]["image"]["name"].endswith(f":{tag}"))
    before = {d["container"]["image"]["name"].rpartition(":")[2] for d in api if timestamp(d) < rolled_out}
    assert before and tag not in before
    first = min(timestamp(d) for d in lines_with(docs, new.markers))
    minutes = (first - rolled_out) // timedelta(minutes=1)
    workload = Workload("Deployment", "card-opening", "card-opening-api")
    found = explain([Subject("new", workload, first)], NdjsonSource(manifest.path), ChangeConfig())
    assert found == {"new": f"first seen {minutes} min after card-opening-api rolled out {tag}"}
    assert rolled_out == new.start - timedelta(minutes=2) and minutes == 2


def test_failed_job_and_scraper_lines_land_on_the_job(demo):
    manifest, docs = demo
    failed = manifest.incident("failed_job")
    job_name = failed.markers[0]
    lines = lines_with(docs, failed.markers)
    assert len(lines) == failed.count
    assert all(failed.start <= timestamp(d) < failed.end for d in lines)
    events = list(normalize(lines, InputStats()))
    assert any(e.pod.startswith(f"{job_name}-") for e in events)
    assert any(e.pod.startswith("kube-state-metrics-") for e in events)
    assert {e.workload for e in events} == {Workload("Job", "batch-processing", job_name)}
    assert {e.namespace for e in events} == {"batch-processing"}
