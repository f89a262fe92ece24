"""Tests for core.publish rendering: escaping, redaction, Teams payload shape and size, chart, CSV, files."""

from __future__ import annotations

import csv
import html
import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_report import (
    BUSINESS,
    DAY,
    DB,
    NETWORK,
    incident,
    scenario_detection,
    scenario_incidents,
    scenario_report,
)

from core.model import Chain, ChainMember, Detection, Finding, InputStats
from core.publish import (
    AlertContext,
    Attachment,
    Channel,
    Destinations,
    FileChannel,
    Message,
    confluence_daily_page,
    known_errors_page,
    known_peaks_page,
    newest_complete_report,
    payload_size,
    redacted_csv,
    report_messages,
    teams_alert_card,
    teams_summary_card,
    trend_chart_png,
    trend_figure,
)
from core.redact import Redactor
from core.registry import Registry
from core.report import Report, executive_summary, report_to_csv, report_to_text, write_reports
from core.report import teams as report_teams
from core.report.model import WorkloadStats

HOSTILE = (
    '</td></tr></tbody></table><script>alert("x")</script> ]]> a & b <![CDATA[ y ]]> '
    '<ac:structured-macro ac:name="html"><ac:plain-text-body>z</ac:plain-text-body></ac:structured-macro>'
    " &amp; &nbsp; \x00\x1b\ufffe"
)
NAMESPACES = 'xmlns:ac="http://atlassian.com/content" xmlns:ri="http://atlassian.com/resource/identifier"'
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def parse(page: str) -> ET.Element:
    return ET.fromstring(f"<page {NAMESPACES}>{page}</page>")


AC = "{http://atlassian.com/content}"


def macros(element: ET.Element, name: str) -> list[ET.Element]:
    return [m for m in element.iter(f"{AC}structured-macro") if m.get(f"{AC}name") == name]


def parameter(macro: ET.Element, name: str) -> str | None:
    for child in macro.findall(f"{AC}parameter"):
        if child.get(f"{AC}name") == name:
            return child.text
    return None


def lozenges(element: ET.Element) -> list[tuple[str | None, str | None]]:
    """The (colour, title) of each status macro in `element`."""
    return [(parameter(m, "colour"), parameter(m, "title")) for m in macros(element, "status")]


def structure(page: str) -> list[str]:
    return [element.tag for element in parse(page).iter()]


def report_with_text(text: str) -> Report:
    """The scenario report with `text` planted wherever log text or hand-written text can reach a page."""
    incidents = scenario_incidents()
    incidents[0].samples = [text]
    detection = scenario_detection()
    detection.findings.append(Finding("spike", DB, DAY, "high", text))
    member = ChainMember(DB, "batch-a", "Deployment/batch-a/etl", DAY, 1)
    chain = Chain(members=(member,), root=member, evidence=(text,), confidence=0.5)
    stats = InputStats(fetched=2, accepted=1, skipped={text: 1})
    return scenario_report(incidents=incidents, detection=detection, chains=[chain], stats=stats)


def test_hostile_log_text_does_not_change_the_page_structure() -> None:
    benign = confluence_daily_page(report_with_text("plain text"), chart_filename="trend.png")
    hostile = confluence_daily_page(report_with_text(HOSTILE), chart_filename='trend"><x>.png')
    assert structure(hostile) == structure(benign)


def test_hostile_text_survives_as_inert_text() -> None:
    page = confluence_daily_page(report_with_text(HOSTILE), chart_filename=None)
    text = "".join(parse(page).itertext())
    assert '<script>alert("x")</script>' in text
    assert "<ac:structured-macro" in text
    assert "\x00" not in page


