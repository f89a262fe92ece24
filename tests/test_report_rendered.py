"""The daily page and the Teams cards as people see them, rendered in headless Chromium.

Needs Debian's `chromium` and, for the cards, Microsoft's Adaptive Cards renderer from npm in
tests/cards/ (`npm ci` there); scripts/test.sh installs both. Confluence storage format is not HTML,
so the macros the page uses (panels, code, expand, status lozenges, images) are turned into HTML here,
the way Confluence shows them. Set RENDERED_DIR to keep the screenshots for a look.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from test_report import DAY, DB, scenario_incidents, scenario_report

from core.model import Detection, Finding, Verdict
from core.report.confluence import confluence_daily_page, page_title
from core.report.kibana import Kibana
from core.report.model import WorkloadStats
from core.report.teams import teams_alert_card, teams_summary_card

CARDS = Path(__file__).parent / "cards"
RENDERER = CARDS / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.min.js"
AC = "{http://atlassian.com/content}"
RI = "{http://atlassian.com/resource/identifier}"
NAMESPACES = 'xmlns:ac="http://atlassian.com/content" xmlns:ri="http://atlassian.com/resource/identifier"'
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
STYLE = """
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 24px;
       color: #172b4d; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #dfe1e6; padding: 4px 8px; vertical-align: top; text-align: left; }
