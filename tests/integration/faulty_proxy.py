"""A tiny HTTP proxy in front of the real Elasticsearch node that forwards a set number of requests
and then drops every connection without an answer: a real fault between a real client and a real
server, without stopping the node the other tests share."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Headers that describe one hop's connection, not the message (RFC 9110 §7.6.1), and the length,
# which the proxy sets itself because it answers with the whole body at once.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


class FaultyProxy:
    """Forwards to `target` until `fail_after(n)` requests have passed, then drops connections."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target_host = parts.hostname or "127.0.0.1"
        self.target_port = parts.port or 9200
        self.forwarded = 0
        self.dropped = 0
        self._budget: int | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_after(self, requests: int) -> None:
        """Forward `requests` more requests, then drop every connection."""
        with self._lock:
            self._budget = requests

    def heal(self) -> None:
        with self._lock:
            self._budget = None

    def admit(self) -> bool:
        with self._lock:
            if self._budget is not None:
                if self._budget <= 0:
                    self.dropped += 1
                    return False
                self._budget -= 1
            self.forwarded += 1
            return True

    @contextmanager
    def running(self) -> Iterator[FaultyProxy]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        proxy: FaultyProxy = self.server.proxy  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if not proxy.admit():
            # No status line at all: the client sees the connection die, as when the node goes away.
            self.close_connection = True
            return
        upstream = http.client.HTTPConnection(proxy.target_host, proxy.target_port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
        finally:
            upstream.close()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Quiet: the test asserts on the counters, not on an access log."""
