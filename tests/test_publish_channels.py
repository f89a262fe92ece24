"""The Confluence and Teams channels against local servers that answer like the real endpoints: the
exact requests and payloads, versions and 409, attachments, 401/404/429/500/timeouts, the size limit,
no duplicate after a crash, and a corpus of planted secrets that must never reach any server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Literal

import pytest
from fake_services import FakeConfluence, FakeTeams, running
from test_publish import card_texts, parse, report_with_text, structure
from test_publish_delivery import NOW, FakeTime, policy
from test_report import DAY, DB, scenario_report

from core.model import Finding, Verdict
from core.publish import (
    ConfluenceChannel,
    Destinations,
    FileChannel,
    Message,
    Outbox,
    TeamsChannel,
    confluence_daily_page,
    deliver_pending,
    payload_size,
    publish,
    report_messages,
    teams_alert_card,
    teams_summary_card,
)
from core.publish.publisher import alert_messages
from core.redact import Redactor
from core.registry import Registry
from core.report.teams import payload_text
from core.store import Store

WEBHOOK_SECRET = "sig=FakeSignature0123456789"
PAGE = "1001"

SECRETS = {
    "card": "4111 1111 1111 1111",
    "iban": "GB82WEST12345698765432",
    "email": "jane@example.com",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJmYWtlLXVzZXIifQ.ZmFrZS1zaWduYXR1cmU",
    "password": "password=hunter2",
    "url": "https://user:fake-pass@example.com/login",
}
LEAKS = ("4111 1111 1111 1111", "4111111111111111", "GB82WEST12345698765432", "jane@example.com")
LEAKS += ("eyJhbGciOiJIUzI1NiJ9", "hunter2", "fake-pass")


@pytest.fixture
def confluence() -> Iterator[FakeConfluence]:
    fake = FakeConfluence()
    fake.add_page(PAGE, "Daily problem report", version=7)
    with running(fake) as served:
        yield served


@pytest.fixture
def teams() -> Iterator[FakeTeams]:
    with running(FakeTeams()) as served:
        yield served


def confluence_channel(fake: FakeConfluence, password: str = "fake-password") -> ConfluenceChannel:
    return ConfluenceChannel.connect(fake.url, "analyzer", password, timeout_s=1)


def teams_channel(
    fake: FakeTeams, kind: Literal["workflows", "connector"] = "workflows", timeout_s: float = 2.0
) -> TeamsChannel:
    return TeamsChannel(f"{fake.url}/workflows/abc/triggers/manual/run?{WEBHOOK_SECRET}", kind, timeout_s)


def daily(body: str = "<p>today</p>") -> Message:
    return Message("confluence", "confluence_daily", body, "xhtml", target=PAGE)


# --- Confluence ------------------------------------------------------------------------------------


def test_a_page_update_reads_the_version_and_writes_the_next_one(confluence: FakeConfluence) -> None:
    time = FakeTime()
    body = confluence_daily_page(
        report_with_text('<script>alert("x")</script> ]]> & macro'), chart_filename="trend.png"
    )
    outcome = policy(time).run(lambda: confluence_channel(confluence).send(daily(body)))
    assert outcome.result.delivered and outcome.attempts == 1
    get, put = confluence.requests
    assert (get.method, get.path, get.query) == (
        "GET",
        f"/rest/api/content/{PAGE}",
        {"expand": ["body.storage,version"]},
    )
    assert put.json() == {
        "version": {"number": 8},
        "title": "Daily problem report",
        "type": "page",
        "body": {"storage": {"value": body, "representation": "storage"}},
    }
    stored = confluence.pages[PAGE]
    assert stored.version == 8 and stored.body == body
    # the hostile log text arrived as escaped text: the page's structure is the benign one
    assert structure(stored.body) == structure(
        confluence_daily_page(report_with_text("plain"), chart_filename="trend.png")
    )
    assert outcome.result.location == f"{confluence.url}/pages/viewpage.action?pageId={PAGE}"


def test_a_version_conflict_rereads_the_page_and_retries(confluence: FakeConfluence) -> None:
    confluence.edit_before_put.add(PAGE)  # someone saves version 8 between our read and our write
    time = FakeTime()
    outcome = policy(time).run(lambda: confluence_channel(confluence).send(daily()))
    assert outcome.result.delivered and outcome.attempts == 2
    assert [put["version"]["number"] for put in confluence.puts(PAGE)] == [8, 9]
    assert [r.method for r in confluence.requests] == ["GET", "PUT", "GET", "PUT"]
    assert confluence.pages[PAGE].version == 9 and time.sleeps == [1.0]


def test_an_unchanged_page_is_not_written_again(confluence: FakeConfluence) -> None:
    channel = confluence_channel(confluence)
    assert channel.send(daily()).delivered and channel.send(daily()).delivered
    assert [put["version"]["number"] for put in confluence.puts()] == [8]


def test_attachments_are_uploaded_with_their_content_types(confluence: FakeConfluence, tmp_path) -> None:
    report = report_with_text(f"card {SECRETS['card']} for {SECRETS['email']}")
    destinations = Destinations(confluence=confluence_channel(confluence), daily_page_id=PAGE)
    (message, *_) = report_messages(report, [], None, destinations)
    assert confluence_channel(confluence).send(message).delivered
    uploads = [r for r in confluence.requests if r.method == "POST"]
    assert [r.path for r in uploads] == [f"/rest/api/content/{PAGE}/child/attachment"] * 2
    assert all(r.headers["X-Atlassian-Token"] == "no-check" for r in uploads)
    files = confluence.attachments[PAGE]
    assert [(name, versions[0][0]) for name, versions in files.items()] == [
        ("trend.png", "image/png"),
        ("problem_report.csv", "text/csv"),
    ]
    assert files["trend.png"][0][1][:8] == b"\x89PNG\r\n\x1a\n"
    csv_text = files["problem_report.csv"][0][1].decode()
    assert csv_text.startswith("rank,id,") and "[CARD]" in csv_text and "4111" not in csv_text
    # the page shows the chart it attaches
    image = parse(confluence.pages[PAGE].body).find(
        ".//{http://atlassian.com/content}image/{http://atlassian.com/resource/identifier}attachment"
    )
    assert image.get("{http://atlassian.com/resource/identifier}filename") == "trend.png"
    # sent again: a new version of the same attachment, not a second attachment
    assert confluence_channel(confluence).send(message).delivered
    assert [len(versions) for versions in confluence.attachments[PAGE].values()] == [2, 2]


def test_wrong_credentials_are_not_retried_and_name_the_settings(confluence: FakeConfluence) -> None:
    time = FakeTime()
    outcome = policy(time).run(lambda: confluence_channel(confluence, password="wrong-fake-pw").send(daily()))
    assert outcome.attempts == 1 and time.sleeps == []
    assert outcome.result.error == (
        f"Confluence page {PAGE} (confluence_daily): "
        "HTTP 401 (check CONFLUENCE_USERNAME / CONFLUENCE_PASSWORD)"
    )


def test_a_missing_page_names_its_setting(confluence: FakeConfluence) -> None:
    message = Message("confluence", "confluence_known_peaks", "<p/>", "xhtml", target="999")
    result = confluence_channel(confluence).send(message)
    assert not result.delivered and not result.retry
    assert "page 999 not found: check CONFLUENCE_KNOWN_PEAKS_PAGE_ID" in (result.error or "")


def test_throttling_and_server_errors_are_retried_as_the_server_asks(confluence: FakeConfluence) -> None:
    confluence.fail("GET", f"/rest/api/content/{PAGE}", 429, Retry_After="3")
    confluence.fail("PUT", f"/rest/api/content/{PAGE}", 500, times=2)
    time = FakeTime()
    outcome = policy(time).run(lambda: confluence_channel(confluence).send(daily()))
    assert outcome.result.delivered and outcome.attempts == 4
    assert time.sleeps == [3.0, 2.0, 4.0]  # Retry-After 3 > backoff 1; then the backoff
    assert confluence.pages[PAGE].version == 8


def test_a_timeout_is_retried(confluence: FakeConfluence) -> None:
    confluence.hang("GET", f"/rest/api/content/{PAGE}", 1.5)
    time = FakeTime()
    channel = confluence_channel(confluence)
    first = channel.send(daily())
    assert (first.retry, first.error) == (True, f"Confluence page {PAGE} (confluence_daily): timed out")
    outcome = policy(time).run(lambda: channel.send(daily()))
    assert outcome.result.delivered and outcome.attempts == 1


# --- Teams -----------------------------------------------------------------------------------------


def alert_card() -> dict:
    return teams_alert_card([Finding("new", DB, DAY, "critical", "first seen")], None)


def alert_message(card: dict | None = None) -> Message:
    return Message("teams", "teams_alert", payload_text(card or alert_card()), "json")


def test_a_workflows_webhook_gets_the_adaptive_card_and_answers_202(teams: FakeTeams) -> None:
    card = alert_card()
    result = teams_channel(teams).send(alert_message(card))
    assert result.delivered and result.location == "Teams (202)"
    (request,) = teams.requests
    assert request.query == {"sig": ["FakeSignature0123456789"]}
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.json() == card and len(request.body) == payload_size(card)


def test_teams_throttling_and_server_errors_are_retried(teams: FakeTeams) -> None:
    teams.fail("POST", "/", 429, Retry_After="5")
    teams.fail("POST", "/", 500)
    time = FakeTime()
    outcome = policy(time).run(lambda: teams_channel(teams).send(alert_message()))
    assert outcome.result.delivered and outcome.attempts == 3
    assert time.sleeps == [5.0, 2.0]
    assert len(teams.posted()) == 3


def test_a_rejected_card_or_a_timeout_never_shows_the_webhook_secret(teams: FakeTeams) -> None:
    teams.fail("POST", "/", 404)
    time = FakeTime()
    rejected = policy(time).run(lambda: teams_channel(teams).send(alert_message()))
    assert rejected.attempts == 1 and time.sleeps == []
    assert rejected.result.error == (
        "Teams: HTTP 404 (check TEAMS_WEBHOOK_URL: the workflow or connector may have been deleted)"
    )
    teams.hang("POST", "/", 0.6)
    timed_out = teams_channel(teams, timeout_s=0.2).send(alert_message())
    assert (timed_out.retry, timed_out.error) == (True, "Teams: timed out")
    for error in (rejected.result.error, timed_out.error):
        assert "FakeSignature" not in str(error) and "127.0.0.1" not in str(error)


def test_the_classic_connector_gets_a_message_card_without_markdown() -> None:
    with running(FakeTeams(connector=True)) as fake:
        card = teams_alert_card([Finding("new", DB, DAY, "critical", "*not bold* <b>x</b>")], None)
        card["attachments"][0]["content"]["actions"] = [
            {
                "type": "Action.OpenUrl",
                "title": "Open in Confluence",
                "url": "https://confluence.example.com/p/1",
            }
        ]
        fake.fail("POST", "/", 429, Retry_After="2")
        time = FakeTime()
        outcome = policy(time).run(lambda: teams_channel(fake, kind="connector").send(alert_message(card)))
        assert outcome.result.delivered and time.sleeps == [2.0]
        posted = fake.posted()[-1]
    assert posted["title"] == posted["summary"] == "Log Analyzer alert"
    assert all(section["markdown"] is False for section in posted["sections"])
    texts = [section.get("text") for section in posted["sections"]]
    assert any(t.startswith(f"CRITICAL {DB} (new problem)") and "*not bold* <b>x</b>" in t for t in texts)
    assert posted["potentialAction"][0]["target"] == ["https://confluence.example.com/p/1"]


def test_a_failed_run_reaches_the_classic_connector_with_its_verdict_first() -> None:
    report = scenario_report(verdict=Verdict("failed", ("index logs-* matches no index",)))
    summary = Message(
        "teams", "teams_summary", payload_text(teams_summary_card(report, page_url=None)), "json"
    )
    with running(FakeTeams(connector=True)) as fake:
        assert teams_channel(fake, kind="connector").send(summary).delivered
        posted = fake.posted()[-1]
    assert posted["title"] == report.label
    assert posted["sections"][0]["text"].startswith("Analysis FAILED")
    assert "index logs-* matches no index" in posted["sections"][0]["text"]


def test_every_posted_message_stays_under_the_size_limit(teams: FakeTeams) -> None:
    findings = [Finding("spike", f"DATABASE:flow:pool{n}", DAY, "critical", "x" * 900) for n in range(200)]
    destinations = Destinations(teams=teams_channel(teams))
    (message,) = alert_messages(findings, destinations, None, NOW).messages
    assert teams_channel(teams).send(message).delivered
    (request,) = teams.requests
    assert len(request.body) <= 28_000
    assert card_texts(request.json()["attachments"][0]["content"])[-1].endswith("more, see the report.")


def test_a_crash_after_the_post_never_sends_the_teams_message_again(teams: FakeTeams, confluence) -> None:
    outbox = Outbox(Store.from_url("sqlite://").engine)
    outbox.add(alert_message(), NOW)
    outbox.add(daily(), NOW)
    real_teams, real_confluence = teams_channel(teams), confluence_channel(confluence)

    class DiesAfterSending:
        def __init__(self, channel) -> None:
            self.channel, self.name, self.idempotent = channel, channel.name, channel.idempotent

        def send(self, message: Message):
            self.channel.send(message)
            raise SystemExit("killed after the POST, before the outbox was updated")

    for name, channel in (("teams", real_teams), ("confluence", real_confluence)):
        with pytest.raises(SystemExit):
            deliver_pending(outbox, {name: DiesAfterSending(channel)}, policy(FakeTime()), NOW)
    later = NOW + timedelta(minutes=15)
    deliver_pending(outbox, {"teams": real_teams, "confluence": real_confluence}, policy(FakeTime()), later)
    assert len(teams.posted()) == 1
    assert [put["version"]["number"] for put in confluence.puts()] == [
        8
    ]  # re-sent, unchanged: no new version
    assert [i.status for i in outbox.items()] == ["unconfirmed", "delivered"]


# --- nothing sensitive leaves -------------------------------------------------------------------


def planted() -> str:
    return (
        " ".join(f"{name}: {value}" for name, value in SECRETS.items()) + " Authorization: Bearer abc.def-ghi"
    )


def test_planted_secrets_never_reach_any_server(
    confluence: FakeConfluence, teams: FakeTeams, tmp_path
) -> None:
    confluence.add_page("1002", "Known errors")
    confluence.add_page("1003", "Known peaks")
    registry = Registry(tmp_path / "registry")
    (tmp_path / "registry").mkdir()
    (tmp_path / "registry" / "problems.yaml").write_text(
        f"{DB}:\n  status: known\n  sample: {json.dumps(planted())}\n  notes: {json.dumps(planted())}\n"
    )
    (tmp_path / "registry" / "peaks.yaml").write_text(
        f"p1:\n  kind: spike\n  notes: {json.dumps(planted())}\n"
    )
    destinations = Destinations(
        confluence=confluence_channel(confluence),
        teams=teams_channel(teams),
        daily_page_id=PAGE,
        known_errors_page_id="1002",
        known_peaks_page_id="1003",
        policy=policy(FakeTime()),
    )
    redactor = Redactor()
    report = report_with_text(planted())
    messages = report_messages(report, [], registry, destinations, redactor)
    alert = alert_messages(
        [Finding("new", DB, DAY, "critical", planted())], destinations, None, NOW, redactor
    ).messages
    outbox = Outbox(Store.from_url("sqlite://").engine)
    result = publish([*messages, *alert], destinations, outbox, FileChannel(tmp_path / "out", "stamp"), NOW)
    assert result.status == {"confluence": "ok", "teams": "ok"}, result.lines
    assert [r.json()["attachments"][0]["content"]["body"][0]["text"] for r in teams.requests] == [
        "Log analysis 2026-02-09: 3 problems (1 critical, 1 new, 1 regressed)",
        "Log Analyzer alert",
    ]
    # The daily page takes the report's title; the registry pages keep theirs.
    assert {put["title"] for put in confluence.puts()} == {
        "Log analysis 2026-02-09: 3 problems (1 critical, 1 new, 1 regressed)",
        "Known errors",
        "Known peaks",
    }
    sent = b"".join(confluence.bodies() + teams.bodies())
    written = b"".join(path.read_bytes() for path in (tmp_path / "out").rglob("*.*"))
    for leak in LEAKS:
        assert leak.encode() not in sent, leak
        assert leak.encode() not in written, leak
    assert b"[CARD]" in sent and b"[EMAIL]" in sent


def test_the_summary_links_to_the_daily_page(confluence: FakeConfluence) -> None:
    destinations = Destinations(confluence=confluence_channel(confluence), daily_page_id=PAGE)
    *_, summary = report_messages(scenario_report(), [], None, destinations)
    content = json.loads(summary.body)["attachments"][0]["content"]
    assert content["actions"][0]["url"] == f"{confluence.url}/pages/viewpage.action?pageId={PAGE}"
