"""Tests for core/rekey.py and its migration: a store filled under masking rules v1 carries its
problems' history over to the ids and keys the current rules give."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from core.classify import template_error_class
from core.fingerprint import fingerprint
from core.model import WINDOW, Finding, Incident, Peak
from core.rekey import rekey
from core.store import SCHEMA_REVISION, Store, alembic_config

DAY0 = datetime(2024, 5, 1, tzinfo=UTC)
DAY5 = DAY0 + timedelta(days=5)

# Ids and keys as release 1 stored them: five words and a hash, v1 keys and templates.
ICON_V1 = "UNCLASSIFIED:cards:location_icon_should_now_be_5d1f0c2a"
ICON = "Location icon should now be in state 'Active'"
PROXY_DASHED_V1 = "UNCLASSIFIED:cards:close_sent_received_lifetime_0b7e3d11"
PROXY_DASHED = (
    "r6---sn-i3b7kn7d.googlevideo.com:443 close, 733 bytes sent, 151 bytes received, lifetime 00:12"
)
PROXY_V1 = "UNCLASSIFIED:cards:close_sent_received_lifetime_9c4a7e20"
PROXY = "proxy.example.com:5070 close, 403 bytes sent, 426 bytes received, lifetime <1 sec"
PAN_V1 = "UNCLASSIFIED:cards:pan_expired_for_customer_4e6a1b90"
PAN = "pan [CARD] expired for customer"  # as stored: redacted
GONE_V1 = "UNCLASSIFIED:cards:batch_of_merchant_rejected_77aa11bb"
GONE = "Batch 12 of merchant 'acme-1' rejected"
POOL = "DATABASE:card_servicing:connection_pool"
POOL_SAMPLE = "Connection to db-1.example.com:5432 refused"


def new_id(sample: str) -> str:
    return f"UNCLASSIFIED:cards:{template_error_class(fingerprint(sample.replace('[CARD]', '<R>')).template)}"


def incident(
    problem_id: str, sample: str, day: datetime, window: int, count: int, v1_template: str
) -> Incident:
    start = day + window * WINDOW
    category, flow, error_class = problem_id.split(":")
    return Incident(
        problem_id=problem_id,
        category=category,
        flow=flow,
        error_class=error_class,
        severity="medium",
        window_start=start,
        window_end=start + WINDOW,
        namespace="cards",
        workload_kind="Deployment",
        workload_name="card-api",
        count=count,
        first_seen=start + timedelta(minutes=1),
        last_seen=start + timedelta(minutes=14),
        samples=[sample],
        fingerprints={hashlib.blake2b(v1_template.encode(), digest_size=8).hexdigest(): v1_template},
        trace_ids=[],
        apps=["card-api"],
    )


def _day(day: datetime, *incidents: Incident, peaks: list[Peak] | None = None, alerts=()) -> tuple:
    return day, day + timedelta(days=1), list(incidents), peaks or [], None, "backfill", list(alerts)


@pytest.fixture
def v1_store(tmp_path: Path) -> Iterator[Store]:
    """A store at the schema before the re-keying migration, written as release 1 wrote it."""
    url = f"sqlite:///{tmp_path}/analyzer.db"
    with Store.from_url(url, migrate=False) as store:
        with store.engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "0003")
        store.replace_range(
            *_day(
                DAY0,
                incident(ICON_V1, ICON, DAY0, 1, 3, "Location icon should now be in state <STR>"),
                incident(GONE_V1, GONE, DAY0, 2, 2, "Batch <NUM> of merchant <STR> rejected"),
                incident(PAN_V1, PAN, DAY0, 3, 1, "pan [CARD] expired for customer"),
            )
        )
        spike = Peak("spike", "problem", PROXY_V1, DAY5, DAY5 + WINDOW, 40.0, 4.0, 10.0, PROXY_V1, "cards")
        alert = Finding("spike", PROXY_V1, DAY5, "critical", "40 events, 10x the baseline", ("cards",))
        store.replace_range(
            *_day(
                DAY5,
                incident(ICON_V1, ICON, DAY5, 0, 5, "Location icon should now be in state <STR>"),
                incident(PROXY_DASHED_V1, PROXY_DASHED, DAY5, 0, 7, "<HOST>:443 close, <SIZE> sent, …"),
                incident(PROXY_V1, PROXY, DAY5, 0, 40, "<HOST> close, <SIZE> sent, <SIZE> received, …"),
                incident(POOL, POOL_SAMPLE, DAY5, 0, 9, "Connection to <HOST> refused"),
                peaks=[spike],
                alerts=[alert],
            )
        )
        store.purge_before(DAY0 + timedelta(days=1))  # day 0 lives on in the fold only
        yield store


def test_migration_moves_each_problems_history_to_its_current_id(v1_store: Store) -> None:
    v1_store.migrate()
    with v1_store.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == SCHEMA_REVISION

    proxy = new_id(PROXY)
    assert proxy == new_id(PROXY_DASHED) == "UNCLASSIFIED:cards:close_sent_received_lifetime"
    assert new_id(ICON) == "UNCLASSIFIED:cards:location_icon_should_now_be_in_state_active"
    problems = {p.problem_id: p for p in v1_store.problems()}
    assert set(problems) == {new_id(ICON), new_id(GONE), new_id(PAN), proxy, POOL}
    # day 0 only in the fold, day 5 in incidents: the first sighting and the total carry over
    icon = problems[new_id(ICON)]
    assert (icon.first_seen, icon.total_count) == (DAY0 + WINDOW + timedelta(minutes=1), 8)
    assert problems[new_id(GONE)].total_count == 2  # no incident left at all
    # two v1 problems that are one template now are one problem, in one incident
    assert problems[proxy].total_count == 47
    incidents = v1_store.incidents_between(DAY5, DAY5 + timedelta(days=1))
    assert [(i.problem_id, i.count) for i in incidents] == sorted([(new_id(ICON), 5), (proxy, 47), (POOL, 9)])
    by_id = {i.problem_id: i for i in incidents}
    assert set(by_id[proxy].fingerprints) == {fingerprint(PROXY).key}
    assert set(by_id[POOL].fingerprints) == {fingerprint(POOL_SAMPLE).key}  # classified: id kept, key new

    assert v1_store.problem_renames() == {
        ICON_V1: new_id(ICON),
        GONE_V1: new_id(GONE),
        PAN_V1: new_id(PAN),
        PROXY_V1: proxy,
        PROXY_DASHED_V1: proxy,
    }
    [spike] = v1_store.peaks_between(DAY5, DAY5 + WINDOW)
    assert (spike.scope_id, spike.problem_id) == (proxy, proxy)
    [(_, alert)] = v1_store.pending_alerts()
    assert alert.problem_id == proxy


def test_the_redaction_marks_of_a_stored_sample_key_like_the_value_they_replaced(v1_store: Store) -> None:
    v1_store.migrate()
    live = fingerprint("pan 5500005555555559 expired for customer")
    assert new_id(PAN) == f"UNCLASSIFIED:cards:{template_error_class(live.template)}"


def test_rekeying_again_changes_nothing(v1_store: Store) -> None:
    v1_store.migrate()
    before = v1_store.snapshot()
    with v1_store.engine.begin() as conn:
        assert rekey(conn, DAY5) == {}
    after = v1_store.snapshot()
    for table, rows in before.items():
        for row, again in zip(rows, after[table], strict=True):
            assert again == row, table


def test_later_renames_move_earlier_ones_along(v1_store: Store) -> None:
    v1_store.migrate()
    with v1_store.engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO problem_renames VALUES (:old, :new, 3)"),
            {"old": new_id(ICON), "new": "UNCLASSIFIED:cards:location_icon_state"},
        )
    renames = v1_store.problem_renames()
    assert renames[ICON_V1] == renames[new_id(ICON)] == "UNCLASSIFIED:cards:location_icon_state"
