"""Late data: logs that reach Elasticsearch after their window was analysed.

The policy (docs/reliability.md): the regular phase analyses a window once, INGEST_LAG_MINUTES after
it ends, and never again; the daily backfill re-analyses the whole previous day and replaces its
windows, so what arrived late is counted there, once. Needs Elasticsearch.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from core.store import Store

from .conftest import FIGURES, IndexDocuments
from .harness import run_cli, sqlite_place

pytestmark = [pytest.mark.elasticsearch]
WINDOW_START = datetime(2026, 2, 9, 10, 0, tzinfo=UTC)


def document(ts: datetime, n: int) -> dict[str, Any]:
    return {
        "@timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "message": f"Payment pay_{n:06d} declined: card 4111 1111 1111 1111 over limit (see example.com)",
        "log": {"level": "error"},
        "error": {"type": "com.example.payments.PaymentDeclinedException"},
        "kubernetes": {
            "namespace": "payments",
            "pod": {"name": "payments-gateway-6d9f8b7c5d-x2x4z"},
            "container": {"name": "payments-gateway"},
            "labels": {"app_kubernetes_io/name": "payments-gateway", "pod-template-hash": "6d9f8b7c5d"},
        },
    }


def window_count(url: str, start: datetime) -> int:
    with Store.from_url(url, migrate=False) as store:
        return sum(i.count for i in store.incidents_between(start, start + timedelta(minutes=15)))


def test_late_logs_are_not_counted_twice_and_the_backfill_counts_them_once(
    es_url: str, es_client: Elasticsearch, index_documents: IndexDocuments, tmp_path: Path
) -> None:
    on_time = [document(WINDOW_START + timedelta(seconds=20 * n), n) for n in range(30)]
    index = index_documents(on_time)
    place = sqlite_place(tmp_path)
    # The index holds only this test's documents: the windows before them have no logs, and that is
    # no failure here (SOURCE_MIN_DOCUMENTS=0: a source where no logs is a quiet window).
    source = {"ES_URL": es_url, "ES_INDEX_PATTERN": index}
    env = place.env(source, BASELINE_DAYS="0", INGEST_LAG_MINUTES="5", SOURCE_MIN_DOCUMENTS="0")

    def regular(now: str) -> None:
        done = run_cli(["regular-phase", "--window", "15", "--now", now], env, place.work)
        assert done.exit_code == 0, done.output

    regular("2026-02-09T10:14:00")  # 10:00–10:15 is not over + 5 minutes yet: nothing analysed
    assert window_count(place.database_url, WINDOW_START) == 0
    regular("2026-02-09T10:21:00")  # now it is
    assert window_count(place.database_url, WINDOW_START) == 30

    late = [document(WINDOW_START + timedelta(minutes=7, seconds=n), 100 + n) for n in range(12)]
    for doc in late:
        es_client.index(index=index, document=doc)
    es_client.indices.refresh(index=index)
    FIGURES["late documents"] += len(late)

    regular("2026-02-09T10:36:00")  # the next window; the analysed one is not re-read
    assert window_count(place.database_url, WINDOW_START) == 30
    assert window_count(place.database_url, WINDOW_START + timedelta(minutes=15)) == 0

    for _ in range(2):  # the morning backfill counts the late logs once, however often it runs
        done = run_cli(
            ["backfill", "--days", "1", "--output", str(place.reports), "--now", "2026-02-10T09:15:00"],
            env,
            place.work,
        )
        assert done.exit_code == 0, done.output
        assert window_count(place.database_url, WINDOW_START) == 30 + len(late)
