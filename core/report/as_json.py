"""The JSON report (docs/report-schema.md, docs/report.schema.json), in both directions: written from the
report model, and read back so that `log-analyzer publish` renders a stored report through the same path
as the backfill."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from core.model import (
    Chain,
    ChainMember,
    InputStats,
    Peak,
    Verdict,
    Workload,
    finding_from_dict,
    finding_to_dict,
    isoformat,
    utc,
)
from core.report.model import (
    SCHEMA_VERSION,
    ProblemSummary,
    Report,
    RunFigures,
    WorkloadStats,
    executive_summary,
)


def report_to_dict(report: Report) -> dict[str, Any]:
    """The JSON document of a report, as described in docs/report-schema.md."""
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": isoformat(report.generated_at),
        "phase": report.phase,
        "range": {"start": isoformat(report.start), "end": isoformat(report.end), "label": report.label},
        "verdict": verdict_to_dict(report.verdict, report.range_verdicts),
        "executive_summary": executive_summary(report),
        "problems": [problem_to_dict(rank, problem) for rank, problem in enumerate(report.problems, start=1)],
        "peaks": [_peak_to_dict(peak) for peak in report.peaks],
        "findings": [finding_to_dict(finding) for finding in report.findings],
        "chains": [_chain_to_dict(chain) for chain in report.chains],
        "stats": {
            "fetched": report.stats.fetched,
            "accepted": report.stats.accepted,
            "skipped": dict(sorted(report.stats.skipped.items())),
            "skipped_total": report.stats.skipped_total,
            "truncated": report.stats.truncated,
            "joined_lines": report.stats.joined_lines,
        },
        "run": {
            "days_processed": report.figures.days_processed,
            "days_succeeded": report.figures.days_succeeded,
            "days_failed": report.figures.days_failed,
            "failed_days": list(report.figures.failed_days),
            "events_fetched": report.figures.events_fetched,
            "events_skipped": dict(sorted(report.figures.events_skipped.items())),
            "incidents_saved": report.figures.incidents_saved,
            "registry_updates": report.figures.registry_updates,
            "duration_s": round(report.figures.duration_s, 3),
        },
    }


def verdict_to_dict(verdict: Verdict, ranges: Iterable[Verdict]) -> dict[str, Any]:
    """The report's `verdict`: the run's status and headline, and each analysed range's."""
    return {
        "status": verdict.status,
        "label": verdict.label,
        "headline": verdict.headline(),
        "reasons": list(verdict.reasons),
        "ranges": [{"label": v.label, "status": v.status, "reasons": list(v.reasons)} for v in ranges],
    }


def problem_to_dict(rank: int, problem: ProblemSummary) -> dict[str, Any]:
    return {
        "rank": rank,
        "id": problem.id,
        "category": problem.category,
        "flow": problem.flow,
        "error_class": problem.error_class,
        "severity": problem.severity,
        "fact": problem.fact,
        "triage": problem.triage,
        "silenced_until": isoformat(problem.silenced_until) if problem.silenced_until else None,
        "reason": problem.reason,
        "score": problem.score,
        "count": problem.count,
        "first_seen": isoformat(problem.first_seen),
        "last_seen": isoformat(problem.last_seen),
        "known_since": isoformat(problem.known_since) if problem.known_since else None,
        "namespaces": problem.namespaces,
        "workloads": [_workload_to_dict(w) for w in problem.workloads],
        "services": problem.services,
        "workload_stats": [
            {
                "workload": _workload_to_dict(stats.workload),
                "count": stats.count,
                "first_seen": isoformat(stats.first_seen),
                "last_seen": isoformat(stats.last_seen),
                "jobs": stats.jobs,
            }
            for stats in problem.workload_stats
        ],
        "fingerprint_keys": problem.fingerprint_keys,
        "change": problem.change,
        "kibana_url": problem.kibana_url,
        "templates": problem.templates,
        "sample": problem.sample,
        "findings": [finding_to_dict(finding) for finding in problem.findings],
        "remediation": problem.remediation,
        "owner": problem.owner,
        "ticket": problem.ticket,
        "notes": problem.notes,
    }


