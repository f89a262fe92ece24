"""Shared test setup. With AI_LOG_ANALYZER_NO_SKIP=1 (set by scripts/test.sh and so by CI) a skipped
test is a failed test: a green run with skipped integration tests would prove nothing."""

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("AI_LOG_ANALYZER_NO_SKIP") == "1" and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped tests are failures here (AI_LOG_ANALYZER_NO_SKIP=1): {report.longrepr}"


@dataclass
class FakePushgateway:
    """Records pushes and keeps groups the way the real gateway does: PUT replaces the whole
    group, POST replaces only the metric names it carries."""

    url: str
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    groups: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    status: int = 200

    def record(self, method: str, path: str, body: str) -> None:
        self.requests.append((method, path, body))
        samples: dict[str, list[str]] = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                samples.setdefault(re.split(r"[{ ]", line, maxsplit=1)[0], []).append(line)
        group = self.groups.setdefault(path, {})
        if method == "PUT":
            group.clear()
        group.update(samples)

    def lines(self, path: str) -> set[str]:
        return {line for samples in self.groups[path].values() for line in samples}


@pytest.fixture
def gateway() -> Iterator[FakePushgateway]:
    fake = FakePushgateway(url="")

    class Handler(BaseHTTPRequestHandler):
        def _push(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            fake.record(self.command, self.path, body)
            self.send_response(fake.status)
            self.end_headers()

        do_POST = do_PUT = _push

        def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
