"""Tests for core.detect: spikes, bursts, cross-namespace issues, new problems, regressions, paging rules."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from core.detect import DetectConfig, critical, detect
from core.model import (
    WINDOW,
    Analysis,
    Detection,
    Finding,
    History,
    Incident,
    InputStats,
    ProblemState,
)

DAY = datetime(2025, 3, 4, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
CFG = DetectConfig()
DB = "DATABASE:payments:connection_pool"


def incident(
    problem_id: str,
    window: datetime,
    count: int,
    namespace: str = "payments",
    severity: str = "medium",
    first_offset: timedelta = timedelta(0),
    last_offset: timedelta = timedelta(minutes=14),
) -> Incident:
    category, flow, error_class = problem_id.split(":")
    return Incident(
        problem_id=problem_id,
        category=category,
        flow=flow,
        error_class=error_class,
        severity=severity,
        window_start=window,
        window_end=window + WINDOW,
        namespace=namespace,
        workload_kind="Deployment",
        workload_name=f"{namespace}-api",
        count=count,
        first_seen=window + first_offset,
        last_seen=window + last_offset,
    )


def analysis(
    incidents: list[Incident],
    start: datetime = DAY,
    end: datetime = DAY + timedelta(days=1),
    minute_counts: dict[tuple[str, str], dict[datetime, int]] | None = None,
) -> Analysis:
    return Analysis(start, end, incidents, minute_counts or {}, InputStats())


def no_history(start: datetime = DAY) -> History:
    return History(start - timedelta(days=7), start, {}, {})


def known(*problem_ids: str, status: str = "known", resolved_at: datetime | None = None) -> dict:
    return {
        pid: ProblemState(pid, DAY - timedelta(days=30), DAY - timedelta(days=1), status, resolved_at)
        for pid in problem_ids
    }


def day_series(counts: list[int], problem_id: str = DB, namespace: str = "payments") -> list[Incident]:
    return [
        incident(problem_id, DAY + k * WINDOW, count, namespace) for k, count in enumerate(counts) if count
    ]


def kinds(detection: Detection, kind: str) -> list:
    return [p for p in detection.peaks if p.kind == kind]


# --- spikes ---------------------------------------------------------------------------------------


def test_steady_rate_is_not_a_spike() -> None:
    rng = random.Random(7)
    counts = [rng.randint(80, 120) for _ in range(96)]
    detection = detect(analysis(day_series(counts)), no_history(), known(DB), CFG)
    assert kinds(detection, "spike") == []
    assert detection.findings == []


def test_spike_on_first_day_without_history() -> None:
    counts = [10] * 40 + [400] + [10] * 55
    detection = detect(analysis(day_series(counts)), no_history(), known(DB), CFG)

    spikes = kinds(detection, "spike")
    assert [(p.scope, p.scope_id) for p in spikes] == [("namespace", "payments"), ("problem", DB)]
    problem_spike = spikes[1]
    assert problem_spike.window_start == DAY + 40 * WINDOW
    assert problem_spike.window_end == DAY + 41 * WINDOW
    assert problem_spike.observed == 400
    assert problem_spike.baseline == 10
    assert problem_spike.ratio == 40
    finding = next(f for f in detection.findings if f.problem_id == DB)
    assert (finding.kind, finding.namespaces, finding.window_start) == (
        "spike",
        ("payments",),
        DAY + 40 * WINDOW,
    )


def test_consecutive_spiking_windows_merge_into_one_peak_observed_is_the_max() -> None:
    counts = [10] * 40 + [300, 500, 250] + [10] * 53
    detection = detect(analysis(day_series(counts)), no_history(), known(DB), CFG)
    (peak,) = [p for p in kinds(detection, "spike") if p.scope == "problem"]
    assert (peak.window_start, peak.window_end) == (DAY + 40 * WINDOW, DAY + 43 * WINDOW)
    assert peak.observed == 500


def test_a_sustained_outage_is_one_peak_against_the_baseline_before_it() -> None:
    counts = [10] * 40 + [200, 180, 220, 150] + [10] * 52
    detection = detect(analysis(day_series(counts)), no_history(), known(DB), CFG)
    (peak,) = [p for p in kinds(detection, "spike") if p.scope == "problem"]
    assert (peak.window_start, peak.window_end) == (DAY + 40 * WINDOW, DAY + 44 * WINDOW)
    assert (peak.observed, peak.baseline, peak.ratio) == (220, 10, 22)


def test_a_level_held_for_the_last_hour_does_not_start_a_spike() -> None:
    # A new problem running steadily near the minimum count: one onset, not a spike whenever it wobbles.
    counts = [0] * 40 + [24, 18, 21, 19, 26, 17, 25, 30] + [22] * 48
    detection = detect(analysis(day_series(counts)), no_history(), known(DB), CFG)
    spikes = [p for p in kinds(detection, "spike") if p.scope == "problem"]
    assert [p.window_start for p in spikes] == [DAY + 40 * WINDOW]


def test_too_few_baseline_windows_or_too_few_events_are_no_spike() -> None:
    early = [400] + [10] * 95
    detection = detect(analysis(day_series(early)), no_history(), known(DB), CFG)
    assert kinds(detection, "spike") == []

    quiet = [0] * 40 + [CFG.spike_min_count - 1] + [0] * 55
    detection = detect(analysis(day_series(quiet)), no_history(), known(DB), CFG)
    assert kinds(detection, "spike") == []


def test_history_is_the_baseline_of_a_single_window_run() -> None:
    window = DAY + 40 * WINDOW
    history_windows = [window - (k + 1) * WINDOW for k in range(7 * 96)]
    busy = History(
        window - timedelta(days=7),
        window,
        {DB: dict.fromkeys(history_windows, 200)},
        {"payments": dict.fromkeys(history_windows, 200)},
    )
    quiet = History(
        window - timedelta(days=7),
        window,
        {DB: dict.fromkeys(history_windows, 10)},
        {"payments": dict.fromkeys(history_windows, 10)},
    )
    regular_phase = analysis([incident(DB, window, 400)], start=window, end=window + WINDOW)

    assert kinds(detect(regular_phase, busy, known(DB), CFG), "spike") == []
    (peak,) = [
        p for p in kinds(detect(regular_phase, quiet, known(DB), CFG), "spike") if p.scope == "problem"
    ]
    assert peak.baseline == 10
    assert peak.window_start == window


def test_missing_history_windows_count_as_zero_from_the_first_stored_window() -> None:
    window = DAY + 40 * WINDOW
    other = "AUTH:payments:access_denied"
    stored = {DB: {window - WINDOW: 500}, other: {window - timedelta(days=1): 3}}
    sparse = History(window - timedelta(days=7), window, stored, {})
    regular_phase = analysis([incident(DB, window, 60)], start=window, end=window + WINDOW)
    (peak,) = [
        p for p in kinds(detect(regular_phase, sparse, known(DB), CFG), "spike") if p.scope == "problem"
    ]
    assert peak.baseline == 0
    assert peak.ratio == 60
    assert "(96 baseline windows)" in next(
        f.detail for f in detect(regular_phase, sparse, known(DB), CFG).findings
    )


def test_noisy_baseline_needs_a_high_robust_z() -> None:
    # 95th percentile 20 and ratio 3 would allow 60, but the spread (MAD) says 60 is within reach.
    counts = [0, 20, 40, 20] * 10 + [60] + [20] * 55
    cfg = DetectConfig(spike_baseline_quantile=0.5, spike_z=5.0)
    detection = detect(analysis(day_series(counts)), no_history(), known(DB), cfg)
    assert [p for p in kinds(detection, "spike") if p.scope == "problem"] == []


# --- bursts ---------------------------------------------------------------------------------------


def minute_analysis(minutes: dict[datetime, int]) -> Analysis:
    start = DAY + timedelta(hours=10)
    return analysis(
        [], start=start, end=start + timedelta(hours=1), minute_counts={(DB, "payments"): minutes}
    )


def test_hundreds_of_lines_in_two_minutes_of_a_quiet_problem_is_a_burst() -> None:
    start = DAY + timedelta(hours=10)
    minutes = {start + k * MINUTE: 1 for k in range(0, 60, 3)}
    minutes[start + 31 * MINUTE] = 180
    minutes[start + 32 * MINUTE] = 150
    detection = detect(minute_analysis(minutes), no_history(), known(DB), CFG)

    bursts = kinds(detection, "burst")
    assert [(p.scope, p.scope_id) for p in bursts] == [("namespace", "payments"), ("problem", DB)]
    peak = bursts[1]
    assert (peak.window_start, peak.window_end) == (start + 31 * MINUTE, start + 33 * MINUTE)
    assert peak.observed == 330
    assert peak.namespace == "payments"
    finding = next(f for f in detection.findings if f.problem_id == DB)
    assert (finding.kind, finding.window_start) == ("burst", start + 30 * MINUTE)


def test_steady_high_rate_is_no_burst() -> None:
    start = DAY + timedelta(hours=10)
    rng = random.Random(3)
    minutes = {start + k * MINUTE: rng.randint(150, 250) for k in range(60)}
    detection = detect(minute_analysis(minutes), no_history(), known(DB), CFG)
    assert kinds(detection, "burst") == []


def test_burst_inside_a_single_regular_phase_window() -> None:
    start = DAY + timedelta(hours=10)
    minutes = {start + k * MINUTE: 2 for k in range(15)}
    minutes[start + 7 * MINUTE] = 240
    regular_phase = analysis([], start=start, end=start + WINDOW, minute_counts={(DB, "payments"): minutes})
    (peak,) = [
        p for p in kinds(detect(regular_phase, no_history(), known(DB), CFG), "burst") if p.scope == "problem"
    ]
    assert (peak.window_start, peak.observed, peak.baseline, peak.ratio) == (start + 7 * MINUTE, 240, 2, 120)


def test_a_small_surge_below_the_minimum_count_is_no_burst() -> None:
    start = DAY + timedelta(hours=10)
    minutes = {start + 20 * MINUTE: CFG.burst_min_count - 1}
    assert kinds(detect(minute_analysis(minutes), no_history(), known(DB), CFG), "burst") == []


# --- cross-namespace, new, regression -----------------------------------------------------------------


def cross_findings(detection: Detection) -> list[Finding]:
    return [f for f in detection.findings if f.kind == "cross_namespace"]


def test_one_new_problem_class_in_several_namespaces_at_once() -> None:
    window = DAY + 8 * WINDOW
    incidents = [
        incident("DATABASE:payments:connection_pool", window, 12, "payments"),
        incident("DATABASE:card_servicing:connection_pool", window, 8, "card-servicing"),
        incident("BUSINESS:payments:validation_error", window, 4, "payments"),
    ]
    (finding,) = cross_findings(detect(analysis(incidents), no_history(), {}, CFG))
    assert finding.problem_id == "DATABASE:*:connection_pool"
    assert finding.namespaces == ("card-servicing", "payments")
    assert finding.window_start == window
    assert finding.severity == "high"


def test_known_problems_spiking_in_several_namespaces_are_cross_namespace() -> None:
    pids = ("DATABASE:payments:connection_pool", "DATABASE:cards:connection_pool")
    counts = [2] * 40 + [300, 200] + [2] * 54
    incidents = day_series(counts, pids[0], "payments") + day_series(counts, pids[1], "cards")
    detection = detect(analysis(incidents), no_history(), known(*pids), CFG)
    (finding,) = cross_findings(detection)
    assert (finding.namespaces, finding.window_start) == (("cards", "payments"), DAY + 40 * WINDOW)
    assert finding in critical(detection.findings, CFG)


def test_background_class_always_in_several_namespaces_is_not_cross_namespace() -> None:
    pids = ("TIMEOUT:payments:read_timeout", "TIMEOUT:cards:read_timeout")
    incidents = day_series([3] * 96, pids[0], "payments") + day_series([3] * 96, pids[1], "cards")
    assert detect(analysis(incidents), no_history(), known(*pids), CFG).findings == []


def test_occurrences_across_a_window_boundary_within_the_gap_are_at_once() -> None:
    window = DAY + 8 * WINDOW
    incidents = [
        incident("TIMEOUT:payments:upstream", window, 5, "payments", last_offset=timedelta(minutes=14)),
        incident("TIMEOUT:cards:upstream", window + WINDOW, 5, "cards", first_offset=timedelta(minutes=2)),
    ]
    assert len(cross_findings(detect(analysis(incidents), no_history(), {}, CFG))) == 1


def test_same_problem_class_hours_apart_is_not_cross_namespace() -> None:
    incidents = [
        incident("DATABASE:payments:connection_pool", DAY + 8 * WINDOW, 12, "payments"),
        incident("DATABASE:cards:connection_pool", DAY + 20 * WINDOW, 12, "cards"),
    ]
    assert cross_findings(detect(analysis(incidents), no_history(), {}, CFG)) == []


def test_problem_without_state_is_new_and_known_problem_is_not() -> None:
    incidents = [
        incident(DB, DAY + 9 * WINDOW, 3, first_offset=timedelta(minutes=4)),
        incident(DB, DAY + 3 * WINDOW, 2),
        incident("AUTH:payments:access_denied", DAY + 2 * WINDOW, 2),
    ]
    detection = detect(analysis(incidents), no_history(), known("AUTH:payments:access_denied"), CFG)

    (finding,) = detection.findings
    assert (finding.kind, finding.problem_id, finding.window_start) == ("new", DB, DAY + 3 * WINDOW)
    assert finding.severity == "medium"
    assert "5 events" in finding.detail


def test_state_first_seen_inside_the_range_is_a_rerun_and_still_new() -> None:
    states = {DB: ProblemState(DB, DAY + WINDOW, DAY + 2 * WINDOW, "new")}
    detection = detect(analysis([incident(DB, DAY + WINDOW, 3)]), no_history(), states, CFG)
    assert [f.kind for f in detection.findings] == ["new"]


def test_resolved_problem_seen_again_is_a_regression() -> None:
    states = known(DB, status="resolved", resolved_at=DAY - timedelta(days=2))
    detection = detect(
        analysis([incident(DB, DAY + 5 * WINDOW, 3, severity="low")]), no_history(), states, CFG
    )
    (finding,) = detection.findings
    assert (finding.kind, finding.problem_id, finding.window_start) == ("regression", DB, DAY + 5 * WINDOW)
    assert finding.severity == "high"


def test_occurrences_before_the_resolution_are_no_regression() -> None:
    states = known(DB, status="resolved", resolved_at=DAY + 10 * WINDOW)
    detection = detect(analysis([incident(DB, DAY + 5 * WINDOW, 3)]), no_history(), states, CFG)
    assert detection.findings == []


def test_ignored_problems_produce_nothing() -> None:
    counts = [10] * 40 + [4000] + [10] * 55
    states = known(DB, status="ignored")
    detection = detect(analysis(day_series(counts)), no_history(), states, CFG)
    assert detection.peaks == []
    assert detection.findings == []


def test_output_order_is_deterministic() -> None:
    counts = [10] * 40 + [400] + [10] * 55
    incidents = day_series(counts) + day_series(counts, "DATABASE:cards:connection_pool", "cards")
    shuffled = incidents[:]
    random.Random(1).shuffle(shuffled)
    first = detect(analysis(incidents), no_history(), {}, CFG)
    second = detect(analysis(shuffled), no_history(), {}, CFG)
    assert first == second
    assert [f.kind for f in first.findings][:3] == ["new", "new", "cross_namespace"]


# --- paging rules --------------------------------------------------------------------------------------


def finding(kind: str, severity: str, problem_id: str = DB, namespaces: tuple[str, ...] = ()) -> Finding:
    return Finding(kind, problem_id, DAY, severity, "detail", namespaces)


def test_new_problem_alone_does_not_page_unless_its_severity_is_critical() -> None:
    quiet = finding("new", "high")
    loud = finding("new", "critical")
    assert critical([quiet, loud], CFG) == [loud]


def test_cross_namespace_pages_only_for_shared_infrastructure_categories() -> None:
    database = finding("cross_namespace", "high", "DATABASE:*:connection_pool", ("cards", "payments"))
    business = finding("cross_namespace", "high", "BUSINESS:*:validation_error", ("cards", "payments"))
    assert critical([database, business], CFG) == [database]


def test_strong_spike_pages_and_moderate_spike_does_not() -> None:
    strong = [10] * 40 + [CFG.critical_min_count * 2] + [10] * 55
    moderate = [10] * 40 + [60] + [10] * 55
    strong_findings = detect(analysis(day_series(strong)), no_history(), known(DB), CFG).findings
    moderate_findings = detect(analysis(day_series(moderate)), no_history(), known(DB), CFG).findings

    assert {f.kind for f in critical(strong_findings, CFG)} == {"spike"}
    assert moderate_findings and critical(moderate_findings, CFG) == []
