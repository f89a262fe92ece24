"""Tests for core.report: merging, ranking, fact and triage, and the TXT/JSON/CSV files."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pandas as pd
import pytest

from core.model import (
    Chain,
    ChainMember,
    Detection,
    Finding,
    Incident,
    InputStats,
    Peak,
    ProblemClass,
    ProblemState,
)
from core.redact import Redactor
from core.report import (
    Report,
    RunFigures,
    build_report,
    executive_summary,
    range_text,
    report_from_dict,
    report_to_dict,
    report_to_text,
    write_reports,
)
from core.report.model import problem_fact, problem_score, problem_triage, why_it_matters

SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "report.schema.json").read_text())
DAY = datetime(2026, 2, 9, tzinfo=UTC)
DB = "DATABASE:batch_processing:connection_pool"
BUSINESS = "BUSINESS:card_servicing:validation_error"
AUTH = "AUTH:card_opening:access_denied"
NETWORK = "NETWORK:payments:timeout"
SECRETS = ("S3cr3tFakePw", "4111 1111 1111 1111", "jane.doe@example.com")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def incident(
    problem_id: str,
    severity: str,
    *,
    hour: int,
    namespace: str,
    workload: str,
    count: int,
    sample: str = "error",
    template: str = "error",
) -> Incident:
    category, flow, error_class = problem_id.split(":")
    start = DAY + timedelta(hours=hour)
    return Incident(
        problem_id=problem_id,
        category=category,
        flow=flow,
        error_class=error_class,
        severity=severity,
        window_start=start,
        window_end=start + timedelta(minutes=15),
        namespace=namespace,
        workload_kind="Deployment",
        workload_name=workload,
        count=count,
        first_seen=start + timedelta(minutes=1),
        last_seen=start + timedelta(minutes=14),
        samples=[sample],
        fingerprints={"f" * 16: template},
    )


def scenario_incidents() -> list[Incident]:
    db_sample = "Connection to postgresql://app:S3cr3tFakePw@db.example.com:5432/app refused <script>"
    return [
        incident(DB, "critical", hour=3, namespace="batch-a", workload="etl", count=15, sample=db_sample),
        incident(DB, "critical", hour=4, namespace="batch-b", workload="etl", count=20, sample=db_sample),
        incident(DB, "critical", hour=5, namespace="cards", workload="api", count=5, sample=db_sample),
        incident(
            BUSINESS,
            "low",
            hour=1,
            namespace="cards",
            workload="card-servicing",
            count=30_000,
            sample="validation failed for card 4111 1111 1111 1111 of jane.doe@example.com",
            template="validation failed for card <NUM>",
        ),
        incident(BUSINESS, "low", hour=22, namespace="cards", workload="card-servicing", count=20_000),
        incident(AUTH, "medium", hour=2, namespace="cards", workload="card-opening", count=89),
        incident(NETWORK, "high", hour=6, namespace="payments", workload="gateway", count=300),
    ]


def scenario_detection() -> Detection:
    at = DAY + timedelta(hours=3)
    return Detection(
        peaks=[
            Peak(
                "spike",
                "problem",
                BUSINESS,
                DAY + timedelta(hours=1),
                DAY + timedelta(hours=1, minutes=15),
                observed=3000.0,
                baseline=100.0,
                ratio=30.0,
                problem_id=BUSINESS,
            ),
            Peak(
                "burst",
                "namespace",
                "batch-b",
                at,
                at + timedelta(minutes=15),
                observed=20.0,
                baseline=2.0,
                ratio=10.0,
                namespace="batch-b",
            ),
        ],
        findings=[
            Finding("new", DB, at, "critical", "first seen in batch-a"),
            Finding(
                "cross_namespace", DB, at, "critical", "in 3 namespaces", ("batch-a", "batch-b", "cards")
            ),
            Finding("regression", NETWORK, DAY + timedelta(hours=6), "high", "resolved on 2026-02-01"),
            Finding("spike", BUSINESS, DAY + timedelta(hours=1), "low", "30x baseline password=hunter2"),
            Finding("burst", "namespace:batch-b", at, "medium", "surge in batch-b"),
        ],
    )


def scenario_report(**overrides: object) -> Report:
    before = DAY - timedelta(days=30)
    arguments: dict[str, object] = {
        "generated_at": datetime(2026, 2, 10, 9, 15, 32, tzinfo=UTC),
        "phase": "backfill",
        "start": DAY,
        "end": DAY + timedelta(days=1),
        "incidents": scenario_incidents(),
        "detection": scenario_detection(),
        "chains": [
            Chain(
                members=(
                    ChainMember(DB, "batch-a", "Deployment/batch-a/etl", DAY + timedelta(hours=3), 15),
                    ChainMember(
                        NETWORK, "payments", "Deployment/payments/gateway", DAY + timedelta(hours=6), 300
                    ),
                ),
                root=ChainMember(DB, "batch-a", "Deployment/batch-a/etl", DAY + timedelta(hours=3), 15),
                evidence=("12 shared trace ids", "token=abc123 seen in both"),
                confidence=0.8,
            )
        ],
        "states": {
            BUSINESS: ProblemState(BUSINESS, before, DAY - timedelta(days=1), "acknowledged"),
            AUTH: ProblemState(AUTH, before, DAY - timedelta(days=1), "ignored"),
            NETWORK: ProblemState(NETWORK, before, before, "resolved", resolved_at=before),
        },
        "registry": {
            AUTH: {"triage": "ignored", "owner": "team-cards", "ticket": 4711, "notes": ""},
            BUSINESS: {"triage": "acknowledged", "owner": "team-servicing", "ticket": "CARD-12"},
        },
        "classes": {
            DB: ProblemClass(
                "DATABASE",
                "batch_processing",
                "connection_pool",
                "critical",
                ("Check the pool size against max_connections", "Look for long transactions"),
            ),
        },
        "stats": InputStats(
            fetched=50_500, accepted=50_424, skipped={"malformed": 70, "binary": 6}, truncated=2
        ),
        "figures": RunFigures(
            days_processed=1,
            days_succeeded=1,
            events_fetched=50_500,
            incidents_saved=7,
            registry_updates=6,
            duration_s=61.5,
        ),
        "redactor": Redactor(),
    }
    arguments.update(overrides)
    return build_report(**arguments)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def report() -> Report:
    return scenario_report()


@pytest.fixture(scope="module")
def files(report: Report, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_reports(report, tmp_path_factory.mktemp("reports"))


def test_critical_new_cross_namespace_problem_outranks_big_low_severity_one(report: Report) -> None:
    ranked = [problem.id for problem in report.problems]
    assert ranked.index(DB) < ranked.index(BUSINESS)
    assert ranked[0] == DB


def test_ignored_problem_is_ranked_last_and_never_in_the_summary(report: Report) -> None:
    assert report.problems[-1].id == AUTH
    assert report.problems[-1].triage == "ignored"
    assert not any(AUTH in line for line in executive_summary(report))


def test_executive_summary_lines(report: Report) -> None:
    # the network problem is a dependent of the database chain: one outage, one line
    assert executive_summary(report) == [
        f"{DB} (40 occurrences) - likely root of 1 dependent problem",
        f"{BUSINESS} (50000 occurrences)",
    ]
    assert executive_summary(report, n=1) == [f"{DB} (40 occurrences) - likely root of 1 dependent problem"]


def test_a_chain_dependent_is_listed_when_its_root_is_not(report: Report) -> None:
    without_root = dataclasses.replace(report, problems=[p for p in report.problems if p.id != DB])
    assert f"{NETWORK} (300 occurrences)" in executive_summary(without_root)


def test_incidents_merge_per_problem(report: Report) -> None:
    db = next(problem for problem in report.problems if problem.id == DB)
    assert db.count == 40
    assert db.first_seen == DAY + timedelta(hours=3, minutes=1)
    assert db.last_seen == DAY + timedelta(hours=5, minutes=14)
    assert db.namespaces == ["batch-a", "batch-b", "cards"]
    assert [str(w) for w in db.workloads] == [
        "Deployment/batch-a/etl",
        "Deployment/batch-b/etl",
        "Deployment/cards/api",
    ]
    assert db.finding_kinds == ["cross_namespace", "new"]
    assert db.remediation == ["Check the pool size against max_connections", "Look for long transactions"]
    assert db.known_since is None


def test_fact_and_triage_come_from_findings_states_and_registry(report: Report) -> None:
    facts = {problem.id: (problem.fact, problem.triage) for problem in report.problems}
    assert facts == {
        DB: ("new", "open"),
        BUSINESS: ("recurring", "acknowledged"),
        AUTH: ("recurring", "ignored"),
        NETWORK: ("regressed", "open"),
    }
    auth = report.problems[-1]
    assert (auth.owner, auth.ticket, auth.notes) == ("team-cards", "4711", None)


@pytest.mark.parametrize(
    ("known", "kinds", "expected"),
    [
        (False, [], "new"),
        (True, [], "recurring"),
        (True, ["new", "spike"], "new"),
        (True, ["regression"], "regressed"),
        (False, ["regression"], "regressed"),
        (True, ["spike"], "recurring"),
    ],
)
def test_a_problems_fact_is_what_the_pipeline_saw(known: bool, kinds: list[str], expected: str) -> None:
    state = ProblemState("A:b:c", DAY, DAY) if known else None
    assert problem_fact(state=state, finding_kinds=kinds) == expected


@pytest.mark.parametrize(
    ("state_triage", "entry", "expected"),
    [
        (None, {}, "open"),
        (None, {"triage": "acknowledged"}, "acknowledged"),
        (None, {"triage": "investigating"}, "open"),  # not a triage: never silences anything
        ("ignored", {"triage": "open"}, "ignored"),  # the range's overlaid state wins
        ("open", {"triage": "ignored"}, "open"),  # e.g. an ignore whose until has passed
    ],
)
def test_a_problems_triage_is_what_people_decided(
    state_triage: str | None, entry: dict[str, str], expected: str
) -> None:
    state = ProblemState("A:b:c", DAY, DAY, state_triage) if state_triage else None
    assert problem_triage(state=state, entry=entry) == expected


def test_score_prefers_severity_and_findings_over_volume() -> None:
    assert problem_score("critical", ["new", "cross_namespace"], 40) > problem_score("low", [], 50_000)
    assert problem_score("critical", [], 1) > problem_score("low", [], 50_000)
    assert problem_score("medium", ["spike"], 100) > problem_score("medium", [], 100)
    assert problem_score("high", [], 1000) > problem_score("high", [], 10)


def test_samples_and_log_text_are_redacted_in_the_report(report: Report) -> None:
    text = json.dumps([p.sample for p in report.problems] + [f.detail for f in report.findings])
    text += json.dumps([line for chain in report.chains for line in chain.evidence])
    assert not any(secret in text for secret in (*SECRETS, "hunter2", "abc123"))
    business = next(problem for problem in report.problems if problem.id == BUSINESS)
    assert business.sample == "validation failed for card [CARD] of [EMAIL]"


def test_file_names_use_the_utc_stamp_and_no_temporary_file_is_left(files: dict[str, Path]) -> None:
    assert {kind: path.name for kind, path in files.items()} == {
        "txt": "problem_report_2026-02-10T091532.txt",
        "json": "problem_report_2026-02-10T091532.json",
        "csv": "problem_report_2026-02-10T091532.csv",
    }
    assert sorted(p.name for p in files["txt"].parent.iterdir()) == sorted(p.name for p in files.values())


def test_no_secret_reaches_any_file(files: dict[str, Path]) -> None:
    for path in files.values():
        content = path.read_text(encoding="utf-8")
        assert not any(secret in content for secret in SECRETS), path.name


def test_txt_has_the_sections_in_order(files: dict[str, Path]) -> None:
    text = files["txt"].read_text(encoding="utf-8")
    sections = [
        "PROBLEM_ANALYSIS_REPORT",
        "Backfill Analysis: 2026-02-09",
        "EXECUTIVE SUMMARY",
        "PROBLEM DETAILS (Top 20)",
        "PEAKS",
        "PROPAGATION CHAINS",
        "INPUT",
        "RUN",
    ]
    positions = [text.index(section) for section in sections]
    assert positions == sorted(positions)
    assert f"1. {DB} (40 occurrences) - critical, cross-namespace (3 namespaces), new" in text
    assert "  Services: Deployment/batch-a/etl, Deployment/batch-b/etl, Deployment/cards/api" in text
    assert "  malformed: 70" in text
    assert "Chain 1: root DATABASE:batch_processing:connection_pool in Deployment/batch-a/etl" in text


def test_json_validates_against_the_schema(files: dict[str, Path]) -> None:
    document = json.loads(files["json"].read_text(encoding="utf-8"))
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert document["schema_version"] == "1.4"
    assert document["range"] == {
        "start": "2026-02-09T00:00:00Z",
        "end": "2026-02-10T00:00:00Z",
        "label": "Backfill Analysis: 2026-02-09",
    }
    db = document["problems"][0]
    assert db["workloads"][0] == {
        "kind": "Deployment",
        "namespace": "batch-a",
        "name": "etl",
        "cronjob": None,
    }
    assert document["chains"][0]["root"]["problem_id"] == DB
    assert document["run"]["registry_updates"] == 6


def test_json_timestamps_are_iso_utc_with_z(files: dict[str, Path]) -> None:
    document = json.loads(files["json"].read_text(encoding="utf-8"))
    stamps = [document["generated_at"], document["range"]["start"], document["range"]["end"]]
    stamps += [p[key] for p in document["problems"] for key in ("first_seen", "last_seen")]
    stamps += [peak[key] for peak in document["peaks"] for key in ("window_start", "window_end")]
    assert stamps and all(TIMESTAMP.match(stamp) for stamp in stamps)


def test_schema_rejects_a_broken_document(files: dict[str, Path]) -> None:
    document = json.loads(files["json"].read_text(encoding="utf-8"))
    document["problems"][0]["first_seen"] = "2026-02-09 03:01:00"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_csv_reads_back_with_pandas(report: Report, files: dict[str, Path]) -> None:
    frame = pd.read_csv(files["csv"], keep_default_na=False)
    assert list(frame["id"]) == [problem.id for problem in report.problems]
    assert list(frame["count"]) == [problem.count for problem in report.problems]
    assert list(frame["fact"]) == [problem.fact for problem in report.problems]
    assert list(frame["triage"]) == [problem.triage for problem in report.problems]
    assert list(frame["sample"]) == [problem.sample for problem in report.problems]
    assert frame.loc[0, "namespaces"] == "batch-a; batch-b; cards"
    assert list(frame["rank"]) == list(range(1, len(report.problems) + 1))


def test_empty_range_still_writes_valid_reports(tmp_path: Path) -> None:
    empty = scenario_report(incidents=[], detection=Detection([], []), chains=[], states={}, registry={})
    files = write_reports(empty, tmp_path)
    jsonschema.validate(json.loads(files["json"].read_text()), SCHEMA, cls=jsonschema.Draft202012Validator)
    assert "No problems in this range." in files["txt"].read_text()
    assert pd.read_csv(files["csv"]).empty


def test_failed_days_are_reported(tmp_path: Path) -> None:
    figures = RunFigures(days_processed=3, days_succeeded=2, days_failed=1, failed_days=["2026-02-08"])
    files = write_reports(scenario_report(figures=figures), tmp_path)
    assert json.loads(files["json"].read_text())["run"]["failed_days"] == ["2026-02-08"]
    assert "Failed days: 2026-02-08" in files["txt"].read_text()


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (DAY, DAY + timedelta(days=1), "2026-02-09"),
        (DAY - timedelta(days=2), DAY + timedelta(days=1), "2026-02-07 to 2026-02-09"),
        (
            DAY + timedelta(hours=10),
            DAY + timedelta(hours=10, minutes=15),
            "2026-02-09T10:00:00Z to 2026-02-09T10:15:00Z",
        ),
    ],
)
def test_range_text(start: datetime, end: datetime, expected: str) -> None:
    assert range_text(start, end) == expected


def test_long_samples_are_cut_after_redaction() -> None:
    long_sample = "x" * 490 + " card 4111 1111 1111 1111 " + "y" * 100
    incidents = [incident(DB, "critical", hour=1, namespace="a", workload="w", count=1, sample=long_sample)]
    report = scenario_report(incidents=incidents)
    assert len(report.problems[0].sample) == 500
    assert "4111" not in report.problems[0].sample


def test_a_cronjobs_jobs_are_one_services_entry_in_every_output(tmp_path: Path) -> None:
    # One problem over a day of a CronJob running every hour: 24 Jobs, one Services entry. The JSON
    # keeps each Job and says whose it is.
    from core.report.confluence import confluence_daily_page

    jobs = [
        dataclasses.replace(
            incident(DB, "high", hour=hour, namespace="batch-processing", workload="", count=2),
            workload_kind="Job",
            workload_name=f"statement-export-{29936280 + 60 * hour}",
        )
        for hour in range(24)
    ]
    single = dataclasses.replace(
        incident(DB, "high", hour=3, namespace="batch", workload="", count=1),
        workload_kind="Job",
        workload_name="nightly-settlement-29936280",
    )
    api = incident(DB, "high", hour=4, namespace="cards", workload="api", count=1)
    report = scenario_report(incidents=[*jobs, single, api], detection=Detection([], []), chains=[])
    expected = [
        "CronJob/batch-processing/statement-export (24 Jobs)",
        "Deployment/cards/api",
        "Job/batch/nightly-settlement-29936280 of CronJob nightly-settlement",
    ]
    (problem,) = report.problems
    assert problem.services == expected
    files = write_reports(report, tmp_path)
    assert f"  Services: {', '.join(expected)}" in files["txt"].read_text()
    assert pd.read_csv(files["csv"], keep_default_na=False).loc[0, "workloads"] == "; ".join(expected)
    document = json.loads(files["json"].read_text())
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    record = document["problems"][0]
    assert record["services"] == expected
    assert len(record["workloads"]) == 26
    assert {w["cronjob"] for w in record["workloads"] if w["namespace"] == "batch-processing"} == {
        "statement-export"
    }
    rows = {stats.label: (stats.count, stats.jobs) for stats in problem.workload_stats}
    assert rows["CronJob/batch-processing/statement-export (24 Jobs)"] == (sum(j.count for j in jobs), 24)
    assert rows["Job/batch/nightly-settlement-29936280"] == (1, 0)  # a CronJob's one Job keeps its name
    assert len(rows) == 3
    page = confluence_daily_page(report, chart_filename=None)
    assert "CronJob/batch-processing/statement-export (24 Jobs)" in page
    assert "statement-export-2993" not in page


def test_lines_joined_into_stack_traces_are_counted_in_the_json_and_the_txt() -> None:
    stats = InputStats(fetched=70, accepted=10, joined_lines=60)
    joined = scenario_report(stats=stats)
    assert report_to_dict(joined)["stats"]["joined_lines"] == 60
    assert "joined into stack traces: 60" in report_to_text(joined)
    assert report_from_dict(report_to_dict(joined)).stats.joined_lines == 60


def test_each_workload_of_a_problem_has_its_own_count_and_first_and_last_time() -> None:
    report = scenario_report()
    db = next(problem for problem in report.problems if problem.id == DB)
    figures = [(str(s.workload), s.count, s.first_seen, s.last_seen) for s in db.workload_stats]
    at = DAY + timedelta(minutes=1)
    assert figures == [
        ("Deployment/batch-b/etl", 20, at + timedelta(hours=4), at + timedelta(hours=4, minutes=13)),
        ("Deployment/batch-a/etl", 15, at + timedelta(hours=3), at + timedelta(hours=3, minutes=13)),
        ("Deployment/cards/api", 5, at + timedelta(hours=5), at + timedelta(hours=5, minutes=13)),
    ]
    assert "    - Deployment/batch-a/etl: 15 occurrences, 2026-02-09T03:01:00Z to 2026-02-09T03:14:00Z" in (
        report_to_text(report)
    )
    document = report_to_dict(report)
    jsonschema.validate(document, SCHEMA)
    stored = next(p for p in document["problems"] if p["id"] == DB)
    assert stored["workload_stats"][1] == {
        "workload": {"kind": "Deployment", "namespace": "batch-a", "name": "etl", "cronjob": None},
        "count": 15,
        "first_seen": "2026-02-09T03:01:00Z",
        "last_seen": "2026-02-09T03:14:00Z",
        "jobs": 0,
    }
    read_back = next(p for p in report_from_dict(document).problems if p.id == DB)
    assert read_back.workload_stats == db.workload_stats


def test_the_json_report_carries_each_problems_fingerprint_keys() -> None:
    report = scenario_report()
    document = report_to_dict(report)
    assert {p["id"]: p["fingerprint_keys"] for p in document["problems"]}[DB] == ["f" * 16]
    assert next(p for p in report_from_dict(document).problems if p.id == DB).fingerprint_keys == ["f" * 16]


def test_a_problem_has_one_severity_in_the_report_and_its_alerts() -> None:
    # A low problem whose burst pages as critical is critical in the report too, never "low"
    # on the page and "CRITICAL burst" in the alert.
    quiet = scenario_report(detection=Detection([], []))
    assert next(p for p in quiet.problems if p.id == BUSINESS).severity == "low"
    burst = Finding("burst", BUSINESS, DAY + timedelta(hours=2), "critical", "surge", ("cards",))
    paged = scenario_report(detection=Detection([], [burst]))
    assert next(p for p in paged.problems if p.id == BUSINESS).severity == "critical"


def test_cross_namespace_counts_the_namespaces_of_its_finding_and_needs_two() -> None:
    # Each namespace has its own flow and so its own problem id: the finding spans them, the problem not.
    spread = Finding(
        "cross_namespace", "DATABASE:*:connection_pool", DAY, "critical", "x", ("batch-a", "cards")
    )
    report = scenario_report(detection=Detection([], [spread]))
    assert "cross-namespace (2 namespaces)" in why_it_matters(next(p for p in report.problems if p.id == DB))
    alone = Finding("cross_namespace", DB, DAY, "critical", "x", ("batch-a",))
    report = scenario_report(detection=Detection([], [alone]))
    assert "cross-namespace" not in why_it_matters(next(p for p in report.problems if p.id == DB))


def test_the_json_report_says_what_changed_before_a_problem() -> None:
    report = scenario_report()
    db = next(problem for problem in report.problems if problem.id == DB)
    db.change = "first seen 4 min after etl rolled out 1.39.3"
    document = report_to_dict(report)
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    changes = {p["id"]: p["change"] for p in document["problems"]}
    assert changes[DB] == "first seen 4 min after etl rolled out 1.39.3"
    assert {change for pid, change in changes.items() if pid != DB} == {None}
    read_back = report_from_dict(document)
    assert next(p for p in read_back.problems if p.id == DB).change == db.change
    assert "  What changed: first seen 4 min after etl rolled out 1.39.3" in report_to_text(report)