def test_daily_page_has_summary_problems_peaks_and_chains() -> None:
    report = scenario_report()
    root = parse(confluence_daily_page(report, chart_filename="trend.png"))
    headings = [element.text for element in root.iter("h2")]
    assert headings == [
        "Executive summary",
        "Errors per hour",
        "Top 20 problems",
        "Peaks",
        "Propagation chains",
        "Input",
    ]
    summary = [item.findtext("strong") for item in root.find("ol").iter("li")]
    assert summary == executive_summary(report)
    problem_rows = root.findall("table")[0].findall("tbody/tr")
    assert [row.findall("td")[1].text for row in problem_rows[1:]] == [p.id for p in report.problems]
    image = root.find(
        "p/{http://atlassian.com/content}image/{http://atlassian.com/resource/identifier}attachment"
    )
    assert image.get("{http://atlassian.com/resource/identifier}filename") == "trend.png"


def test_daily_page_carries_no_secret() -> None:
    page = confluence_daily_page(scenario_report(), chart_filename=None)
    for secret in ("S3cr3tFakePw", "4111 1111 1111 1111", "jane.doe@example.com", "hunter2"):
        assert secret not in page
    assert "[CARD]" in page


TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/app/etl.py", line 42, in load\n'
    "    pool.connect()\n"
    "OperationalError: too many connections ]]> <b>x</b>"
)
TITLE = "Log analysis 2026-02-09: 3 problems (1 critical, 1 new, 1 regressed)"


def test_the_daily_page_is_titled_with_the_day_and_how_it_went() -> None:
    (daily, *_) = report_messages(scenario_report(), [], None, Destinations())
    assert daily.kind == "confluence_daily"
    assert daily.title == TITLE
    assert "PROBLEM_ANALYSIS_REPORT" not in daily.body


def test_the_top_problems_table_has_at_most_seven_columns_and_lozenges() -> None:
    root = parse(confluence_daily_page(scenario_report(), chart_filename=None))
    header, *rows = root.findall("table")[0].findall("tbody/tr")
    assert len(header.findall("th")) <= 7
    assert {len(row.findall("td")) for row in rows} == {len(header.findall("th"))}
    columns = [th.text for th in header]
    cells = [dict(zip(columns, row.findall("td"), strict=True)) for row in rows]
    assert [lozenges(cell["Severity"]) for cell in cells] == [
        [("Red", "CRITICAL")],
        [("Yellow", "HIGH")],
        [("Grey", "LOW")],
        [("Blue", "MEDIUM")],
    ]
    # Triage shows where people decided something; an open problem is the usual case.
    assert [lozenges(cell["Status"]) for cell in cells] == [
        [("Purple", "NEW")],
        [("Red", "REGRESSED")],
        [("Grey", "RECURRING"), ("Blue", "ACKNOWLEDGED")],
        [("Grey", "RECURRING"), ("Grey", "IGNORED")],
    ]
    assert [cell["First – last"].text for cell in cells][:2] == ["03:01 – 05:14", "06:01 – 06:14"]


def test_a_stack_trace_is_a_code_macro_inside_an_expand_macro() -> None:
    incidents = scenario_incidents()
    for planted in incidents:
        if planted.problem_id == DB:
            planted.samples = [TRACE]
    root = parse(confluence_daily_page(scenario_report(incidents=incidents), chart_filename=None))
    (expand,) = macros(root, "expand")
    assert parameter(expand, "title").startswith("Stack trace: Traceback")
    (code,) = macros(expand, "code")
    assert code.findtext(f"{AC}plain-text-body") == TRACE
    # One-line samples stay inline; no sample is collapsed into a paragraph with its newlines lost.
    assert "pool.connect()" not in "".join(t for p in root.iter("p") for t in p.itertext())


def test_remediation_is_a_list_and_chains_read_root_to_affected() -> None:
    report = scenario_report()
    page = confluence_daily_page(report, chart_filename=None)
    root = parse(page)
    (db,) = [p for p in report.problems if p.id == DB]
    lists = [[li.text for li in ul.findall("li")] for ul in root.iter("ul")]
    assert db.remediation in lists
    assert ".; " not in page
    chain = report.chains[0]
    (other,) = [m for m in chain.members if m != chain.root]
    expected = f"{chain.root.problem_id} in {chain.root.workload} → {other.problem_id} in {other.workload}"
    assert expected in [strong.text for strong in root.iter("strong")]


