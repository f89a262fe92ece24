"""Test-side fault injection for the reliability tests: run the real CLI in a forked child process
that SIGKILLs itself at the N-th call of a chosen function, capture the state a run leaves behind,
and put a TCP proxy that cuts connections in front of a real server.

Nothing here touches production code: kill points are installed by patching in the child only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy.engine
import yaml

from core import cli
from core.store import Store

# Settings a developer's shell may carry; every run states its own source and store.
CLEARED = (
    "DATABASE_URL", "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD", "DB_DDL_USER",
    "DB_DDL_PASSWORD", "DB_DDL_ROLE", "ES_URL", "ES_HOST", "ES_PORT", "ES_INDEX_PATTERN", "LOG_FILE",
    "PUSHGATEWAY_URL", "TEAMS_ENABLED", "TEAMS_WEBHOOK_URL", "CONFLUENCE_URL", "K8S_JOB_NAME",
    "K8S_POD_NAME", "INGEST_LAG_MINUTES", "BASELINE_DAYS", "REGISTRY_DIR", "EXPORT_DIR",
)  # fmt: skip
REPORT_RUN_KEYS = {"generated_at", "run"}  # what describes the run, not the findings
LOCK_HELD = "another run holds the lock"


@dataclass(frozen=True)
class KillPoint:
    """Die with SIGKILL at the `n`-th call (1-based) of `target`, before or after the call runs."""

    target: str  # a key of TARGETS
    n: int
    after: bool = False

    def __str__(self) -> str:
        return f"{'after' if self.after else 'before'} {self.target} #{self.n}"


def _patch(owner: Any, name: str) -> Callable[[Callable[..., Any]], None]:
    def install(wrapper_factory: Callable[..., Any]) -> None:
        setattr(owner, name, wrapper_factory(getattr(owner, name)))

    return install


# target → (object, attribute): every SQL statement, every recorded step (a `_Run.step` boundary),
# every atomic file replace (registry, exports, reports, publications) and every fsync (a file
# written but not yet renamed into place).
TARGETS: dict[str, tuple[Any, str]] = {
    "sql": (sqlalchemy.engine.Connection, "execute"),
    "step": (Store, "record_step"),
    "replace": (os, "replace"),
    "fsync": (os, "fsync"),
}


@dataclass(frozen=True)
class Hold:
    """Pause at the `n`-th call of `target` (counting only SQL statements that start with `sql`,
    when given): write `<gate>.paused`, wait until `gate` exists, then go on (the test injects a
    fault or starts a rival run meanwhile)."""

    target: str
    n: int
    gate: Path
    sql: str | None = None


@dataclass
class CliRun:
    """How a child run ended: its exit code (or the signal that ended it), its output, and how often
    each target was called."""

    exit_code: int | None
    signal: int | None
    output: str
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def killed(self) -> bool:
        return self.signal == signal.SIGKILL


class Child:
    """A forked child running the CLI; `wait()` gives how it ended."""

    def __init__(self, pid: int, out_path: Path, calls_path: Path, args: list[str]) -> None:
        self.pid, self.out_path, self.calls_path, self.args = pid, out_path, calls_path, args

    def wait(self, timeout: float = 120.0) -> CliRun:
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                raise TimeoutError(f"{self.args} did not finish in {timeout}s:\n{self._output()}")
            time.sleep(0.01)
        output = self._output()
        calls = json.loads(self.calls_path.read_text()) if self.calls_path.exists() else {}
        if os.WIFSIGNALED(status):
            return CliRun(None, os.WTERMSIG(status), output, calls)
        return CliRun(os.WEXITSTATUS(status), None, output, calls)

    def _output(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")


def start_cli(
    args: list[str],
    env: Mapping[str, str | None],
    work: Path,
    *,
    kill: KillPoint | None = None,
    hold: Hold | None = None,
    prepare: Callable[[], None] | None = None,
) -> Child:
    """Start `log-analyzer <args>` in a forked child with `env` as its environment.

    `kill`: the child SIGKILLs itself at that point. `hold`: the child pauses there until released.
    `prepare`: called in the child before the run (to patch a client, say).
    """
    work.mkdir(parents=True, exist_ok=True)
    out_path = work / f"child-{time.monotonic_ns()}.out"
    calls_path = out_path.with_suffix(".calls.json")
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        code = 70
        try:
            code = _child(args, env, out_path, calls_path, kill, hold, prepare)
        finally:
            os._exit(code)
    return Child(pid, out_path, calls_path, args)


def run_cli(
    args: list[str],
    env: Mapping[str, str | None],
    work: Path,
    *,
    kill: KillPoint | None = None,
    hold: Hold | None = None,
    prepare: Callable[[], None] | None = None,
    timeout: float = 120.0,
) -> CliRun:
    """`start_cli` and wait for the end."""
    return start_cli(args, env, work, kill=kill, hold=hold, prepare=prepare).wait(timeout)


def _child(
    args: list[str],
    env: Mapping[str, str | None],
    out_path: Path,
    calls_path: Path,
    kill: KillPoint | None,
    hold: Hold | None,
    prepare: Callable[[], None] | None,
) -> int:
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    # pytest's capture replaced sys.stdout/stderr in the parent; the child writes to its own file.
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False, buffering=1)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", closefd=False, buffering=1)  # noqa: SIM115
    for name in CLEARED:
        os.environ.pop(name, None)
    os.environ.update({k: v for k, v in env.items() if v is not None})
    calls = dict.fromkeys(TARGETS, 0)
    held = [0]

    def counting(target: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*a: Any, **kw: Any) -> Any:
            calls[target] += 1
            hit = kill is not None and kill.target == target and kill.n == calls[target]
            if hit and not kill.after:
                os.kill(os.getpid(), signal.SIGKILL)
            if hold is not None and hold.target == target and _held(hold, a, held):
                hold.gate.with_name(hold.gate.name + ".paused").touch()
                while not hold.gate.exists():
                    time.sleep(0.02)
            result = original(*a, **kw)
            if hit:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        return call

    for target, (owner, name) in TARGETS.items():
        _patch(owner, name)(lambda original, t=target: counting(t, original))
    try:
        if prepare is not None:
            prepare()
        cli.main(args, prog_name="log-analyzer", standalone_mode=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    # os.replace and os.fsync are patched: write the tally without them.
    calls_path.write_text(json.dumps(calls))
    return code


def wait_for(path: Path, timeout: float = 60.0) -> None:
    """Wait until `path` exists (a held child reached its hold point)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear in {timeout}s")
        time.sleep(0.02)


