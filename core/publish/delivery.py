"""What every channel shares: the message, the channel interface, how an HTTP failure is classified, and
the one retry policy (tenacity) that owns backoff for all of them.

A channel never retries by itself: `send` makes one attempt and says in its `DeliveryResult` whether
a failure is worth another (`retry`) and how long the server asked to wait (`retry_after_s`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Protocol

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

if TYPE_CHECKING:
    import requests


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that goes with a page (the trend chart, the day's CSV)."""

    filename: str
    content: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class Message:
    """One publication, already rendered and redacted: what goes to which channel, and where."""

    channel: str  # confluence | teams
    # confluence_daily | confluence_known_errors | confluence_known_peaks | teams_summary | teams_alert
    kind: str
    body: str  # XHTML for Confluence, JSON for Teams
    format: str  # xhtml | json
    # What the message updates: the Confluence page id, or the report a Teams summary is about. A newer
    # message to the same target replaces a pending older one, so a republish never sends both.
    target: str | None = None
    attachments: tuple[Attachment, ...] = ()
    subject: Mapping[str, Any] = field(default_factory=dict)  # what it is about (alerted problems)
    expires_after: timedelta | None = None  # not worth delivering later than this after it was made
    title: str | None = None  # a Confluence page's new title; None keeps the page's own


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """How one send went. The channel classifies its failures; the retry policy acts on `retry`."""

    delivered: bool
    location: str | None = None  # where it landed: a file, a page URL
    retry: bool = False  # transient failure: worth sending again
    retry_after_s: float | None = None  # the server's Retry-After, if it gave one
    error: str | None = None  # one line for people; never a secret (no webhook URL, no password)


class Channel(Protocol):
    """A place publications go. `send` makes one attempt and reports a failure instead of raising it."""

    name: str
    idempotent: bool  # True: sending the same message twice is harmless (a page PUT), False: chat

    def send(self, message: Message) -> DeliveryResult: ...


RETRIED_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
"""HTTP statuses worth another attempt: timeouts, throttling and server trouble. Other 4xx are final."""


def http_failure(
    status: int, headers: Mapping[str, str], hints: Mapping[int, str], what: str
) -> DeliveryResult:
    """A failed HTTP answer as a `DeliveryResult`: retried or final, with a hint naming what to check."""
    reason = hints.get(status, "")
    error = f"{what}: HTTP {status}" + (f" ({reason})" if reason else "")
    retry = status in RETRIED_STATUS or status >= 500
    return DeliveryResult(
        delivered=False,
        retry=retry,
        retry_after_s=retry_after_seconds(headers.get("Retry-After")),
        error=error,
    )


def connection_failure(exc: requests.RequestException, what: str) -> DeliveryResult:
    """A request that got no answer. Its message is not used: it names the URL, and a webhook URL is a
    secret."""
    import requests  # already imported by the channel that raised `exc`; not by every run

    if isinstance(exc, requests.Timeout):
        return DeliveryResult(delivered=False, retry=True, error=f"{what}: timed out")
    if isinstance(exc, requests.ConnectionError):
        return DeliveryResult(delivered=False, retry=True, error=f"{what}: connection failed")
    return DeliveryResult(delivered=False, error=f"{what}: request failed ({type(exc).__name__})")


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) in seconds; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _out_of_time(stop_base):
    """Stop when the next sleep would end past the time budget, measured with the policy's clock."""

    def __init__(self, budget_s: float, clock: Callable[[], float], started: float) -> None:
        self.budget_s, self.clock, self.started = budget_s, clock, started

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.clock() - self.started + retry_state.upcoming_sleep > self.budget_s


class _honouring_retry_after(wait_base):
    """The backoff, or longer when the server's Retry-After asks for more."""

    def __init__(self, backoff: wait_base) -> None:
        self.backoff = backoff

    def __call__(self, retry_state: RetryCallState) -> float:
        asked = retry_state.outcome.result().retry_after_s if retry_state.outcome else None
        return max(self.backoff(retry_state), asked or 0.0)


@dataclass(frozen=True, slots=True)
class Attempts:
    """The end of one delivery: the last result and how many attempts it took."""

    result: DeliveryResult
    attempts: int


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for transient failures, bounded in attempts AND total time.

    Waits are `initial_s × 2^(n−1)` capped at `max_backoff_s`, plus up to `jitter_s` at random, and at
    least what a Retry-After asked for. A wait that would end past `max_seconds` is not started: the
    delivery is left to the next run instead. `sleep` and `clock` are injectable so tests are exact.
    """

    max_attempts: int = 5
    max_seconds: float = 120.0
    initial_s: float = 1.0
    max_backoff_s: float = 30.0
    jitter_s: float = 1.0
    timeout_s: float = 30.0  # per request, used by the channels
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    @property
    def lease(self) -> timedelta:
        """How long a delivery can possibly take: an item "sending" for longer was abandoned by a crash."""
        return timedelta(seconds=self.max_seconds + self.timeout_s * 2 + 60)

    def run(self, send: Callable[[], DeliveryResult]) -> Attempts:
        """Call `send` until it delivers, fails for good, or the attempts or the time run out."""
        backoff = wait_exponential(multiplier=self.initial_s, exp_base=2, max=self.max_backoff_s)
        retrying = Retrying(
            sleep=self.sleep,
            stop=stop_after_attempt(self.max_attempts)
            | _out_of_time(self.max_seconds, self.clock, self.clock()),
            wait=_honouring_retry_after(backoff + wait_random(0, self.jitter_s)),
            retry=retry_if_result(lambda result: not result.delivered and result.retry),
            retry_error_callback=lambda state: state.outcome.result(),
        )
        result = retrying(send)
        statistics = retrying.statistics
        return Attempts(result, statistics.get("attempt_number", 1))