def _workload_to_dict(workload: Workload) -> dict[str, Any]:
    return {
        "kind": workload.kind,
        "namespace": workload.namespace,
        "name": workload.name,
        "cronjob": workload.cronjob,
    }


def _peak_to_dict(peak: Peak) -> dict[str, Any]:
    return {
        "kind": peak.kind,
        "scope": peak.scope,
        "scope_id": peak.scope_id,
        "window_start": isoformat(peak.window_start),
        "window_end": isoformat(peak.window_end),
        "observed": peak.observed,
        "baseline": peak.baseline,
        "ratio": peak.ratio,
        "problem_id": peak.problem_id,
        "namespace": peak.namespace,
    }


def _member_to_dict(member: ChainMember) -> dict[str, Any]:
    return {
        "problem_id": member.problem_id,
        "namespace": member.namespace,
        "workload": member.workload,
        "first_seen": isoformat(member.first_seen),
        "count": member.count,
    }


def _chain_to_dict(chain: Chain) -> dict[str, Any]:
    return {
        "members": [_member_to_dict(member) for member in chain.members],
        "root": _member_to_dict(chain.root),
        "evidence": list(chain.evidence),
        "confidence": chain.confidence,
    }


# ------------------------------------------------------------------------------------- reading back


class ReportFileError(ValueError):
    """The file is not a problem report this version can read; the message names the file."""


