"""Tests for the shared delivery path: the retry policy (exact spacing with a fake clock), the outbox
(recorded before sending, delivered by a later run, superseded, expired, crash recovery) and the
alert throttle."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from test_publish import card_texts

from core.model import WINDOW, Finding
from core.publish import DeliveryResult, Destinations, Message, Outbox, RetryPolicy, deliver_pending
from core.publish.delivery import retry_after_seconds
from core.publish.publisher import alert_messages
from core.store import Store

NOW = datetime(2026, 2, 10, 9, 15, tzinfo=UTC)
DB = "DATABASE:batch_processing:connection_pool"
AUTH = "AUTH:card_opening:access_denied"


@dataclass
class FakeTime:
    """A clock that only moves when the policy sleeps: spacing is asserted exactly, nothing really waits."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def policy(time: FakeTime, **overrides: float) -> RetryPolicy:
    settings = {
        "max_attempts": 5,
        "max_seconds": 120.0,
        "initial_s": 1.0,
        "max_backoff_s": 30.0,
        "jitter_s": 0.0,
    }
    return RetryPolicy(**(settings | overrides), sleep=time.sleep, clock=time.clock)  # type: ignore[arg-type]


TRANSIENT = DeliveryResult(delivered=False, retry=True, error="HTTP 503")
FINAL = DeliveryResult(delivered=False, retry=False, error="HTTP 401 (check CONFLUENCE_PASSWORD)")
OK = DeliveryResult(delivered=True, location="somewhere")


def answers(*results: DeliveryResult):
    queue = list(results)
    calls: list[int] = []

    def send() -> DeliveryResult:
        calls.append(1)
        return queue.pop(0) if queue else OK

    return send, calls


# --- the retry policy ----------------------------------------------------------------------------


def test_transient_failures_are_retried_with_exponential_spacing() -> None:
    time = FakeTime()
    send, calls = answers(TRANSIENT, TRANSIENT, TRANSIENT)
    outcome = policy(time).run(send)
    assert outcome.result == OK
    assert (outcome.attempts, len(calls)) == (4, 4)
    assert time.sleeps == [1.0, 2.0, 4.0]


def test_attempts_are_bounded() -> None:
    time = FakeTime()
    send, calls = answers(*[TRANSIENT] * 10)
    outcome = policy(time).run(send)
    assert outcome.result == TRANSIENT and len(calls) == 5
    assert time.sleeps == [1.0, 2.0, 4.0, 8.0]


def test_total_time_is_bounded_before_a_wait_starts() -> None:
    time = FakeTime()
    send, calls = answers(*[TRANSIENT] * 10)
    outcome = policy(time, max_seconds=10.0).run(send)
    # 1 + 2 + 4 = 7 s waited; the next wait (8 s) would end at 15 s, past the 10 s budget
    assert time.sleeps == [1.0, 2.0, 4.0] and len(calls) == 4
    assert not outcome.result.delivered


def test_backoff_is_capped() -> None:
    time = FakeTime()
    send, _ = answers(*[TRANSIENT] * 10)
    policy(time, max_attempts=7, max_backoff_s=5.0, max_seconds=1000.0).run(send)
    assert time.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_retry_after_is_honoured_when_longer_than_the_backoff() -> None:
    time = FakeTime()
    throttled = DeliveryResult(delivered=False, retry=True, retry_after_s=7.0, error="HTTP 429")
    send, _ = answers(throttled, TRANSIENT)
    assert policy(time).run(send).result == OK
    assert time.sleeps == [7.0, 2.0]


def test_a_retry_after_beyond_the_budget_leaves_it_to_the_next_run() -> None:
    time = FakeTime()
    send, calls = answers(DeliveryResult(delivered=False, retry=True, retry_after_s=3600.0, error="HTTP 429"))
    outcome = policy(time).run(send)
    assert len(calls) == 1 and time.sleeps == []
    assert outcome.result.error == "HTTP 429"