def test_a_problems_workloads_link_and_change_are_shown_when_known() -> None:
    report = scenario_report()
    problem = report.problems[0]
    problem.kibana_url = "https://kibana.example.com/app/discover#/?_a=(query:'x')&_g=(y)"
    problem.change = "first seen 4 min after etl rolled out 1.39.3"
    problem.workload_stats = [
        WorkloadStats("Deployment/batch-a/etl", 15, DAY, DAY + timedelta(hours=1)),
        WorkloadStats("Deployment/cards/api", 25, DAY + timedelta(minutes=5), DAY + timedelta(hours=2)),
    ]
    page = confluence_daily_page(report, chart_filename=None)
    root = parse(page)
    links = [a.get("href") for a in root.iter("a")]
    assert links.count(problem.kibana_url) == 2  # its count in the table, and its section
    assert "first seen 4 min after etl rolled out 1.39.3" in "".join(root.itertext())
    workloads = [t for t in root.findall("table") if t.find("tbody/tr/th").text == "Workload"]
    table = workloads[0]  # the first problem's section comes first
    assert [[td.text for td in tr.findall("td")] for tr in table.findall("tbody/tr")[1:]] == [
        ["Deployment/batch-a/etl", "15", "2026-02-09T00:00:00Z", "2026-02-09T01:00:00Z"],
        ["Deployment/cards/api", "25", "2026-02-09T00:05:00Z", "2026-02-09T02:00:00Z"],
    ]
    text = report_to_text(report)
    assert "    - Deployment/cards/api: 25 occurrences, 2026-02-09T00:05:00Z to 2026-02-09T02:00:00Z" in text
    assert f"  Events: {problem.kibana_url}" in text


def known_error_entries(sample: str) -> dict[str, dict[str, Any]]:
    return {
        "A:x:old": {
            "fact": "recurring",
            "triage": "open",
            "last_seen": datetime(2026, 2, 1, tzinfo=UTC),
            "sample": "ok",
        },
        "A:x:ignored": {
            "fact": "recurring",
            "triage": "ignored",
            "last_seen": datetime(2026, 2, 9, tzinfo=UTC),
        },
        "A:x:new": {
            "fact": "recurring",
            "triage": "open",
            "last_seen": datetime(2026, 2, 9, tzinfo=UTC),
            "occurrences": 12,
            "namespaces": ["cards", "payments"],
            "ticket": 4711,
            "sample": sample,
            "notes": "<b>ask</b> ops@example.com",
        },
    }


def test_known_errors_page_lists_most_severe_then_most_frequent_with_fact_and_triage() -> None:
    entries = known_error_entries("timeout") | {
        "A:x:loud": {"severity": "high", "occurrences": 900, "fact": "new", "triage": "open"},
        "A:x:worst": {
            "severity": "critical",
            "occurrences": 3,
            "fact": "regressed",
            "triage": "acknowledged",
        },
        "A:x:quiet": {"severity": "high", "occurrences": 5, "triage": "ignored", "until": "2026-03-01"},
    }
    root = parse(known_errors_page(entries))
    header, *rows = root.findall("table/tbody/tr")
    assert [row.findtext("td") for row in rows] == [
        "A:x:worst",
        "A:x:loud",
        "A:x:quiet",
        "A:x:new",
        "A:x:ignored",
        "A:x:old",
    ]
    columns = [th.text for th in header]
    values = dict(zip(columns, rows[0], strict=True))
    assert lozenges(values["Severity"]) == [("Red", "CRITICAL")]
    assert lozenges(values["Fact"]) == [("Red", "REGRESSED")]
    assert lozenges(values["Triage"]) == [("Blue", "ACKNOWLEDGED")]
    quiet = dict(zip(columns, rows[2], strict=True))
    assert lozenges(quiet["Triage"]) == [("Grey", "IGNORED")]
    assert "until 2026-03-01" in "".join(quiet["Triage"].itertext())
    ignored = dict(zip(columns, rows[4], strict=True))
    assert lozenges(ignored["Fact"]) == [("Grey", "RECURRING")]
    assert lozenges(ignored["Triage"]) == [("Grey", "IGNORED")]
    recurring = dict(zip(columns, rows[3], strict=True))
    assert lozenges(recurring["Fact"]) == [("Grey", "RECURRING")]
    assert lozenges(recurring["Triage"]) == [("Grey", "OPEN")]
    text_values = {column: cell.text for column, cell in zip(columns, rows[3], strict=True)}
    assert text_values["Occurrences"] == "12"
    assert text_values["Last seen"] == "2026-02-09T00:00:00Z"
    assert text_values["Namespaces"] == "cards, payments"
    assert text_values["Ticket"] == "4711"
    assert text_values["Notes"] == "<b>ask</b> [EMAIL]"