th { background: #f4f5f7; }
.lozenge { display: inline-block; border-radius: 3px; padding: 0 4px; font-size: 11px;
           font-weight: 700; line-height: 16px; margin-right: 2px; }
.Grey { background: #dfe1e6; color: #42526e; } .Red { background: #ffebe6; color: #bf2600; }
.Yellow { background: #fffae6; color: #ff8b00; } .Green { background: #e3fcef; color: #006644; }
.Blue { background: #deebff; color: #0747a6; } .Purple { background: #eae6ff; color: #403294; }
.panel { border-radius: 3px; padding: 8px 12px; margin: 8px 0; }
.warning { background: #ffebe6; } .note { background: #eae6ff; } .info { background: #deebff; }
details { border: 1px solid #dfe1e6; border-radius: 3px; padding: 4px 8px; margin: 8px 0; }
pre.code { background: #f4f5f7; padding: 8px; overflow-x: auto; margin: 4px 0; }
img { border: 1px dashed #999; min-width: 300px; min-height: 60px; }
"""


def chromium() -> str:
    path = shutil.which("chromium")
    if not path:
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it)")
    return path


def run_chromium(url: str, tmp_path: Path, *args: str) -> str:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    result = subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            "--window-size=1400,2000",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def screenshot(page: Path, tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("RENDERED_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / f"{name}.png"
    run_chromium(page.as_uri(), tmp_path, f"--screenshot={png}")
    return png


# --- Confluence storage format as Confluence shows it ------------------------------------------


def parameter(macro: ET.Element, name: str) -> str:
    for child in macro.findall(f"{AC}parameter"):
        if child.get(f"{AC}name") == name:
            return child.text or ""
    return ""


def to_html(element: ET.Element) -> str:
    """One storage-format element as HTML: the macros the pages use, every other element as it is."""
    if element.tag == f"{AC}structured-macro":
        name = element.get(f"{AC}name")
        body = element.find(f"{AC}rich-text-body")
        inner = (
            (html.escape(body.text or "") + "".join(to_html(child) for child in body))
            if body is not None
            else ""
        )
        if name == "status":
            colour, title = parameter(element, "colour"), html.escape(parameter(element, "title"))
            html_text = f'<span class="lozenge {colour}">{title}</span>'
        elif name == "code":
            html_text = (
                f'<pre class="code">{html.escape(element.findtext(f"{AC}plain-text-body") or "")}</pre>'
            )
        elif name == "expand":
            title = html.escape(parameter(element, "title"))
            html_text = f"<details open><summary>{title}</summary>{inner}</details>"
        elif name in ("warning", "note", "info"):
            title = parameter(element, "title")
            html_text = f'<div class="panel {name}">' + (
                f"<strong>{html.escape(title)}</strong>" if title else ""
            )
            html_text += inner + "</div>"
        else:
            raise AssertionError(f"a macro the page should not use: {name}")
        return html_text + html.escape(element.tail or "")
    if element.tag == f"{AC}image":
        attachment = element.find(f"{RI}attachment")
        filename = attachment.get(f"{RI}filename") if attachment is not None else ""
        return f'<img alt="attachment {html.escape(filename or "")}">' + html.escape(element.tail or "")
    attributes = "".join(f' {key}="{html.escape(value)}"' for key, value in element.attrib.items())
    children = "".join(to_html(child) for child in element)
    text = html.escape(element.text or "")
    if element.tag == "br":
        return "<br>" + html.escape(element.tail or "")
    return f"<{element.tag}{attributes}>{text}{children}</{element.tag}>" + html.escape(element.tail or "")


def page_html(title: str, storage: str) -> str:
    root = ET.fromstring(f"<page {NAMESPACES}>{storage}</page>")
    body = html.escape(root.text or "") + "".join(to_html(child) for child in root)
    # The title is Confluence's, above the body; the script writes what people would see scroll.
    probe = (
        "<script>window.addEventListener('load', () => { const d = document.createElement('div');"
        " d.id = 'probe'; d.dataset.overflow = String(document.documentElement.scrollWidth > innerWidth);"
        " document.body.appendChild(d); });</script>"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><style>{STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}{probe}</body></html>"
    )


def outage_report() -> Any:
    """The scenario day with what a real page carries: a stack trace, workloads, a link, a change."""
    incidents = scenario_incidents()
    for incident in incidents:
        if incident.problem_id == DB:
            incident.samples = [
                "psycopg2.OperationalError: connection pool exhausted\n"
                "Traceback (most recent call last):\n"
                '  File "/app/etl/load.py", line 42, in load\n'
                "    conn = pool.getconn()\n"
                '  File "/usr/lib/python3/psycopg2/pool.py", line 98, in getconn\n'
                "    raise PoolError('connection pool exhausted')"
            ]
    report = scenario_report(incidents=incidents)
    problem = report.problems[0]
    problem.kibana_url = "https://kibana.example.com/app/discover#/?_a=(query:(language:kuery,query:'x'))"
    problem.change = "first seen 4 min after Deployment/batch-a/etl rolled out 1.39.3"
    problem.workload_stats = [
        WorkloadStats("Deployment/batch-a/etl", 15, DAY + timedelta(hours=3), DAY + timedelta(hours=4)),
        WorkloadStats(
            "Deployment/cards/api", 25, DAY + timedelta(hours=3, minutes=2), DAY + timedelta(hours=5)
        ),
    ]
    return report


def test_the_daily_page_renders_in_chromium_with_its_macros_and_fits_the_window(tmp_path: Path) -> None:
    report = outage_report()
    page = tmp_path / "daily.html"
    page.write_text(page_html(page_title(report), confluence_daily_page(report, chart_filename="trend.png")))
    dom = run_chromium(page.as_uri(), tmp_path, "--dump-dom")
    assert 'data-overflow="false"' in dom, "the page is wider than a 1400 px window: people would scroll"
    assert dom.count('class="lozenge') >= 8 and '<pre class="code">' in dom and "<details open" in dom
    png = screenshot(page, tmp_path, "daily-page")
    from PIL import Image

    with Image.open(png) as image:
        assert image.size == (1400, 2000)
        assert len(image.convert("L").getcolors(maxcolors=1 << 16) or []) > 10  # not a blank page


def test_a_failed_run_opens_its_page_with_the_warning_panel(tmp_path: Path) -> None:
    report = scenario_report(
        incidents=[],
        detection=Detection([], []),
        chains=[],
        verdict=Verdict("failed", ("index unreachable",)),
    )
    page = tmp_path / "failed.html"
    page.write_text(page_html(page_title(report), confluence_daily_page(report, chart_filename=None)))
    dom = run_chromium(page.as_uri(), tmp_path, "--dump-dom")
    assert dom.index('class="panel warning"') < dom.index("<h2>Executive summary</h2>")
    assert "<th>Problem</th>" not in dom  # no table of nothing
    for what in ("problems", "peaks", "chains"):  # and no section that says there is nothing
        assert f"<p>No {what}.</p>" not in dom
        assert f"<p>No {what} can be reported: the analysis failed (see above).</p>" in dom
    screenshot(page, tmp_path, "failed-page")


# --- Teams cards in Microsoft's renderer -------------------------------------------------------


def every_card() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every kind of card the pipeline sends, each in the shape it has on a busy and on a bad day."""
    report = outage_report()
    yield "summary", teams_summary_card(report, page_url="https://confluence.example.com/pages/1")
    empty = scenario_report(incidents=[], detection=Detection([], []), chains=[])
    yield "summary-empty", teams_summary_card(empty, page_url=None)
    failed = scenario_report(verdict=Verdict("failed", ("index unreachable",)))
    yield "summary-failed", teams_summary_card(failed, page_url=None)
    findings = [
        Finding("spike", DB, DAY, "critical", "218 events; none in the 7-day baseline", ("batch-a",)),
        Finding("new", "NETWORK:payments:timeout", DAY, "critical", "first seen", ("payments",)),
    ]
    yield "alert", teams_alert_card(findings, report)
    kibana = Kibana("https://kibana.example.com", "view-1")
    yield "alert-with-links", teams_alert_card(findings, report, kibana=kibana)


CARD_PAGE = """<!doctype html><html><head><meta charset="utf-8"><script src="{renderer}"></script>
<style>body {{ font-family: "Segoe UI", "DejaVu Sans", sans-serif; background: #f5f5f5; }}
section {{ width: 640px; margin: 16px; background: white; border: 1px solid #ddd; }}</style></head>
<body><ul id="events"></ul><script>
const cards = {cards};
const events = document.getElementById("events");
function report(name, phase, message) {{
  const item = document.createElement("li");
  item.className = "event";
  item.textContent = name + " [" + phase + "] " + message;
  events.appendChild(item);
}}
for (const [name, message] of cards) {{
  const content = message.attachments[0].content;
  const card = new AdaptiveCards.AdaptiveCard();
  const context = new AdaptiveCards.SerializationContext();
  card.parse(content, context);
  for (let i = 0; i < context.eventCount; i++) {{
    const event = context.getEventAt(i);
    report(name, "parse", AdaptiveCards.ValidationEvent[event.event] + ": " + event.message);
  }}
  for (const event of card.validateProperties().validationEvents) {{
    report(name, "validate", AdaptiveCards.ValidationEvent[event.event] + ": " + event.message);
  }}
  const section = document.createElement("section");
  section.id = name;
  section.appendChild(card.render());
  document.body.appendChild(section);
}}
document.body.dataset.rendered = String(document.querySelectorAll("section .ac-adaptiveCard").length);
</script></body></html>"""


def test_every_teams_card_parses_and_renders_in_the_adaptive_cards_renderer(tmp_path: Path) -> None:
    if not RENDERER.exists():
        pytest.skip("the Adaptive Cards renderer is not installed: npm ci in tests/cards")
    # A card the renderer must complain about shows that its complaints reach the test.
    broken = teams_summary_card(scenario_report(), page_url=None)
    broken["attachments"][0]["content"]["body"].append({"type": "TextBox", "text": "no such element"})
    cards = [*every_card(), ("broken-on-purpose", broken)]
    page = tmp_path / "cards.html"
    page.write_text(
        CARD_PAGE.format(renderer=RENDERER.as_uri(), cards=json.dumps(cards).replace("</", "<\\/")),
        encoding="utf-8",
    )
    dom = run_chromium(page.as_uri(), tmp_path, "--dump-dom")
    assert f'data-rendered="{len(cards)}"' in dom, dom[-2000:]
    events = [
        html.unescape(line.split(">", 1)[1].split("</li>")[0]) for line in dom.split('<li class="event"')[1:]
    ]
    assert events and all(event.startswith("broken-on-purpose ") for event in events), events
    screenshot(page, tmp_path, "teams-cards")