def test_a_final_failure_is_not_retried() -> None:
    time = FakeTime()
    send, calls = answers(FINAL)
    assert policy(time).run(send).result == FINAL
    assert len(calls) == 1 and time.sleeps == []


def test_jitter_stays_within_its_bound() -> None:
    time = FakeTime()
    send, _ = answers(*[TRANSIENT] * 4)
    policy(time, jitter_s=0.5).run(send)
    for base, slept in zip([1.0, 2.0, 4.0, 8.0], time.sleeps, strict=True):
        assert base <= slept <= base + 0.5


def test_retry_after_header_values() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 <= (retry_after_seconds(format_datetime(later, usegmt=True)) or 0) <= 30


# --- the outbox ----------------------------------------------------------------------------------


@dataclass
class ScriptedChannel:
    """A channel answering from a list; `crash_after_send` simulates the process dying after the send."""

    name: str
    idempotent: bool
    results: list[DeliveryResult] = field(default_factory=list)
    sent: list[Message] = field(default_factory=list)
    crash_after_send: bool = False

    def send(self, message: Message) -> DeliveryResult:
        self.sent.append(message)
        if self.crash_after_send:
            self.crash_after_send = False
            raise KeyboardInterrupt("killed between send and record")
        return self.results.pop(0) if self.results else DeliveryResult(delivered=True, location=self.name)


@pytest.fixture
def outbox() -> Outbox:
    return Outbox(Store.from_url("sqlite://").engine)


def page(body: str, target: str = "123") -> Message:
    return Message("confluence", "confluence_daily", body, "xhtml", target=target)


def card(text: str, kind: str = "teams_summary") -> Message:
    return Message("teams", kind, f'{{"text": "{text}"}}', "json", expires_after=timedelta(hours=24))


def test_a_message_is_recorded_before_it_is_sent_and_marked_when_delivered(outbox: Outbox) -> None:
    seen_status: list[str] = []
    channel = ScriptedChannel("teams", idempotent=False)
    original_send = channel.send

    def send(message: Message) -> DeliveryResult:
        seen_status.append(outbox.items()[0].status)  # what a crash at this moment would leave behind
        return original_send(message)

    channel.send = send  # type: ignore[method-assign]
    outbox.add(card("hello"), NOW)
    deliveries, _ = deliver_pending(outbox, {"teams": channel}, policy(FakeTime()), NOW)
    assert seen_status == ["sending"]
    assert [d.attempts.result.delivered for d in deliveries] == [True]
    assert [(i.status, i.attempts) for i in outbox.items()] == [("delivered", 1)]
    assert outbox.due(["teams"]) == []


def test_a_failed_delivery_is_delivered_by_the_next_run(outbox: Outbox) -> None:
    channel = ScriptedChannel("confluence", idempotent=True, results=[FINAL])
    outbox.add(page("<p>day</p>"), NOW)
    deliver_pending(outbox, {"confluence": channel}, policy(FakeTime()), NOW)
    (item,) = outbox.items()
    assert (item.status, item.last_error) == ("pending", FINAL.error)
    deliver_pending(outbox, {"confluence": channel}, policy(FakeTime()), NOW + timedelta(minutes=15))
    assert [m.body for m in channel.sent] == ["<p>day</p>", "<p>day</p>"]
    assert [i.status for i in outbox.items()] == ["delivered"]


def test_a_newer_page_update_supersedes_a_pending_older_one(outbox: Outbox) -> None:
    outbox.add(page("<p>monday</p>"), NOW)
    outbox.add(page("<p>other page</p>", target="456"), NOW)
    outbox.add(page("<p>tuesday</p>"), NOW + timedelta(days=1))
    channel = ScriptedChannel("confluence", idempotent=True)
    deliver_pending(outbox, {"confluence": channel}, policy(FakeTime()), NOW + timedelta(days=1))
    assert [m.body for m in channel.sent] == ["<p>other page</p>", "<p>tuesday</p>"]
    assert [i.status for i in outbox.items()] == ["superseded", "delivered", "delivered"]