def test_known_errors_page_redacts_and_escapes_raw_registry_text() -> None:
    page = known_errors_page(known_error_entries("card 4111 1111 1111 1111 " + HOSTILE))
    assert "4111" not in page and "ops@example.com" not in page
    assert structure(page) == structure(known_errors_page(known_error_entries("timeout")))
    assert "<ac:structured-macro" in "".join(parse(page).itertext())


def test_the_known_errors_page_warns_first_about_what_the_registry_cannot_use(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "<script>registry")
    registry.directory.mkdir()
    registry.problems_path.write_text(f"{DB}:\n  status: <script>alert(1)</script>\n  owner: ops\n")
    registry.peaks_path.write_text("spike:x:\n  status: [new\n")  # does not parse: no peaks page
    issues = [str(issue) for issue in registry.issues()]
    assert len(issues) == 2 and all("<script>" in issue for issue in issues)

    messages = report_messages(scenario_report(), [], registry, Destinations())

    assert [m.kind for m in messages] == ["confluence_daily", "confluence_known_errors", "teams_summary"]
    page = messages[1].body
    assert html.escape(issues[0]) in page
    assert "<script>" not in page
    warning, title, *_ = parse(page)
    assert warning.tag == "{http://atlassian.com/content}structured-macro"
    assert warning.get("{http://atlassian.com/content}name") == "warning"
    assert [item.text for item in warning.iter("li")] == issues
    assert (title.tag, title.text) == ("h1", "Known errors")
    assert 'ac:name="warning"' not in known_errors_page(known_error_entries("timeout"))


def test_known_peaks_page_lists_the_peaks() -> None:
    entries = {
        "spike:problem:A:x:y:2026-02-09T10:00:00Z": {
            "kind": "spike",
            "scope": "problem",
            "scope_id": "A:x:y",
            "window_start": "2026-02-09T10:00:00Z",
            "window_end": "2026-02-09T10:15:00Z",
            "observed": 120.0,
            "baseline": 10.0,
            "ratio": 12.0,
            "notes": "deploy <v2>",
        }
    }
    root = parse(known_peaks_page(entries))
    header, row = root.findall("table/tbody/tr")
    values = dict(zip([th.text for th in header], [td.text for td in row], strict=True))
    assert values["Kind"] == "spike"
    assert values["Observed"] == "120"
    assert values["Ratio"] == "12"
    assert values["Notes"] == "deploy <v2>"


def card_content(payload: dict[str, Any]) -> dict[str, Any]:
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    content = attachment["content"]
    assert content["type"] == "AdaptiveCard"
    assert content["version"] in ("1.4", "1.5")
    return content


def card_texts(content: dict[str, Any]) -> list[str]:
    texts = []
    for block in content["body"]:
        if block["type"] == "TextBlock":
            texts.append(block["text"])
        elif block["type"] == "RichTextBlock":
            texts.append("".join(run["text"] for run in block["inlines"]))
    return texts


