"""The problem report: the model of a range's problems (`model`), written as JSON and read back for a
republish (`as_json`), as CSV (`as_csv`) and TXT (`as_text`), into files written whole or not at all
(`files`), and as the Confluence pages (`confluence`) and the Teams summary card (`teams`). TXT and
Confluence follow the same sections (`sections`)."""

from core.report.as_csv import csv_text, report_to_csv
from core.report.as_json import (
    ReportFileError,
    StoredReport,
    newest_complete_report,
    read_report,
    report_from_dict,
    report_to_dict,
)
from core.report.as_text import report_to_text
from core.report.files import ReportWriteError, report_stamp, write_atomic, write_reports
from core.report.model import (
    TOP_DETAILS,
    ProblemSummary,
    Report,
    RunFigures,
    build_report,
    chain_dependents,
    empty_summary,
    executive_summary,
    range_text,
    summary_problems,
    why_it_matters,
)

__all__ = [
    "TOP_DETAILS",
    "ProblemSummary",
    "Report",
    "ReportFileError",
    "ReportWriteError",
    "RunFigures",
    "StoredReport",
    "build_report",
    "chain_dependents",
    "csv_text",
    "empty_summary",
    "executive_summary",
    "newest_complete_report",
    "range_text",
    "read_report",
    "report_from_dict",
    "report_stamp",
    "report_to_csv",
    "report_to_dict",
    "report_to_text",
    "summary_problems",
    "why_it_matters",
    "write_atomic",
    "write_reports",
]