@dataclass(frozen=True, slots=True)
class StoredReport:
    """A report file read back, with the status of its verdict: ok | degraded | failed."""

    path: Path
    report: Report
    status: str

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def read_report(path: Path) -> StoredReport:
    """The report stored at `path` (a problem_report_*.json)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportFileError(f"{path}: not readable as JSON ({type(exc).__name__})") from None
    version = str(document.get("schema_version", "")) if isinstance(document, dict) else ""
    if not version.startswith("1."):
        raise ReportFileError(f"{path}: not a problem report of schema 1.x")
    try:
        return StoredReport(path, report_from_dict(document), report_verdict_status(document))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ReportFileError(f"{path}: incomplete problem report ({type(exc).__name__}: {exc})") from None


def report_verdict_status(document: Mapping[str, Any]) -> str:
    """ok | degraded | failed, from the report's verdict. A report written before verdicts existed has
    none: it failed when one of its days failed."""
    if "verdict" in document:
        return str(document["verdict"]["status"])
    return "failed" if document["run"]["days_failed"] > 0 else "ok"


def newest_complete_report(folder: Path) -> tuple[StoredReport | None, list[Path]]:
    """The newest report in `folder` whose analysis did not fail (None when there is none), and the
    failed reports newer than it, newest first. Newest is by the time stamp in the file name.

    A failed report is passed over so that a run which could not read its logs is never republished as
    the latest news; a file that is not a readable report (damaged, or not ours) is passed over too."""
    failed: list[Path] = []
    for path in sorted(folder.glob("problem_report_*.json"), reverse=True):
        try:
            stored = read_report(path)
        except ReportFileError:
            continue
        if not stored.failed:
            return stored, failed
        failed.append(path)
    return None, failed


def report_from_dict(document: dict[str, Any]) -> Report:
    stats, run = document["stats"], document["run"]
    return Report(
        generated_at=_time(document["generated_at"]),
        phase=document["phase"],
        start=_time(document["range"]["start"]),
        end=_time(document["range"]["end"]),
        problems=[_problem(problem) for problem in document["problems"]],
        peaks=[_peak(peak) for peak in document["peaks"]],
        findings=[finding_from_dict(finding) for finding in document["findings"]],
        chains=[_chain(chain) for chain in document["chains"]],
        stats=InputStats(
            fetched=stats["fetched"],
            accepted=stats["accepted"],
            skipped=dict(stats["skipped"]),
            truncated=stats["truncated"],
            joined_lines=stats.get("joined_lines", 0),  # 1.3
        ),
        figures=RunFigures(
            days_processed=run["days_processed"],
            days_succeeded=run["days_succeeded"],
            days_failed=run["days_failed"],
            failed_days=list(run["failed_days"]),
            events_fetched=run["events_fetched"],
            events_skipped=dict(run["events_skipped"]),
            incidents_saved=run["incidents_saved"],
            registry_updates=run["registry_updates"],
            duration_s=run["duration_s"],
        ),
        verdict=_verdict(document.get("verdict") or {}, (document.get("verdict") or {}).get("label", "")),
        range_verdicts=[_verdict(v, v["label"]) for v in (document.get("verdict") or {}).get("ranges", [])],
    )


def _verdict(v: dict[str, Any], label: str) -> Verdict:
    return Verdict(v.get("status", "ok"), tuple(v.get("reasons", ())), label)


def _time(value: str) -> datetime:
    return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


# Reports before 1.4 have one `status` for the fact and the triage.
_LEGACY_FACT = {"new": "new", "regressed": "regressed"}
_LEGACY_TRIAGE = {"ignored": "ignored", "resolved": "resolved", "acknowledged": "acknowledged"}


def _problem(p: dict[str, Any]) -> ProblemSummary:
    return ProblemSummary(
        id=p["id"],
        category=p["category"],
        flow=p["flow"],
        error_class=p["error_class"],
        severity=p["severity"],
        fact=p["fact"] if "fact" in p else _LEGACY_FACT.get(p["status"], "recurring"),
        triage=p["triage"] if "triage" in p else _LEGACY_TRIAGE.get(p["status"], "open"),
        silenced_until=_time(p["silenced_until"]) if p.get("silenced_until") else None,
        reason=p.get("reason"),
        score=p["score"],
        count=p["count"],
        first_seen=_time(p["first_seen"]),
        last_seen=_time(p["last_seen"]),
        known_since=_time(p["known_since"]) if p["known_since"] else None,
        namespaces=list(p["namespaces"]),
        workloads=[_workload(w) for w in p["workloads"]],
        workload_stats=[  # 1.4
            WorkloadStats(
                _workload(s["workload"]),
                s["count"],
                _time(s["first_seen"]),
                _time(s["last_seen"]),
                s.get("jobs", 0),
            )
            for s in p.get("workload_stats", [])
        ],
        fingerprint_keys=list(p.get("fingerprint_keys", [])),  # 1.4
        change=p.get("change"),  # 1.4
        kibana_url=p.get("kibana_url"),  # 1.4
        templates=list(p["templates"]),
        sample=p["sample"],
        findings=[finding_from_dict(finding) for finding in p["findings"]],
        remediation=list(p["remediation"]),
        owner=p["owner"],
        ticket=p["ticket"],
        notes=p["notes"],
    )


def _workload(w: dict[str, Any]) -> Workload:
    return Workload(w["kind"], w["namespace"], w["name"])


def _peak(p: dict[str, Any]) -> Peak:
    return Peak(
        kind=p["kind"],
        scope=p["scope"],
        scope_id=p["scope_id"],
        window_start=_time(p["window_start"]),
        window_end=_time(p["window_end"]),
        observed=p["observed"],
        baseline=p["baseline"],
        ratio=p["ratio"],
        problem_id=p["problem_id"],
        namespace=p["namespace"],
    )


def _member(m: dict[str, Any]) -> ChainMember:
    return ChainMember(
        problem_id=m["problem_id"],
        namespace=m["namespace"],
        workload=m["workload"],
        first_seen=_time(m["first_seen"]),
        count=m["count"],
    )


def _chain(c: dict[str, Any]) -> Chain:
    return Chain(
        members=tuple(_member(m) for m in c["members"]),
        root=_member(c["root"]),
        evidence=tuple(c["evidence"]),
        confidence=c["confidence"],
    )