def test_teams_summary_card_shape_and_text() -> None:
    report = scenario_report()
    payload = teams_summary_card(report, page_url="https://confluence.example.com/pages/1")
    content = card_content(payload)
    texts = card_texts(content)
    # The analysed day, not the time the card was made, heads the card.
    assert texts[:3] == [TITLE, "Generated 2026-02-10T09:15:32Z", "Run Summary:"]
    summary = executive_summary(report)
    problems = [block["inlines"] for block in content["body"][5:]]
    assert [[run["text"] for run in runs] for runs in problems] == [
        ["CRITICAL ", "NEW ", summary[0]],
        ["LOW ", summary[1]],
    ]
    assert [runs[0]["color"] for runs in problems] == ["Attention", "Default"]
    facts = {
        fact["title"]: fact["value"]
        for block in content["body"]
        if block["type"] == "FactSet"
        for fact in block["facts"]
    }
    assert facts["Days processed"] == "1"
    assert facts["Events fetched"] == "50500"
    assert facts["Registry updates"] == "6"
    assert content["actions"][0]["url"] == "https://confluence.example.com/pages/1"
    # Problem ids hold underscores; in a TextBlock Teams would read them as Markdown italics.
    assert all(block["type"] == "RichTextBlock" for block in content["body"][5:])


def test_the_teams_summary_says_what_changed_before_a_new_problem() -> None:
    report = scenario_report()
    report.problems[0].change = "first seen 4 min after etl rolled out 1.39.3"
    body = card_content(teams_summary_card(report, page_url=None))["body"]
    texts = ["".join(run["text"] for run in block.get("inlines", [])) for block in body]
    at = next(n for n, text in enumerate(texts) if text.endswith(executive_summary(report)[0]))
    assert texts[at + 1] == "first seen 4 min after etl rolled out 1.39.3"  # right under its problem
    assert body[at + 1]["inlines"][0]["isSubtle"] is True
    assert sum("rolled out" in text for text in texts) == 1


def test_the_teams_summary_marks_what_the_pipeline_found_regressed() -> None:
    report = scenario_report()
    busiest = next(p for p in report.problems if p.id == BUSINESS)
    busiest.fact = "regressed"
    content = card_content(teams_summary_card(report, page_url=None))
    lines = [[run["text"] for run in block["inlines"]] for block in content["body"][5:]]
    assert lines[1] == ["LOW ", "REGRESSED ", executive_summary(report)[1]]


def test_teams_summary_is_cut_to_the_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    report = scenario_report()
    full = teams_summary_card(report, page_url="https://confluence.example.com/pages/1")
    monkeypatch.setattr(report_teams, "MAX_TEAMS_PAYLOAD_BYTES", payload_size(full) - 10)
    cut = teams_summary_card(report, page_url="https://confluence.example.com/pages/1")
    assert payload_size(cut) <= payload_size(full) - 10
    assert card_texts(card_content(cut))[-1] == "… 1 more, see Confluence."


def test_alert_card_stays_under_28_kb_and_redacts() -> None:
    findings = [
        Finding("spike", f"DATABASE:flow{n}:pool{n}", DAY, "critical", f"x{n} password=hunter2", ("ns-a",))
        for n in range(300)
    ]
    context = AlertContext(
        generated_at=DAY + timedelta(minutes=20),
        start=DAY,
        end=DAY + timedelta(minutes=15),
        counts={f"DATABASE:flow{n}:pool{n}": n for n in range(300)},
        samples={f"DATABASE:flow{n}:pool{n}": "card 4111 1111 1111 1111 " + "x" * 900 for n in range(300)},
        page_url="https://confluence.example.com/pages/1",
    )
    payload = teams_alert_card(findings, context)
    encoded = json.dumps(payload)
    assert payload_size(payload) <= 28_000
    assert "4111" not in encoded and "hunter2" not in encoded
    texts = card_texts(card_content(payload))
    assert texts[0] == "Log Analyzer alert at 2026-02-09 00:20:00 UTC"
    assert texts[-1].endswith("more, see Confluence.")
    assert (
        "CRITICAL DATABASE:flow0:pool0 (spike): started 2026-02-09T00:00:00Z; "
        "affects 1 namespace (ns-a); x0 password=[SECRET]" in texts
    )


