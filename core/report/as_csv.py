"""The CSV report: one row per problem, in rank order."""

from __future__ import annotations

import csv
import io
import re

from core.report.as_json import problem_to_dict
from core.report.model import Report

CSV_COLUMNS = (
    "rank",
    "id",
    "category",
    "flow",
    "error_class",
    "severity",
    "fact",
    "triage",
    "silenced_until",
    "score",
    "count",
    "first_seen",
    "last_seen",
    "known_since",
    "namespaces",
    "workloads",
    "findings",
    "sample",
    "remediation",
    "owner",
    "ticket",
)
CSV_LIST_SEPARATOR = "; "


# Control characters a CSV reader takes for a row end (a lone CR is not quoted by the csv module
# when the line terminator is LF) or stops at (NUL); a log line may contain any of them.
_CSV_CONTROL = re.compile(r"\r\n?|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def csv_text(value: object) -> object:
    """A CSV cell that reads back as one cell: line breaks become LF (quoted by the writer), other
    control characters become U+FFFD."""
    if not isinstance(value, str):
        return value
    return _CSV_CONTROL.sub(lambda m: "\n" if m.group().startswith("\r") else "\ufffd", value)


def report_to_csv(report: Report) -> str:
    """One row per problem, in rank order: the JSON record's columns, list fields joined with "; "."""
    buffer = io.StringIO()
    if not report.verdict.ok:
        # A spreadsheet shows it in the first cell; readers skip it as a comment ("#").
        buffer.write("# " + csv_text(report.verdict.headline()).replace("\n", " ") + "\n")
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for rank, problem in enumerate(report.problems, start=1):
        record = problem_to_dict(rank, problem)
        record["workloads"] = record["services"]
        record["findings"] = problem.finding_kinds
        writer.writerow({column: csv_text(_csv_cell(record[column])) for column in CSV_COLUMNS})
    return buffer.getvalue()


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, list):
        return CSV_LIST_SEPARATOR.join(map(str, value))
    return value
