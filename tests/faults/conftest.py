"""Helpers for the fault-injection suite: real servers on loopback, real processes, real signals.

Everything started here stops by itself: simulated devices have a lifetime, the small aiohttp
servers stop at teardown (or after their own lifetime), subprocesses are killed at teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from perftui.sim.device import SimOptions, SimServer
from tests.engine_helpers import run_cli

SIM_LIFETIME_S = 60.0
SERVER_LIFETIME_S = 60.0
DURATION_S = 1.0
TIMEOUT_S = 0.5
# Short, bounded phases with a watchdog budget we can compute: max(0, 1 × 1 + 2 × t + 10).
FAULT_FLAGS = [
    "--burst-duration",
    str(DURATION_S),
    "--timeout",
    str(TIMEOUT_S),
    "--metrics-retries",
    "2",
    "--metrics-retry-delay-ms",
    "10",
    "--phase-timeout-min-s",
    "0",
    "--phase-timeout-multiplier",
    "1",
    # Sub-millisecond loopback latencies make the tail-p95 ratio pure scheduling noise on a busy
    # CI machine; no fault here is about the tail, so that gate must not decide an outcome.
    "--max-tail-p95-ratio",
    "1000",
]
# Any status 200–499 is healthy (REFERENCE.md): an unknown route answers 404 outside the sim's
# fault injection, so the probe passes and the faults hit the load only.
PROBE_OUTSIDE_FAULTS = ["--probe-path", "/not-a-route"]
STARTUP_ALLOWANCE_S = 6.0  # spawning the engine, probing, telemetry: outside any phase budget


def watchdog_budget(duration: float = DURATION_S, timeout: float = TIMEOUT_S) -> float:
    """The reference budget for FAULT_FLAGS: max(min_s=0, duration × 1 + 2 × timeout + 10)."""
    return duration * 1 + 2 * timeout + 10


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# --- latest.partial.json, observed while the run goes on ----------------------------------------


class PartialWatcher:
    """Read `latest.partial.json` every few milliseconds during a run; every read must parse.

    Atomic writes (temp, fsync, rename) mean a reader never sees half a file; this proves it
    from the outside, the way a CI script or the TUI would read it.
    """

    def __init__(self, history: Path, period_s: float = 0.01) -> None:
        self.path = history / "latest.partial.json"
        self.period_s = period_s
        self.valid: list[dict[str, Any]] = []
        self.invalid: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._last_mtime: int | None = None

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._read()
            time.sleep(self.period_s)
        self._read()

    def _read(self) -> None:
        try:
            stat = self.path.stat()
            if stat.st_mtime_ns == self._last_mtime:
                return
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        try:
            data = json.loads(text)
        except ValueError:
            self.invalid.append(text[:200])
            return
        self._last_mtime = stat.st_mtime_ns
        self.valid.append(data)

    def __enter__(self) -> PartialWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


# --- one `perftui run`, in-process --------------------------------------------------------------


@dataclass
class Outcome:
    """What a `perftui run` left behind: exit code, output, files, and how long it took."""

    code: int
    out: str
    err: str
    elapsed: float
    history: Path
    partials: PartialWatcher

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads((self.history / "latest.json").read_text(encoding="utf-8"))

    def results(self) -> list[dict[str, Any]]:
        return [r for run in self.payload["raw_runs"] for r in run["results"]]


def run_faulty(port: int, history: Path, capfd: pytest.CaptureFixture[str], *flags: str) -> Outcome:
    """`perftui run 127.0.0.1 --port PORT` with short phases; captures the engine's stderr too."""
    capfd.readouterr()
    started = time.monotonic()
    with PartialWatcher(history) as watcher:
        code = run_cli(port, history, *FAULT_FLAGS, *flags)
    elapsed = time.monotonic() - started
    captured = capfd.readouterr()
    return Outcome(code, captured.out, captured.err, elapsed, history, watcher)


def assert_clean_exit(outcome: Outcome, expected_code: int) -> None:
    """The invariants of every fault: documented exit code, no traceback, valid files only."""
    assert outcome.code == expected_code, outcome.err
    assert "Traceback" not in outcome.err and "internal error" not in outcome.err
    assert outcome.partials.invalid == []
    assert not (outcome.history / "latest.partial.json").exists()  # removed once the run ended
    assert not list(outcome.history.glob("*.tmp"))


# --- real processes -----------------------------------------------------------------------------


def perftui_argv(target: str, history: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "perftui", "run", target, "--history-dir", str(history), *flags]


