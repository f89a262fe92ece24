"""Carry the stored problems over a change of the masking rules (`MASKING_RULES_VERSION`).

Every stored incident is fingerprinted again from its samples with the current rules, an unclassified
one gets the problem id its new template gives, and the per-problem fold is rebuilt: a problem keeps its
first sighting, counts, peaks and pending alerts under its new id. Old → new ids are recorded in
`problem_renames`, from which the registry moves its entries (people's status, owner, notes). Run by the
store migration that comes with each rule change; running it again changes nothing. The fold is the
store's own (`_recompute_problems`), so the rows rebuilt here are those a run would have written.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.aggregate import MAX_APPS, MAX_FINGERPRINTS
from core.classify import template_error_class
from core.fingerprint import MASKING_RULES_VERSION, Fingerprinter
from core.model import MAX_SAMPLES, MAX_TRACE_IDS, Fingerprint
from core.redact import redact
from core.store import (
    DAY,
    _day,
    _Facts,
    _incident_key,
    _insert,
    _recompute_problems,
    incidents_table,
    peaks_table,
    pending_alerts_table,
    problem_days_table,
    problem_renames_table,
    problems_table,
)

UNCLASSIFIED = "UNCLASSIFIED"

# What core/redact.py writes in place of a secret. A sample is stored redacted: its marks stand for the
# values the live message had, which the masking turns into placeholders too.
_REDACTION_MARK = re.compile(r"\[(?:CARD|IBAN|EMAIL|JWT|TOKEN|SECRET|REDACTED)\]")


def rekey(conn: Connection, now: datetime) -> dict[str, str]:
    """Re-key everything stored with the current rules, in the caller's transaction; returns the
    problems renamed, old id → new id."""
    fingerprinter = Fingerprinter()
    incidents, targets = _rekeyed_incidents(conn, fingerprinter)
    renames = {old: _most_events(new) for old, new in targets.items() if _most_events(new) != old}
    renames |= _renames_without_incidents(conn, fingerprinter, renames.keys() | targets.keys())
    if not incidents and not renames:
        return {}
    conn.execute(sa.delete(incidents_table))
    _insert(conn, incidents_table, incidents)
    _rename_days(conn, renames)
    problem_ids = sorted({row["problem_id"] for row in incidents} | renames.keys() | set(renames.values()))
    # The days that have incidents are folded again from them (their templates are the new ones); the
    # older days keep their renamed rows. Without incidents an empty range rebuilds `problems` only.
    starts = [row["window_start"] for row in incidents] or [now]
    lo, hi = _day(min(starts)), _day(max(starts)) + DAY if incidents else _day(now)
    _recompute_problems(conn, problem_ids, incidents, lo, hi, now)
    _rename_peaks(conn, renames)
    _rename_pending_alerts(conn, renames)
    for chunk in _chunks(sorted(renames)):
        conn.execute(sa.delete(problem_renames_table).where(problem_renames_table.c.old_id.in_(chunk)))
    _insert(
        conn,
        problem_renames_table,
        [
            {"old_id": old, "new_id": new, "masking_rules_version": MASKING_RULES_VERSION}
            for old, new in sorted(renames.items())
        ],
    )
    return renames


def _fingerprint(fingerprinter: Fingerprinter, stored: str) -> Fingerprint:
    return fingerprinter.fingerprint(_REDACTION_MARK.sub("<REDACTED>", stored))


def _rekeyed_incidents(
    conn: Connection, fingerprinter: Fingerprinter
) -> tuple[list[dict[str, Any]], dict[str, Counter[str]]]:
    """The incidents as the current rules make them (two that now share a key merged), and for each
    old problem id the events each new id took of it."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    targets: dict[str, Counter[str]] = {}
    rows = [dict(row) for row in conn.execute(sa.select(incidents_table)).mappings()]
    for row in sorted(rows, key=_incident_key):
        old_id = row["problem_id"]
        prints = [
            _fingerprint(fingerprinter, text) for text in row["samples"] or row["fingerprints"].values()
        ]
        if prints:
            row["fingerprints"] = _smallest_keys({}, [(fp.key, redact(fp.template)) for fp in prints])
        if row["category"] == UNCLASSIFIED and prints:
            # the earliest sample decides, as the problem's first event did
            row["error_class"] = template_error_class(prints[0].template)
            row["problem_id"] = f"{UNCLASSIFIED}:{row['flow']}:{row['error_class']}"
        targets.setdefault(old_id, Counter())[row["problem_id"]] += row["count"]
        key = _incident_key(row)
        if key in merged:
            _merge_incident(merged[key], row)
        else:
            merged[key] = row
    return sorted(merged.values(), key=_incident_key), targets


