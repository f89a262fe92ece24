"""Split stack traces joined when they are read from the real Elasticsearch (needs Elasticsearch): Fluent
Bit's one record per line, of two pods interleaved, indexed with the logs-k8s template, read page by
page in `_shard_doc` order, are one event per trace."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_multiline import JAVA, PYTHON, START, lines_of

from core.fetch import ElasticsearchSource
from core.model import InputStats
from core.normalize import normalize

pytestmark = pytest.mark.every_elasticsearch  # the 8 and the 9 node

TRACES = 20


@pytest.mark.parametrize("slices", [1, 2, 3])
def test_split_traces_read_from_elasticsearch_across_pages_are_one_event_each(
    es_client, index_documents, slices
):
    other = "settlement-worker-6d8f7b9c4d-x7k1m"
    docs = []
    for n in range(TRACES):
        java, python = lines_of(*JAVA, start_ms=10_000 * n), lines_of(*PYTHON, pod=other, start_ms=10_000 * n)
        docs += [doc for pair in zip(java, python, strict=True) for doc in pair]
    index = index_documents(docs)
    # Pages of 5 cut every trace. One slice reads the shard in the order its documents were indexed;
    # several slices (ES_SLICES, 2 by default) are merged back into that order.
    source = ElasticsearchSource(es_client, index, page_size=5, slices=slices)
    stats = InputStats()
    events = list(normalize(source.fetch(START, START + timedelta(hours=1), stats), stats))
    assert sorted(e.message for e in events) == sorted(["\n".join(JAVA), "\n".join(PYTHON)] * TRACES)
    assert (stats.fetched, stats.accepted, stats.joined_lines, stats.skipped) == (
        len(docs),
        2 * TRACES,
        len(docs) - 2 * TRACES,
        {},
    )
