"""Helpers for driving the real `perftui run` against a loopback server in tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from perftui.cli.main import main
from perftui.config import PhaseSettings, RunConfig
from perftui.engine.load import run_phase
from perftui.profiles import adhoc_profile, parse_profile

# answer(request_head, nth request on its connection) -> (bytes to send, close after), or None
# to never answer (the client times out and drops the connection).
Answer = Callable[[bytes, int], tuple[bytes, bool] | None]

FAST = [
    "--runs",
    "1",
    "--burst-duration",
    "1",
    "--long-duration",
    "0",
    "--burst-clients",
    "4",
    "--between-runs-sleep-ms",
    "0",
    "--post-phase-settle-ms",
    "0",
    "--heartbeat-ms",
    "500",
    "--probe-retries",
    "2",
    # One-second phases on a shared 2-core machine make the last quarter's p95 noisy; the tail
    # gate itself is proven in test_gates.py.
    "--max-tail-p95-ratio",
    "4",
]

# For tests about something other than the gates: a loaded CI machine must not fail them on p95.
NO_LATENCY_GATES = ["--max-p95-ms", "60000", "--max-p99-ms", "60000", "--max-tail-p95-ratio", "100"]


def run_cli(port: int, history: Path, *extra: str, fast: bool = True) -> int:
    """`perftui run 127.0.0.1 --port PORT --history-dir HISTORY …` in-process (engine spawned)."""
    args = ["run", "127.0.0.1", "--port", str(port), "--history-dir", str(history)]
    return main([*args, *(FAST if fast else []), *extra])


def phase_config(
    port: int,
    history: Path,
    paths: str = "/hello,/api/ping",
    burst: tuple[int, float] = (4, 2.0),
    **kw: Any,
) -> RunConfig:
    """One run of one burst phase on 127.0.0.1:PORT, no pauses: for driving `EngineProcess`."""
    return RunConfig(
        host="127.0.0.1",
        port=port,
        profiles=[adhoc_profile(paths)],
        runs=1,
        burst=PhaseSettings(*burst),
        long=PhaseSettings(2, 0.0),
        history_dir=history,
        between_runs_sleep_ms=0,
        post_phase_settle_ms=0,
        **kw,
    )


def latest(history: Path) -> dict[str, Any]:
    return json.loads((history / "latest.json").read_text())


def first_report(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["raw_runs"][0]["results"][0]["report"]


class StallServer:
    """A loopback HTTP server on its own thread: every request is answered after `delay_ms`, and
    once, `stall_at_s` after the first request, it freezes for `stall_s` (nothing is answered).
    Known truth for stall detection and coordinated omission. Any path answers 200; the debug
    endpoints do not exist (404)."""

    def __init__(self, delay_ms: float, stall_at_s: float | None = None, stall_s: float = 0.0):
        self.delay_s = delay_ms / 1000
        self.stall_at_s = stall_at_s
        self.stall_s = stall_s
        self.first: float | None = None
        self.tls: Any = None  # an ssl.SSLContext makes it https
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        if request.path.startswith("/debug/"):
            return web.Response(status=404)
        now = time.monotonic()
        if self.first is None and request.path != "/hello":
            self.first = now
        await asyncio.sleep(self.delay_s)
        if self.first is not None and self.stall_at_s is not None:
            begin = self.first + self.stall_at_s
            end = begin + self.stall_s
            if begin <= (now := time.monotonic()) < end:
                await asyncio.sleep(end - now)
        return web.Response(text="ok")

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        loop.run_until_complete(runner.setup())
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        loop.run_until_complete(web.SockSite(runner, sock, ssl_context=self.tls).start())
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    def __enter__(self) -> StallServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class RecordingServer(StallServer):
    """A loopback server (https with `tls`) that keeps every request it gets (method, path,
    headers, body bytes) and answers with `answer(request) -> (status, body)`; 200 "ok" by
    default. The debug endpoints do not exist (404)."""

    def __init__(
        self,
        answer: Callable[[web.Request], tuple[int, bytes]] | None = None,
        tls: Any = None,
    ) -> None:
        super().__init__(0.0)
        self.answer = answer or (lambda request: (200, b"ok"))
        self.tls = tls
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []

    async def _handle(self, request: web.Request) -> web.Response:
        if request.path.startswith("/debug/"):
            return web.Response(status=404)
        body = await request.read()
        if request.path != "/hello":  # the health probe's
            self.seen.append((request.method, request.path_qs, dict(request.headers), body))
        status, content = self.answer(request)
        return web.Response(status=status, body=content)


_CANNED = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class _Canned(asyncio.Protocol):
    """Answers every request head at once with the same 200; no parsing beyond the blank line."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        heads = self.pending.count(b"\r\n\r\n")
        if heads:
            self.pending = self.pending[self.pending.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(_CANNED * heads)  # type: ignore[attr-defined]


def _serve_fast(sock: socket.socket, lifetime_s: float) -> None:
    import uvloop

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Canned, sock=sock)
        async with server:
            await asyncio.sleep(lifetime_s)

    uvloop.run(main())


class FastServer:
    """A loopback server in its own process that answers faster than perftui can ask (a canned
    response, no parsing): the load generator, not the server, is then the bottleneck."""

    def __init__(self, lifetime_s: float = 60.0) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        ctx = multiprocessing.get_context("fork")
        self.proc = ctx.Process(target=_serve_fast, args=(self.sock, lifetime_s), daemon=True)

    def __enter__(self) -> FastServer:
        self.proc.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.proc.terminate()
        self.proc.join(10)
        self.sock.close()


async def scripted_phase(
    answer: Answer,
    method: str = "GET",
    duration: float = 0.6,
    timeout: float = 2.0,
    clients: int = 2,
) -> dict[str, Any]:
    """Run one real `run_phase` against a loopback server that speaks `answer`'s exact bytes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nth = 0
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                reply = answer(head, nth)
                nth += 1
                if reply is None:
                    await reader.read()  # hang until the client gives up and closes
                    break
                raw, close = reply
                writer.write(raw)
                await writer.drain()
                if close:
                    break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    profile = parse_profile(f'[[requests]]\npath = "/x"\nmethod = "{method}"\n', "t", "t.toml")
    async with server:
        outcome = await run_phase(
            f"http://127.0.0.1:{port}",
            profile,
            clients=clients,
            duration=duration,
            timeout=timeout,
            budget_s=duration + timeout + 10.0,
            stop=asyncio.Event(),
            on_snapshot=lambda *_: None,
        )
    return outcome.recorder.report(clients, duration, outcome.elapsed)