def _smallest_keys(ours: Mapping[str, str], theirs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The smallest keys, each with its smallest template, as the aggregator keeps them."""
    kept = dict(ours)
    for key, template in theirs:
        if key not in kept or template < kept[key]:
            kept[key] = template
    return {key: kept[key] for key in sorted(kept)[:MAX_FINGERPRINTS]}


def _merge_incident(ours: dict[str, Any], theirs: Mapping[str, Any]) -> None:
    """Two stored incidents that are one under the current rules: one row, as if counted together."""
    ours["count"] += theirs["count"]
    ours["first_seen"] = min(ours["first_seen"], theirs["first_seen"])
    ours["last_seen"] = max(ours["last_seen"], theirs["last_seen"])
    ours["samples"] = list(dict.fromkeys([*ours["samples"], *theirs["samples"]]))[:MAX_SAMPLES]
    ours["fingerprints"] = _smallest_keys(ours["fingerprints"], theirs["fingerprints"].items())
    ours["trace_ids"] = list(dict.fromkeys([*ours["trace_ids"], *theirs["trace_ids"]]))[:MAX_TRACE_IDS]
    ours["apps"] = sorted({*ours["apps"], *theirs["apps"]})[:MAX_APPS]


def _most_events(targets: Counter[str]) -> str:
    """The id that took most of an old problem's events (the smallest of equals): its history goes
    there when the current rules split the problem."""
    return min(targets.items(), key=lambda item: (-item[1], item[0]))[0]


def _renames_without_incidents(
    conn: Connection, fingerprinter: Fingerprinter, known: Iterable[str]
) -> dict[str, str]:
    """New ids of the unclassified problems whose incidents retention removed, from their last sample
    (or their most frequent template when it has none)."""
    known = set(known)
    renames: dict[str, str] = {}
    query = sa.select(
        problems_table.c.problem_id,
        problems_table.c.flow,
        problems_table.c.sample,
        problems_table.c.templates,
    ).where(problems_table.c.category == UNCLASSIFIED)
    for row in conn.execute(query).mappings():
        text = row["sample"] or next(iter(row["templates"]), "")
        if row["problem_id"] in known or not text:
            continue
        new_id = (
            f"{UNCLASSIFIED}:{row['flow']}:{template_error_class(_fingerprint(fingerprinter, text).template)}"
        )
        if new_id != row["problem_id"]:
            renames[row["problem_id"]] = new_id
    return renames


def _rename_days(conn: Connection, renames: Mapping[str, str]) -> None:
    """Move the day rows of renamed problems to their new ids, folding the days two of them share."""
    if not renames:
        return
    touched = sorted(renames.keys() | set(renames.values()))
    rows = [
        row
        for chunk in _chunks(touched)
        for row in conn.execute(
            sa.select(problem_days_table).where(problem_days_table.c.problem_id.in_(chunk))
        ).mappings()
    ]
    for chunk in _chunks(touched):
        conn.execute(sa.delete(problem_days_table).where(problem_days_table.c.problem_id.in_(chunk)))
    days: dict[tuple[str, datetime], _Facts] = {}
    for row in sorted(rows, key=lambda r: (r["problem_id"], r["day"])):
        pid = renames.get(row["problem_id"], row["problem_id"])
        if pid != row["problem_id"]:  # only unclassified problems are renamed: the class is in the id
            row = {**row, "error_class": pid.split(":", 2)[2]}
        facts = days.setdefault((pid, row["day"]), _Facts())
        facts.add(row, row["sample"], row["sample_seen"])
        facts.namespaces.update(row["namespaces"])
        facts.workloads.update(row["workloads"])
        facts.templates.update(row["templates"])
    day_rows = [
        {
            "problem_id": pid,
            "day": day,
            "count": f.count,
            "sample_seen": f.sample_seen,
            **f.row(dict(f.templates)),
        }
        for (pid, day), f in sorted(days.items())
    ]
    _insert(conn, problem_days_table, day_rows)


def _rename_peaks(conn: Connection, renames: Mapping[str, str]) -> None:
    """Peaks of a renamed problem are its new id's; of two that now fall on one key, the higher stays."""
    if not renames:
        return
    old = sorted(renames)
    query = sa.select(peaks_table).where(
        sa.or_(
            peaks_table.c.problem_id.in_(old),
            sa.and_(peaks_table.c.scope == "problem", peaks_table.c.scope_id.in_(old)),
        )
    )
    rows = [dict(row) for row in conn.execute(query).mappings()]
    if not rows:
        return
    conn.execute(
        sa.delete(peaks_table).where(
            sa.or_(
                peaks_table.c.problem_id.in_(old),
                sa.and_(peaks_table.c.scope == "problem", peaks_table.c.scope_id.in_(old)),
            )
        )
    )
    kept: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        row["problem_id"] = renames.get(row["problem_id"], row["problem_id"])
        if row["scope"] == "problem":
            row["scope_id"] = renames.get(row["scope_id"], row["scope_id"])
        key = (row["kind"], row["scope"], row["scope_id"], row["window_start"])
        if key not in kept or row["observed"] > kept[key]["observed"]:
            kept[key] = row
    existing = {
        (r["kind"], r["scope"], r["scope_id"], r["window_start"])
        for r in conn.execute(
            sa.select(
                peaks_table.c.kind, peaks_table.c.scope, peaks_table.c.scope_id, peaks_table.c.window_start
            ).where(peaks_table.c.scope_id.in_(sorted({k[2] for k in kept})))
        ).mappings()
    }
    _insert(conn, peaks_table, [row for key, row in sorted(kept.items()) if key not in existing])


def _rename_pending_alerts(conn: Connection, renames: Mapping[str, str]) -> None:
    for row in conn.execute(sa.select(pending_alerts_table.c.id, pending_alerts_table.c.finding)).mappings():
        problem_id = row["finding"].get("problem_id")
        if problem_id in renames:
            finding = {**row["finding"], "problem_id": renames[problem_id]}
            conn.execute(
                sa.update(pending_alerts_table)
                .where(pending_alerts_table.c.id == row["id"])
                .values(finding=finding)
            )


def _chunks(items: list[str], size: int = 500) -> Iterable[list[str]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]