def test_alert_card_puts_most_severe_first_and_accepts_a_report() -> None:
    report = scenario_report()
    findings = [
        Finding("spike", BUSINESS, DAY, "low", "30x"),
        Finding("regression", NETWORK, DAY, "critical", "back again"),
    ]
    texts = card_texts(card_content(teams_alert_card(findings, report)))
    headlines = [text for text in texts if text.startswith(("CRITICAL", "LOW"))]
    assert headlines == [
        f"CRITICAL {NETWORK} (regression): started 2026-02-09T00:00:00Z; back again",
        f"LOW {BUSINESS} (spike): started 2026-02-09T00:00:00Z; 30x",
    ]
    assert {"title": "Occurrences in range", "value": "300"} in [
        fact
        for block in card_content(teams_alert_card(findings, report))["body"]
        for fact in block.get("facts", [])
    ]


def test_trend_chart_is_a_png() -> None:
    day = trend_chart_png(scenario_incidents(), start=DAY, end=DAY + timedelta(days=1))
    assert day[:8] == PNG_MAGIC
    assert trend_chart_png([])[:8] == PNG_MAGIC
    one = [incident(DB, "critical", hour=5, namespace="a", workload="w", count=3)]
    assert trend_chart_png(one)[:8] == PNG_MAGIC


def test_an_empty_trend_chart_spans_its_range_and_says_why_it_is_empty() -> None:
    from matplotlib.dates import num2date

    figure = trend_figure([], start=DAY, end=DAY + timedelta(days=1), empty="No errors can be reported.")
    (axes,) = figure.axes
    assert [text.get_text() for text in axes.texts] == ["No errors can be reported."]
    low, high = (num2date(limit) for limit in axes.get_xlim())
    assert (low, high.replace(microsecond=0)) == (DAY, DAY + timedelta(hours=23, minutes=59, seconds=59))
    assert not trend_figure(scenario_incidents(), start=DAY, end=DAY + timedelta(days=1)).axes[0].texts


def test_file_channel_writes_the_body_and_the_attachments(tmp_path: Path) -> None:
    card = teams_summary_card(scenario_report(), page_url=None)
    channel = FileChannel(tmp_path, "2026-02-10T091532")
    teams = channel.send(Message("teams", "teams_summary", json.dumps(card), "json"))
    page = channel.send(
        Message(
            "confluence",
            "confluence_daily",
            "<p>x</p>",
            "xhtml",
            attachments=(Attachment("trend.png", PNG_MAGIC, "image/png"),),
        )
    )
    assert teams.delivered and page.delivered
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.*")) == [
        "publish/confluence_daily_2026-02-10T091532.xhtml",
        "publish/teams_summary_2026-02-10T091532.json",
        "publish/trend_2026-02-10T091532.png",
    ]
    assert json.loads((tmp_path / "publish/teams_summary_2026-02-10T091532.json").read_text()) == card
    assert (tmp_path / "publish/trend_2026-02-10T091532.png").read_bytes() == PNG_MAGIC