def children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc (psutil is not a dependency)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped has finished: it holds no file and sends nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """The pids still running after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return []
        time.sleep(0.02)
    return [p for p in pids if alive(p)]


@dataclass
class Spawned:
    """A `perftui run` subprocess in its own session (so its whole group can be signalled).

    Threads read both pipes from the start: `communicate()` after a `readline()` would lose what
    the text wrapper had already buffered, and a full stdout pipe would block the run."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _err: queue.Queue[str | None] = field(default_factory=queue.Queue)
    _out: list[str] = field(default_factory=list)
    _readers: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        def read_err() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self._err.put(line)
            self._err.put(None)

        def read_out() -> None:
            assert self.proc.stdout is not None
            self._out.extend(self.proc.stdout)

        for target in (read_err, read_out):
            reader = threading.Thread(target=target, daemon=True)
            reader.start()
            self._readers.append(reader)

    def wait_line(self, predicate: Callable[[str], bool], timeout: float = 20.0) -> str:
        """Read stderr until a line matches (the engine's progress lines go there)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._err.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if predicate(line):
                return line
        raise AssertionError(f"no matching line; stderr so far:\n{''.join(self.lines)}")

    def _drain(self) -> Iterator[str | None]:
        while not self._err.empty():
            yield self._err.get_nowait()

    def join_readers(self, timeout: float) -> None:
        for reader in self._readers:
            reader.join(timeout)

    def finish(self, timeout: float = 30.0) -> tuple[int, str, str]:
        self.proc.wait(timeout)
        self.join_readers(timeout)
        self.lines.extend(line for line in self._drain() if line is not None)
        return self.proc.returncode, "".join(self._out), "".join(self.lines)


@pytest.fixture
def spawn() -> Iterator[Callable[..., Spawned]]:
    """Start `perftui run` subprocesses; any still running at teardown is killed with its group."""
    started: list[Spawned] = []

    def start(argv: list[str]) -> Spawned:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        spawned = Spawned(proc)
        started.append(spawned)
        return spawned

    yield start
    for spawned in started:
        if spawned.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(spawned.proc.pid, signal.SIGKILL)
            spawned.proc.wait(10)
        spawned.join_readers(10)
        for stream in (spawned.proc.stdout, spawned.proc.stderr):
            if stream is not None:
                stream.close()


# --- small purpose-built servers (for what the simulated device does not do) ------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class LoopbackApp:
    """An aiohttp app on 127.0.0.1 on its own thread; records every request it receives."""

    def __init__(self, routes: dict[str, Handler], lifetime_s: float = SERVER_LIFETIME_S) -> None:
        self.routes = routes
        self.lifetime_s = lifetime_s
        self.seen: list[Seen] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            self.seen.append(Seen(request.method, request.path_qs, dict(request.headers)))
            return await handler(request)

        app = web.Application(middlewares=[record])
        for path, handler in self.routes.items():
            app.router.add_route("*", path, handler)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self._loop, self._done = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done.wait(), self.lifetime_s)
        await runner.cleanup()

    def __enter__(self) -> LoopbackApp:
        self._thread.start()
        assert self._ready.wait(10), "the loopback app did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._done is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._done.set)
        self._thread.join(10)


@pytest.fixture
def loopback_app() -> Iterator[Callable[[dict[str, Handler]], LoopbackApp]]:
    with contextlib.ExitStack() as stack:
        yield lambda routes: stack.enter_context(LoopbackApp(routes))


# --- devices started late, or on other addresses ------------------------------------------------


@pytest.fixture
def late_sims() -> Iterator[Callable[..., threading.Thread]]:
    """Start simulated devices on a fixed port after a delay, from a thread (a device booting).

    `start(port, delay, after=None, **options)`: `after` is a `threading.Event` to wait for
    before the delay begins. Every sim started this way is stopped at teardown.
    """
    sims: list[SimServer] = []
    threads: list[threading.Thread] = []
    stop = threading.Event()

    def start(
        port: int, delay: float, after: threading.Event | None = None, **options: Any
    ) -> threading.Thread:
        options.setdefault("max_lifetime_s", SIM_LIFETIME_S)

        def boot() -> None:
            if after is not None and not after.wait(SIM_LIFETIME_S):
                return
            if stop.wait(delay):
                return
            sim = SimServer(SimOptions(**options), port=port)
            sims.append(sim.__enter__())

        thread = threading.Thread(target=boot, daemon=True)
        thread.start()
        threads.append(thread)
        return thread

    yield start
    stop.set()
    for thread in threads:
        thread.join(15)
    for sim in sims:
        sim.__exit__(None, None, None)


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


# --- what a history dir holds -------------------------------------------------------------------


def every_stored_byte(history: Path) -> dict[Path, bytes]:
    """Every file under the history dir, gzipped run documents decompressed."""
    contents = {}
    for path in sorted(history.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            contents[path] = gzip.decompress(data) if path.name.endswith(".gz") else data
    return contents