def _held(hold: Hold, args: tuple[Any, ...], held: list[int]) -> bool:
    if hold.sql is not None and not str(args[1]).lstrip().startswith(hold.sql):
        return False
    held[0] += 1
    return held[0] == hold.n


# --- what a run leaves behind ------------------------------------------------------------------


@dataclass
class State:
    """The analysed state: database snapshot, registry files, CSV exports and report findings."""

    database: dict[str, list[dict[str, Any]]]
    registry: dict[str, Any]
    exports: dict[str, str]
    report: dict[str, Any] | None


def capture(url: str, registry_dir: Path, export_dir: Path, report_dir: Path | None) -> State:
    with Store.from_url(url, migrate=False) as store:
        database = store.snapshot()
    registry = {
        name: _registry_file(path)
        for name in ("problems.yaml", "peaks.yaml")
        if (path := registry_dir / name).exists()
    }
    exports = {p.name: p.read_text(encoding="utf-8") for p in sorted(export_dir.glob("*_latest.csv"))}
    report = None
    if report_dir is not None:
        reports = sorted(report_dir.glob("problem_report_*.json"))
        if reports:
            document = json.loads(reports[-1].read_text(encoding="utf-8"))
            report = {k: v for k, v in document.items() if k not in REPORT_RUN_KEYS}
    return State(database, registry, exports, report)