def test_messages_are_delivered_in_the_order_they_were_made(outbox: Outbox) -> None:
    for text in ("first", "second", "third"):
        outbox.add(card(text), NOW)  # same timestamp: the order still holds
    channel = ScriptedChannel("teams", idempotent=False)
    deliver_pending(outbox, {"teams": channel}, policy(FakeTime()), NOW)
    assert [m.body for m in channel.sent] == ['{"text": "first"}', '{"text": "second"}', '{"text": "third"}']


def test_a_crash_between_send_and_record_never_sends_a_chat_message_twice(outbox: Outbox) -> None:
    teams = ScriptedChannel("teams", idempotent=False, crash_after_send=True)
    confluence = ScriptedChannel("confluence", idempotent=True)
    outbox.add(card("summary"), NOW)
    with pytest.raises(KeyboardInterrupt):
        deliver_pending(outbox, {"teams": teams}, policy(FakeTime()), NOW)
    confluence.crash_after_send = True
    outbox.add(page("<p>day</p>"), NOW)
    with pytest.raises(KeyboardInterrupt):
        deliver_pending(outbox, {"confluence": confluence}, policy(FakeTime()), NOW)
    assert [i.status for i in outbox.items()] == ["sending", "sending"]

    channels = {"teams": teams, "confluence": confluence}
    # A run soon after (the other phase, still inside the lease) leaves both alone: they may be in flight.
    deliver_pending(outbox, channels, policy(FakeTime()), NOW + timedelta(minutes=1))
    assert [i.status for i in outbox.items()] == ["sending", "sending"]
    # Past the lease the sender is known dead: the page is sent again, the chat message never.
    _, unconfirmed = deliver_pending(outbox, channels, policy(FakeTime()), NOW + timedelta(minutes=15))
    assert len(teams.sent) == 1 and len(confluence.sent) == 2
    assert [i.message.kind for i in unconfirmed] == ["teams_summary"]
    assert [i.status for i in outbox.items()] == ["unconfirmed", "delivered"]


def test_only_one_run_can_claim_an_item(outbox: Outbox) -> None:
    item_id = outbox.add(card("x"), NOW)
    assert outbox.claim(item_id, NOW) is not None
    assert outbox.claim(item_id, NOW) is None


def test_a_stale_teams_message_expires_instead_of_arriving_days_late(outbox: Outbox) -> None:
    outbox.add(card("yesterday"), NOW)
    channel = ScriptedChannel("teams", idempotent=False)
    deliver_pending(outbox, {"teams": channel}, policy(FakeTime()), NOW + timedelta(hours=25))
    assert channel.sent == [] and [i.status for i in outbox.items()] == ["expired"]


def test_attachments_survive_the_outbox(outbox: Outbox) -> None:
    from core.publish import Attachment

    message = Message(
        "confluence",
        "confluence_daily",
        "<p/>",
        "xhtml",
        target="1",
        attachments=(Attachment("trend.png", b"\x89PNG\x00\xff", "image/png"),),
    )
    outbox.add(message, NOW)
    assert outbox.due(["confluence"])[0].message == message


# --- alert throttling ----------------------------------------------------------------------------


def finding(
    kind: str,
    problem: str = DB,
    severity: str = "critical",
    namespaces: tuple[str, ...] = ("core-db",),
    window: datetime = NOW,
) -> Finding:
    return Finding(
        kind,
        problem,
        window,
        severity,
        f"{kind} of {problem}",
        namespaces,
        observed=218.0,
        baseline=0.0,
        baseline_of="the 7-day baseline",
        first_seen=window,
        origin=f"StatefulSet/{namespaces[0]}/postgres",
        workloads=tuple(f"StatefulSet/{ns}/postgres" for ns in namespaces),
    )


