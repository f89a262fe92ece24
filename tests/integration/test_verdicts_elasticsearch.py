"""A run tells the truth against the real Elasticsearch (and PostgreSQL as the store): a node that is
unreachable, an index pattern that matches no index and a shard that fails the query each fail the
day in every output, and leave what was stored as it was."""

from __future__ import annotations

import json
import socket
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk

from core.cli import backfill_command, main
from core.store import Store

from .conftest import TEST_INDEX_PREFIX, PostgresUrls

pytestmark = pytest.mark.every_elasticsearch  # the 8 and the 9 node

DAY = date(2026, 2, 9)


def error_document(minute: int, namespace: str = "payments") -> dict[str, Any]:
    """An ECS document as Filebeat writes it (https://www.elastic.co/guide/en/beats/filebeat/current/exported-fields-kubernetes-processor.html)."""
    return {
        "@timestamp": f"2026-02-09T10:{minute:02d}:00.000Z",
        "message": f"java.net.ConnectException: Connection refused (attempt {minute})",
        "log": {"level": "error"},
        "kubernetes": {
            "namespace": namespace,
            "pod": {"name": "payments-api-7d4b9c6f5-x2x2x"},
            "container": {"name": "payments-api"},
        },
    }


def environment(
    tmp: Path, es_url: str, pattern: str, database_url: str, **extra: str
) -> dict[str, str | None]:
    return {
        "DATABASE_URL": database_url,
        "DB_HOST": None,
        "ES_URL": es_url,
        "ES_HOST": None,
        "ES_INDEX_PATTERN": pattern,
        "LOG_FILE": None,
        "REGISTRY_DIR": str(tmp / "registry"),
        "EXPORT_DIR": str(tmp / "exports"),
        "BASELINE_DAYS": "0",
        "ES_TIMEOUT_S": "5",
        "LOG_FORMAT": "json",
        "TEAMS_ENABLED": None,
        "CONFLUENCE_URL": None,
        **extra,
    }


def backfill(env: dict[str, str | None], output: Path, now: str = "2026-02-10T09:15:00") -> Result:
    args = ["--from", str(DAY), "--to", str(DAY), "--output", str(output), "--now", now]
    return CliRunner().invoke(backfill_command, args, env=env)


def first_lines(output: Path) -> dict[str, str]:
    """The newest report's first TXT line, the first element of its Confluence body, the first text of
    its Teams card, and the verdict status of its JSON."""
    txt = sorted(output.glob("problem_report_*.txt"))[-1]
    stamp = txt.name.removeprefix("problem_report_").removesuffix(".txt")
    page = (output / "publish" / f"confluence_daily_{stamp}.xhtml").read_text()
    card = json.loads((output / "publish" / f"teams_summary_{stamp}.json").read_text())
    block = card["attachments"][0]["content"]["body"][0]
    return {
        "txt": txt.read_text().splitlines()[0],
        "page": page.split("</ac:structured-macro>")[0],
        "card": block["inlines"][0]["text"] if "inlines" in block else block["text"],
        "status": json.loads(txt.with_suffix(".json").read_text())["verdict"]["status"],
    }


def assert_failed_everywhere(result: Result, output: Path, headline: str) -> None:
    assert result.exit_code == 1, result.output
    terminal = [line for line in result.output.splitlines() if not line.startswith("{")]
    assert terminal[1].startswith(f"❌ {headline}"), terminal
    assert not any(line.startswith("✅ Backfill processing finished") for line in terminal)
    seen = first_lines(output)
    assert seen["txt"].startswith(headline), seen["txt"]
    assert seen["page"].startswith('<ac:structured-macro ac:name="warning">') and headline in seen["page"]
    assert seen["card"].startswith(headline), seen["card"]
    assert seen["status"] == "failed"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_node_fails_the_day_and_keeps_the_history_and_the_last_good_report(
    es_client: Elasticsearch, es_url: str, index_documents, postgres_urls: PostgresUrls, tmp_path: Path
) -> None:
    index = index_documents([error_document(m) for m in range(30)])
    CliRunner().invoke(main, ["migrate"], env={"DATABASE_URL": postgres_urls.ddl_url, "LOG_FORMAT": "json"})
    reports = tmp_path / "reports"
    good = backfill(environment(tmp_path, es_url, index, postgres_urls.app_url), reports)
    assert good.exit_code == 0, good.output
    stored = Store.from_url(postgres_urls.app_url, migrate=False).snapshot()
    assert stored["incidents"]
    (complete,) = reports.glob("problem_report_*.json")

    port = closed_port()
    down = environment(tmp_path, f"http://127.0.0.1:{port}", index, postgres_urls.app_url)
    result = backfill(down, reports, now="2026-02-10T10:15:00")  # an hour later: a report of its own
    headline = (
        f"Analysis FAILED for {DAY}: Elasticsearch http://127.0.0.1:{port} unreachable (connection refused)"
    )
    assert_failed_everywhere(result, reports, headline)
    assert Store.from_url(postgres_urls.app_url, migrate=False).snapshot() == stored
    # The recovery path republishes the last complete report, not the failed one.
    republish = CliRunner().invoke(main, ["publish", "--output", str(reports), "--dry-run"], env=down)
    assert republish.exit_code == 0, republish.output
    assert republish.stdout.splitlines()[0].startswith(f"publishing {complete}")


def test_an_index_pattern_matching_no_index_fails_the_day(es_url: str, tmp_path: Path) -> None:
    pattern = f"nothing-here-{uuid.uuid4().hex[:8]}-*"
    result = backfill(
        environment(tmp_path, es_url, pattern, f"sqlite:///{tmp_path / 'state.db'}"), tmp_path / "r"
    )
    assert_failed_everywhere(
        result, tmp_path / "r", f"Analysis FAILED for {DAY}: index pattern {pattern} matches no index"
    )


def test_a_shard_that_fails_the_query_fails_the_day_naming_its_index(
    es_client: Elasticsearch, es_url: str, tmp_path: Path
) -> None:
    # An index that allows fewer hits per request than a page holds: its shard refuses every page of
    # the search while the other index answers. (A type the query does not expect no longer fails a
    # shard: the clauses are built for the mapped types, tests/integration/test_mappings.py.)
    prefix = f"{TEST_INDEX_PREFIX}{uuid.uuid4().hex[:8]}"
    narrow = f"{prefix}-narrow"
    es_client.indices.create(index=narrow, settings={"index.max_result_window": 1})
    try:
        documents = [{"_index": f"{prefix}-ecs", "_source": error_document(m)} for m in range(10)]
        documents.append({"_index": narrow, "_source": error_document(30)})
        bulk(es_client, documents, refresh=True)
        result = backfill(
            environment(tmp_path, es_url, f"{prefix}-*", f"sqlite:///{tmp_path / 'state.db'}"), tmp_path / "r"
        )
        assert_failed_everywhere(
            result, tmp_path / "r", f"Analysis FAILED for {DAY}: 1 of 2 Elasticsearch shards failed"
        )
        assert f"in index {narrow}: illegal_argument_exception" in first_lines(tmp_path / "r")["txt"]
        assert Store.from_url(f"sqlite:///{tmp_path / 'state.db'}").snapshot()["incidents"] == []
    finally:
        es_client.indices.delete(index=f"{prefix}-ecs,{narrow}", ignore_unavailable=True)
