"""The Elasticsearch source against the real node (needs Elasticsearch): point-in-time + search_after,
sliced or not, returns exactly the documents of the half-open window in both field layouts, across
page boundaries; the PIT is closed at the end, when the reader stops early and on errors; transient
errors are retried; the configured credentials are sent. A recording proxy in front of the real node
sees the requests (and injects the faults)."""

from __future__ import annotations

import base64
import http.client
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from elasticsearch import Elasticsearch, NotFoundError

from core.config import Settings
from core.fetch import ElasticsearchSource, SourceUnavailable, client_options
from core.model import InputStats
from core.normalize import normalize

pytestmark = pytest.mark.every_elasticsearch  # the 8 and the 9 node

START = datetime(2026, 2, 9, 8, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


def ecs(n: int, ts: datetime, level: str = "error") -> dict:
    return {
        "@timestamp": ts.isoformat().replace("+00:00", "Z"),
        "message": f"payment event {n} failed",
        "log": {"level": level},
        "kubernetes": {"namespace": "payments", "pod": {"name": "payments-api-7d9fbc5d8b-x2k4q"}},
        "agent": {"type": "filebeat"},
    }


def fluent_bit(n: int, ts: datetime) -> dict:
    # No level field: the source must fetch it, normalize reads the level from the text.
    return {
        "@timestamp": ts.isoformat().replace("+00:00", "Z"),
        "log": f"ERROR ledger event {n} failed",
        "kubernetes": {"namespace_name": "ledger", "pod_name": "ledger-0"},
    }


def window_documents(count: int) -> tuple[list[dict], set[int]]:
    """`count` documents inside the window (half ECS, half Fluent Bit, first one at START exactly) and
    the numbers of those that must be fetched, plus documents that must not be."""
    step = (END - START) / count
    inside = [(ecs if n % 2 else fluent_bit)(n, START + n * step) for n in range(count)]
    outside = [
        ecs(-1, START - timedelta(milliseconds=1)),
        ecs(-2, END),  # half-open: the end is excluded
        fluent_bit(-3, END + timedelta(minutes=5)),
        ecs(-4, START + timedelta(minutes=1), level="info"),  # not an error
    ]
    return inside + outside, set(range(count))


def numbers(hits: list[dict]) -> list[int]:
    return sorted(int(re.search(r"event (-?\d+)", e.message)[1]) for e in normalize(hits, InputStats()))


@pytest.mark.parametrize(
    ("count", "slices", "page_size"),
    [
        (40, 1, 10),  # pages exactly full: one more, empty page ends the slice
        (41, 1, 10),  # a short last page
        (57, 3, 7),  # sliced, several pages per slice
        (5, 4, 100),  # more slices than pages; some slices are empty
    ],
)
def test_exactly_the_documents_of_the_window_in_both_layouts(
    es_client: Elasticsearch, index_documents, count: int, slices: int, page_size: int
) -> None:
    documents, expected = window_documents(count)
    index = index_documents(documents)
    source = ElasticsearchSource(es_client, index, page_size=page_size, slices=slices)
    stats = InputStats()
    hits = list(source.fetch(START, END, stats))
    assert numbers(hits) == sorted(expected)  # each one once: no page read twice or skipped
    assert stats.fetched == count
    assert len({h["_id"] for h in hits}) == count


def test_the_source_is_limited_to_the_fields_the_pipeline_reads(
    es_client: Elasticsearch, index_documents
) -> None:
    index = index_documents([ecs(1, START)])
    [hit] = ElasticsearchSource(es_client, index).fetch(START, END, InputStats())
    assert "agent" not in hit["_source"]
    assert hit["_source"]["kubernetes"]["namespace"] == "payments"


def test_pages_read_lazily_yield_what_the_client_reads_into_dicts(
    es_client: Elasticsearch, es_url: str, index_documents
) -> None:
    """The product's serializer (the `es_client` fixture's) against the client's own: the same hits."""
    documents, _ = window_documents(40)
    index = index_documents(documents)
    # A lone surrogate (a message cut inside an emoji): its page is one the lazy decode refuses.
    cut = (
        b'{"@timestamp": "2026-02-09T08:30:00.5Z", "message": "ERROR cut \\ud83d", "log": {"level": "error"},'
    )
    cut += b' "kubernetes": {"namespace": "payments", "pod": {"name": "payments-api-7d9fbc5d8b-x2k4q"}}}'
    es_client.transport.perform_request(
        "PUT",
        f"/{index}/_doc/cut",
        body=cut,
        headers={"content-type": "application/json", "accept": "application/json"},
    )
    es_client.indices.refresh(index=index)
    with Elasticsearch(es_url, request_timeout=30) as plain:
        read = {
            name: list(
                ElasticsearchSource(client, index, page_size=7, slices=2).fetch(START, END, InputStats())
            )
            for name, client in (("lazy", es_client), ("dicts", plain))
        }
    assert read["lazy"] == read["dicts"]
    assert len(read["lazy"]) == 41
    assert [h["_source"]["message"] for h in read["lazy"] if h["_id"] == "cut"] == ["ERROR cut \ud83d"]


def open_contexts(client: Elasticsearch, index: str) -> int:
    stats = client.indices.stats(index=index, metric="search")
    return stats["indices"][index]["total"]["search"]["open_contexts"]


class RecordingClient:
    """The real client, remembering the PIT ids it opened."""

    def __init__(self, client: Elasticsearch) -> None:
        self._client = client
        self.pits: list[str] = []

    def open_point_in_time(self, **kwargs):
        response = self._client.open_point_in_time(**kwargs)
        self.pits.append(response.body["id"])
        return response

    def __getattr__(self, name: str):
        return getattr(self._client, name)


def assert_closed(client: Elasticsearch, index: str, pit: str) -> None:
    with pytest.raises(NotFoundError):
        client.search(pit={"id": pit}, size=1)
    assert open_contexts(client, index) == 0


@pytest.mark.parametrize("read", ["all", "one"], ids=["read to the end", "stopped after one document"])
def test_the_pit_is_closed_after_reading(es_client: Elasticsearch, index_documents, read: str) -> None:
    documents, _ = window_documents(30)
    index = index_documents(documents)
    client = RecordingClient(es_client)
    docs = ElasticsearchSource(client, index, page_size=5, slices=2).fetch(START, END, InputStats())
    if read == "all":
        assert len(list(docs)) == 30
    else:
        next(docs)
        assert open_contexts(es_client, index) >= 1  # the PIT is open while reading
        docs.close()
    [pit] = client.pits
    assert_closed(es_client, index, pit)


# --- through a recording proxy ------------------------------------------------------------------


@dataclass
class Proxy:
    """Forwards to the real node; records (method, path, lower-cased headers); answers the next searches with
    the queued fault statuses instead of forwarding them."""

    url: str = ""
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    search_faults: list[int] = field(default_factory=list)

    def searches(self) -> list[str]:
        return [path for method, path, _ in self.requests if "/_search" in path]


@pytest.fixture
def proxy(es_url: str) -> Iterator[Proxy]:
    recorder = Proxy()
    upstream = urlsplit(es_url)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                recorder.requests.append(
                    (self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                fault = (
                    recorder.search_faults.pop(0)
                    if "/_search" in self.path and recorder.search_faults
                    else None
                )
            if fault is not None:
                payload = (
                    b'{"error":{"type":"injected","reason":"injected by the test proxy"},"status":%d}' % fault
                )
                return self._answer(fault, payload, "application/json")
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization")}
            connection.request(self.command, self.path, body=body or None, headers=headers)
            response = connection.getresponse()
            self._answer(response.status, response.read(), response.getheader("Content-Type", ""))
            connection.close()

        def _answer(self, status: int, payload: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("X-Elastic-Product", "Elasticsearch")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield recorder
    server.shutdown()
    server.server_close()


SourceFactory = Callable[..., ElasticsearchSource]


@pytest.fixture
def source_via(proxy: Proxy) -> SourceFactory:
    def make(index: str, **settings: str) -> ElasticsearchSource:
        configured = Settings(_env_file=None, es_url=proxy.url, es_index_pattern=index, **settings)
        return ElasticsearchSource.from_settings(configured)

    return make


@pytest.mark.parametrize(
    ("settings", "authorization"),
    [
        ({"es_api_key": "ZmFrZS1pZDpmYWtlLWtleQ=="}, "ApiKey ZmFrZS1pZDpmYWtlLWtleQ=="),
        (
            {"es_username": "analyzer", "es_password": "fake-password"},
            "Basic " + base64.b64encode(b"analyzer:fake-password").decode(),
        ),
    ],
    ids=["api key", "basic auth"],
)
def test_the_configured_credentials_are_sent_with_every_request(
    proxy: Proxy, source_via: SourceFactory, index_documents, settings: dict, authorization: str
) -> None:
    index = index_documents([ecs(1, START), fluent_bit(2, START)])
    assert len(list(source_via(index, **settings).fetch(START, END, InputStats()))) == 2
    assert proxy.requests
    assert {headers.get("authorization") for _, _, headers in proxy.requests} == {authorization}


def test_without_credentials_no_authorization_header_is_sent(
    proxy: Proxy, source_via: SourceFactory, index_documents
) -> None:
    index = index_documents([ecs(1, START)])
    assert len(list(source_via(index).fetch(START, END, InputStats()))) == 1
    assert all("authorization" not in headers for _, _, headers in proxy.requests)


def test_the_client_options_carry_the_ca_file_and_the_timeout(tmp_path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("fake CA for the test\n")
    options = client_options(Settings(_env_file=None, es_url="https://es.example.com:9200", es_ca_certs=ca))
    assert options["ca_certs"] == str(ca)
    assert options["request_timeout"] == 60.0


def test_transient_errors_are_retried_and_no_page_is_lost_or_doubled(
    proxy: Proxy, source_via: SourceFactory, index_documents
) -> None:
    documents, expected = window_documents(25)
    index = index_documents(documents)
    proxy.search_faults = [503, 429]  # the first page fails twice, then succeeds
    hits = list(source_via(index, es_page_size="100", es_slices="1").fetch(START, END, InputStats()))
    assert numbers(hits) == sorted(expected)
    assert len(proxy.searches()) == 3


def test_a_failing_search_is_a_clear_error_and_the_pit_is_closed(
    es_client: Elasticsearch, proxy: Proxy, source_via: SourceFactory, index_documents
) -> None:
    documents, _ = window_documents(20)
    index = index_documents(documents)
    proxy.search_faults = [400]  # not transient: no retry
    with pytest.raises(SourceUnavailable, match="failed while reading"):
        list(source_via(index, es_page_size="100", es_slices="1").fetch(START, END, InputStats()))
    assert [m for m, p, _ in proxy.requests if p.startswith("/_pit")] == ["DELETE"]
    assert open_contexts(es_client, index) == 0


def test_an_unreachable_node_is_a_clear_error() -> None:
    settings = Settings(_env_file=None, es_url="http://127.0.0.1:9", es_timeout_s=2)
    with pytest.raises(SourceUnavailable, match=r"unreachable \(connection refused\)"):
        list(ElasticsearchSource.from_settings(settings).fetch(START, END, InputStats()))


def test_configured_field_paths_are_queried_and_read(es_client: Elasticsearch, index_documents) -> None:
    from core.layout import FieldMap

    layout = FieldMap.preset("ecs").override({"message": "msg", "level": "severity_text"})
    inside = {
        "@timestamp": (START + timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
        "msg": "payment event 1 failed",
        "severity_text": "ERROR",
        "kubernetes": {"namespace": "payments", "pod": {"name": "payments-api-7d9fbc5d8b-x2k4q"}},
    }
    info = inside | {"msg": "payment event 2 ok", "severity_text": "INFO"}
    index = index_documents([inside, info])
    source = ElasticsearchSource(es_client, index, page_size=10, slices=1, layout=layout)
    hits = list(source.fetch(START, END, InputStats()))
    assert [h["_source"]["msg"] for h in hits] == ["payment event 1 failed"]  # the INFO line is not fetched
    events = list(normalize(hits, InputStats(), layout))
    assert [e.message for e in events] == ["payment event 1 failed"]