def test_file_channel_reports_a_failure_instead_of_raising(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    channel: Channel = FileChannel(blocked, "2026-02-10T091532")
    result = channel.send(Message("teams", "teams_summary", "{}", "json"))
    assert not result.delivered
    assert result.error and "not-a-directory" in result.error


def test_the_csv_attachment_is_redacted_cell_by_cell_and_keeps_its_rows() -> None:
    raw = 'id,sample\nA:x:y,"card 4111 1111 1111 1111, password=""hunter2"" token=abc"\nB:x:y,plain\n'
    redacted = redacted_csv(raw, Redactor())
    assert "4111" not in redacted and "hunter2" not in redacted and "abc" not in redacted
    rows = list(csv.reader(io.StringIO(redacted)))
    assert [row[0] for row in rows] == ["id", "A:x:y", "B:x:y"]
    assert rows[2][1] == "plain"
    report_csv = report_to_csv(scenario_report())
    assert redacted_csv(report_csv) == report_csv  # the report is redacted already: nothing changes


def test_extra_redaction_patterns_reach_every_rendering() -> None:
    report = report_with_text("customer ACME-123456 failed")
    redactor = Redactor([r"ACME-\d+"])
    page = confluence_daily_page(report, chart_filename=None, redactor=redactor)
    card = json.dumps(teams_summary_card(report, page_url=None, redactor=redactor))
    alert = json.dumps(
        teams_alert_card([Finding("new", DB, DAY, "critical", "ACME-123456 seen")], report, redactor=redactor)
    )
    for text in (page, card, alert):
        assert "ACME-123456" not in text


def test_empty_report_renders_everywhere() -> None:
    empty = scenario_report(incidents=[], detection=Detection([], []), chains=[])
    assert "No problems in this range." in confluence_daily_page(empty, chart_filename=None)
    summary = card_texts(card_content(teams_summary_card(empty, page_url=None)))
    assert summary[-1] == "No problems in this range."


def test_alert_card_without_context_names_the_findings_window() -> None:
    findings = [Finding("new", DB, DAY + timedelta(hours=10), "critical", "first seen")]
    texts = card_texts(card_content(teams_alert_card(findings, None)))
    assert texts[:2] == [
        "Log Analyzer alert",
        "Window [2026-02-09T10:00:00Z, 2026-02-09T10:15:00Z): 1 incident",
    ]
    assert f"CRITICAL {DB} (new problem): started 2026-02-09T10:00:00Z; first seen" in texts
    with pytest.raises(ValueError, match="needs a context"):
        teams_alert_card([], None)


# --- the stored report -----------------------------------------------------------------------------

UNREACHABLE = "Elasticsearch unreachable (connection refused)"


def verdict(status: str, reason: str = UNREACHABLE) -> dict[str, Any]:
    """A report's verdict as the JSON report carries it, for the scenario day."""
    word = {"failed": "FAILED", "degraded": "DEGRADED"}[status]
    return {
        "status": status,
        "label": "2026-02-09",
        "headline": f"Analysis {word} for 2026-02-09: {reason}",
        "reasons": [reason],
        "ranges": [{"label": "2026-02-09", "status": status, "reasons": [reason]}],
    }


def stored_report_file(
    folder: Path, hour: int, carried: dict[str, Any] | None, *, days_failed: int = 0
) -> Path:
    """The scenario report as problem_report_<stamp>.json, made at `hour` UTC on the morning after,
    with the verdict it carries (None: a report written before reports had verdicts)."""
    report = scenario_report(generated_at=datetime(2026, 2, 10, hour, tzinfo=UTC))
    path = write_reports(report, folder)["json"]
    document = json.loads(path.read_text(encoding="utf-8"))
    if carried is None:
        del document["verdict"]
    else:
        document["verdict"] = carried
    document["run"]["days_failed"] = days_failed
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_the_newest_complete_report_is_chosen_over_failed_and_unreadable_ones(tmp_path: Path) -> None:
    before_verdicts_failed = stored_report_file(tmp_path, 5, None, days_failed=1)
    before_verdicts_ok = stored_report_file(tmp_path, 6, None)
    degraded = stored_report_file(tmp_path, 7, verdict("degraded", "62 % of the documents skipped"))
    failed = stored_report_file(tmp_path, 8, verdict("failed"))
    (tmp_path / "problem_report_2026-02-10T090000.json").write_text('{"schema_version": "1.0", "problems": [')
    (tmp_path / "problem_report_2026-02-10T100000.json").write_bytes(b"\x89\xff\x00 not a report")

    stored, newer_failed = newest_complete_report(tmp_path)
    assert stored is not None and (stored.path, stored.status) == (degraded, "degraded")
    assert stored.report.label == "Backfill Analysis: 2026-02-09"
    assert newer_failed == [failed]

    degraded.unlink()
    stored, newer_failed = newest_complete_report(tmp_path)
    assert stored is not None and (stored.path, stored.status) == (before_verdicts_ok, "ok")

    before_verdicts_ok.unlink()
    assert newest_complete_report(tmp_path) == (None, [failed, before_verdicts_failed])