def _registry_file(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return {"<unparsable>": text}  # a file people broke compares by its text


def differences(expected: State, actual: State) -> list[str]:
    """What differs, by table / file / report key; empty when the states are equal."""
    found = []
    for table, rows in expected.database.items():
        other = actual.database.get(table)
        if other != rows:
            missing = [r for r in rows if r not in (other or [])]
            extra = [r for r in other or [] if r not in rows]
            found.append(f"table {table}: {len(missing)} rows missing, {len(extra)} extra")
    for name in sorted(expected.registry.keys() | actual.registry.keys()):
        want, got = expected.registry.get(name) or {}, actual.registry.get(name) or {}
        if want != got:
            missing, extra = sorted(want.keys() - got.keys()), sorted(got.keys() - want.keys())
            changed = sorted(k for k in want.keys() & got.keys() if want[k] != got[k])
            found.append(f"registry {name}: missing {missing}, extra {extra}, changed {changed}")
    for name in expected.exports.keys() | actual.exports.keys():
        if expected.exports.get(name) != actual.exports.get(name):
            found.append(f"export {name} differs")
    if expected.report is not None:
        if actual.report is None:
            found.append("report missing")
        else:
            found += [
                f"report key {key} differs"
                for key in expected.report
                if expected.report[key] != actual.report.get(key)
            ]
    return found


def records(state: State) -> int:
    """Rows that carry analysis results (incidents, peaks, problems)."""
    return sum(len(state.database[t]) for t in ("incidents", "peaks", "problems"))


# --- a TCP proxy that fails on purpose ---------------------------------------------------------


class CuttingProxy:
    """A TCP proxy on 127.0.0.1 in front of `upstream`. After `cut_after` client→server chunks
    (counted over all connections) it closes every connection and refuses new ones, the way a
    dropped network or a restarted server looks to the client; with `stall` it keeps the
    connections open and forwards nothing more (a server that stopped answering: timeouts).
    `cut_after=None`: never cuts."""

    def __init__(
        self, upstream: tuple[str, int], cut_after: int | None = None, *, stall: bool = False
    ) -> None:
        self.upstream = upstream
        self.cut_after = cut_after
        self.stall = stall
        self.chunks = 0
        self.cut = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> CuttingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.cut.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._close_all()

    def _close_all(self) -> None:
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()
            self._sockets.clear()

    def _accept(self) -> None:
        while not self.cut.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.cut.is_set():
                client.close()
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, counted: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                with contextlib.suppress(OSError):
                    target.shutdown(socket.SHUT_WR)
                return
            if counted:
                with self._lock:
                    self.chunks += 1
                    cutting = self.cut_after is not None and self.chunks > self.cut_after
                if cutting and self.stall:
                    continue
                if cutting:
                    self.close()
                    return
            try:
                target.sendall(data)
            except OSError:
                return


@contextlib.contextmanager
def cutting_proxy(
    upstream: tuple[str, int], cut_after: int | None = None, *, stall: bool = False
) -> Iterator[CuttingProxy]:
    with CuttingProxy(upstream, cut_after, stall=stall) as proxy:
        yield proxy


# --- environments ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """Where one run sequence keeps its state: database, registry, exports, reports, child output."""

    root: Path
    database_url: str

    @property
    def registry(self) -> Path:
        return self.root / "registry"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def work(self) -> Path:
        return self.root / "work"

    def env(self, source: Mapping[str, str], **settings: str) -> dict[str, str | None]:
        """`source`: {"LOG_FILE": …} or {"ES_URL": …, "ES_INDEX_PATTERN": …}."""
        return {
            **dict.fromkeys(CLEARED),
            "DATABASE_URL": self.database_url,
            "REGISTRY_DIR": str(self.registry),
            "EXPORT_DIR": str(self.exports),
            "LOG_FORMAT": "json",
            **source,
            **settings,
        }

    def state(self, with_report: bool = True) -> State:
        return capture(self.database_url, self.registry, self.exports, self.reports if with_report else None)


def sqlite_place(root: Path) -> Place:
    return Place(root, f"sqlite:///{root / 'state.db'}")