def headlines(messages) -> list[str]:
    return [
        text
        for m in messages
        for text in card_texts(json.loads(m.body)["attachments"][0]["content"])
        if text.split(" ", 1)[0] in ("CRITICAL", "HIGH", "ESCALATED", "RESOLVED", "STILL", "UPDATED")
    ]


def alert_windows(destinations: Destinations, outbox: Outbox) -> list[list[str]]:
    """Five regular-phase runs over consecutive windows: the outage starts (a problem's and its
    namespace's spike, new + spike), spreads to a second namespace, goes on, then stops; each run's
    card headlines, with each run's messages logged as the publisher logs them."""
    runs = [
        [finding("spike"), finding("new"), finding("spike", "namespace:core-db")],
        [finding("spike", namespaces=("core-db", "payments"), window=NOW + WINDOW)],
        [finding("spike", window=NOW + 2 * WINDOW)],
        [],
        [],
    ]
    shown = []
    for n, findings in enumerate(runs):
        now = NOW + (n + 1) * WINDOW + timedelta(minutes=5)
        plan = alert_messages(findings, destinations, outbox, now, through=NOW + (n + 1) * WINDOW)
        status = "pending" if destinations.live() else "filed"
        for message in plan.messages:
            outbox.add(message, now, status=status)
        if plan.noted:
            outbox.add(plan.noted, now, status="held")
        shown.append(headlines(plan.messages))
    return shown


def test_one_incident_starts_escalates_and_resolves_through_the_outbox(outbox: Outbox) -> None:
    destinations = Destinations(teams=ScriptedChannel("teams", idempotent=False), alert_resolve_windows=2)
    started, escalated, held, quiet, resolved = alert_windows(destinations, outbox)
    assert started == [
        f"CRITICAL {DB} (new problem, spike): started 2026-02-10T09:15:00Z in StatefulSet/core-db/postgres; "
        "affects 1 namespace (core-db), 1 workload; 218 events; none in the 7-day baseline"
    ]
    assert len(escalated) == 1 and escalated[0].startswith(f"ESCALATED CRITICAL {DB} (new problem, spike)")
    assert "affects 2 namespaces (core-db, payments), 2 workloads" in escalated[0]
    assert held == [] and quiet == []
    assert len(resolved) == 1 and resolved[0].startswith(f"RESOLVED CRITICAL {DB}")


def test_the_file_copy_is_throttled_exactly_as_teams(outbox: Outbox) -> None:
    with_teams = alert_windows(
        Destinations(teams=ScriptedChannel("teams", idempotent=False), alert_resolve_windows=2), outbox
    )
    without = alert_windows(Destinations(alert_resolve_windows=2), Outbox(Store.from_url("sqlite://").engine))
    assert without == with_teams
    assert [len(run) for run in without] == [1, 1, 0, 0, 1]


def test_resolution_messages_can_be_turned_off(outbox: Outbox) -> None:
    destinations = Destinations(alert_resolve_windows=2, alert_send_resolved=False)
    assert [len(run) for run in alert_windows(destinations, outbox)] == [1, 1, 0, 0, 0]


def test_an_incident_is_reminded_after_the_repeat_interval(outbox: Outbox) -> None:
    destinations = Destinations(alert_repeat=timedelta(minutes=30))
    for n in range(4):
        now = NOW + (n + 1) * WINDOW
        plan = alert_messages([finding("spike", window=NOW + n * WINDOW)], destinations, outbox, now)
        for message in plan.messages:
            outbox.add(message, now, status="filed")
        if plan.noted:
            outbox.add(plan.noted, now, status="held")
        assert len(plan.messages) == (1 if n in (0, 2) else 0), n
        if n == 2:
            assert headlines(plan.messages)[0].startswith(f"STILL ACTIVE CRITICAL {DB}")


def test_a_dry_run_without_log_shows_every_incident_as_new() -> None:
    plan = alert_messages(
        [finding("spike"), finding("spike", "namespace:core-db")], Destinations(), None, NOW
    )
    assert len(headlines(plan.messages)) == 1 and plan.noted is None
