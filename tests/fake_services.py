"""Local HTTP servers on 127.0.0.1 that answer like the real Confluence REST API (the calls
atlassian-python-api makes) and a Teams webhook, record every request, and fail on demand."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Scripted:
    """A forced answer for the next `times` requests matching method and path prefix (delay: hang first)."""

    method: str
    path: str
    answer: Answer | None
    times: int = 1
    delay_s: float = 0.0


Handler = Callable[[Request], Answer]


@contextmanager
def serve(handle: Handler) -> Iterator[str]:
    """Run `handle` behind an HTTP server on 127.0.0.1; yields its base URL."""

    class RequestHandler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            parts = urlsplit(self.path)
            request = Request(
                self.command,
                parts.path,
                parse_qs(parts.query),
                dict(self.headers.items()),
                self.rfile.read(length),
                time.monotonic(),
            )
            answer = handle(request)
            try:
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                pass

        do_GET = do_PUT = do_POST = do_DELETE = _any

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _json(status: int, document: Any, headers: dict[str, str] | None = None) -> Answer:
    return Answer(
        status, json.dumps(document).encode(), {"Content-Type": "application/json", **(headers or {})}
    )


class ScriptedServer:
    """Records requests and plays scripted failures before the normal behaviour of a subclass."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.script: list[Scripted] = []
        self._lock = threading.Lock()

    def fail(self, method: str, path: str, status: int, *, times: int = 1, **headers: str) -> None:
        document = {"statusCode": status, "message": f"scripted {status}"}
        answer = _json(status, document, {k.replace("_", "-"): v for k, v in headers.items()})
        self.script.append(Scripted(method, path, answer, times))

    def hang(self, method: str, path: str, seconds: float, *, times: int = 1) -> None:
        self.script.append(Scripted(method, path, None, times, seconds))

    def bodies(self) -> list[bytes]:
        return [request.body for request in self.requests]

    def handle(self, request: Request) -> Answer:
        with self._lock:
            self.requests.append(request)
            scripted = next(
                (
                    s
                    for s in self.script
                    if s.times > 0 and s.method == request.method and request.path.startswith(s.path)
                ),
                None,
            )
            if scripted:
                scripted.times -= 1
        if scripted and scripted.delay_s:
            time.sleep(scripted.delay_s)
        if scripted and scripted.answer:
            return scripted.answer
        return self.normal(request)

    def normal(self, request: Request) -> Answer:
        raise NotImplementedError


@dataclass
class Page:
    title: str
    version: int
    body: str = ""


class FakeConfluence(ScriptedServer):
    """Content GET/PUT with versions and attachment upload, as Confluence Server/Cloud answer them."""

    def __init__(self, username: str = "analyzer", password: str = "fake-password") -> None:
        super().__init__()
        self.credentials = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.pages: dict[str, Page] = {}
        self.attachments: dict[str, dict[str, list[tuple[str, bytes]]]] = {}  # page → name → versions
        self.edit_before_put: set[str] = set()  # pages someone else saves between our GET and PUT
        self.url = ""

    def add_page(self, page_id: str, title: str, version: int = 1, body: str = "<p>old</p>") -> None:
        self.pages[page_id] = Page(title, version, body)

    def puts(self, page_id: str | None = None) -> list[dict[str, Any]]:
        return [
            r.json()
            for r in self.requests
            if r.method == "PUT" and (page_id is None or r.path == f"/rest/api/content/{page_id}")
        ]

    def normal(self, request: Request) -> Answer:
        if request.headers.get("Authorization") != self.credentials:
            return Answer(401, b"Unauthorized", {"Content-Type": "text/html"})
        parts = request.path.strip("/").split("/")
        if parts[:3] != ["rest", "api", "content"] or len(parts) < 4:
            return _json(404, {"statusCode": 404, "message": "null for uri"})
        page_id = parts[3]
        page = self.pages.get(page_id)
        if page is None:
            return _json(
                404, {"statusCode": 404, "message": f"No content found with id: ContentId{{id={page_id}}}"}
            )
        if len(parts) == 4 and request.method == "GET":
            return _json(200, self._document(page_id, page))
        if len(parts) == 4 and request.method == "PUT":
            return self._put(page_id, page, request.json())
        if parts[4:6] == ["child", "attachment"]:
            return self._attachment(page_id, parts[6:], request)
        return _json(405, {"statusCode": 405, "message": "method not allowed"})

    @staticmethod
    def _document(page_id: str, page: Page) -> dict[str, Any]:
        return {
            "id": page_id,
            "type": "page",
            "status": "current",
            "title": page.title,
            "version": {"number": page.version},
            "body": {"storage": {"value": page.body, "representation": "storage"}},
        }

    def _put(self, page_id: str, page: Page, document: dict[str, Any]) -> Answer:
        if page_id in self.edit_before_put:
            self.edit_before_put.discard(page_id)
            page.version += 1
        wanted = document["version"]["number"]
        if wanted != page.version + 1:
            message = f"Version must be incremented on update. Current version is: {page.version}"
            return _json(409, {"statusCode": 409, "message": message})
        page.version = wanted
        page.title = document["title"]
        page.body = document["body"]["storage"]["value"]
        return _json(200, self._document(page_id, page))

    def _attachment(self, page_id: str, rest: list[str], request: Request) -> Answer:
        files = self.attachments.setdefault(page_id, {})
        if request.method == "GET":
            name = request.query.get("filename", [""])[0]
            results = [{"id": f"att-{page_id}-{name}", "title": name}] if name in files else []
            return _json(200, {"results": results, "size": len(results)})
        if request.headers.get("X-Atlassian-Token") != "no-check":
            return _json(403, {"statusCode": 403, "message": "XSRF check failed"})
        content_type = request.headers["Content-Type"]
        form = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + request.body
        )
        for part in form.iter_parts():
            if part.get_filename():
                name = part.get_filename()
                files.setdefault(name, []).append((part.get_content_type(), part.get_payload(decode=True)))
                return _json(200, {"results": [{"id": f"att-{page_id}-{name}", "title": name}]})
        return _json(400, {"statusCode": 400, "message": "no file"})


class FakeTeams(ScriptedServer):
    """A Teams webhook: Workflows answer 202 with no body, the classic connector 200 with "1"."""

    def __init__(self, *, connector: bool = False) -> None:
        super().__init__()
        self.connector = connector
        self.url = ""

    def posted(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.requests if r.method == "POST"]

    def normal(self, request: Request) -> Answer:
        return Answer(200, b"1") if self.connector else Answer(202)


Fake = TypeVar("Fake", FakeConfluence, FakeTeams)


@contextmanager
def running(fake: Fake) -> Iterator[Fake]:
    with serve(fake.handle) as url:
        fake.url = url
        yield fake
