"""A simulated ESP32 web server on loopback: the demo target and the device every test runs against.

It serves the paths of the built-in profiles with the costs of a small device: a pool of a few
workers that requests queue for, and a service time per request class spent in `asyncio.sleep`
(the load generator runs on the same two cores, so the device must not burn CPU). It answers the
debug telemetry endpoints with the exact shapes the legacy runner reads, and it can misbehave on
purpose (slowdown, heap leak, errors, hang, crash, resets, dripping bodies, bad telemetry) so
that every failure path of perftui can be tested against a real socket. It can also be noisy like
a device on Wi-Fi (`drift`, `spikes`), so that verdicts can be measured where users live.

What it serves and what each answer costs is `perftui.sim.model`; this module serves it.
Three ways to run it: `SimServer` in the caller's event loop (`await start()` / `await stop()`) or
on a background thread (`with SimServer(...) as sim:`), `SimProcess` in a child process so that a
UI never shares a GIL with the device, and `main` for `perftui sim`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import signal
import socket
import struct
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from multiprocessing.connection import Connection
from typing import Any

from aiohttp import web

from perftui.config import EXIT_BAD_INPUT, EXIT_COULD_NOT_RUN, EXIT_OK, RunConfig
from perftui.sim.model import (
    ENDPOINTS,
    INTERNAL_FREE_START,
    INTERNAL_LARGEST_BLOCK,
    JITTER,
    JSON_TYPE,
    PSRAM_FREE,
    PSRAM_LARGEST,
    Endpoint,
    Noise,
    SimStats,
)
from perftui.sim.options import DEFAULT_HOST, SimOptionError, SimOptions, options_from_args

HUGE_DEBUG_BODY = 4 * 1024 * 1024
SHUTDOWN_GRACE_S = 1.0  # in-flight requests get this long to finish when the server stops
PARENT_CHECK_S = 0.5
THREAD_TIMEOUT_S = 10.0


def _reset(transport: asyncio.BaseTransport) -> None:
    """Drop a connection with a TCP reset (linger 0), as a device that gives up on a socket."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _drop(request: web.Request) -> web.Response:
    """Reset the request's connection; aiohttp does not write the returned response to it."""
    if request.transport is not None:
        _reset(request.transport)
    return web.Response(status=500)


async def _drip(
    request: web.Request, status: int, body: bytes, ctype: str, delay: float
) -> web.StreamResponse:
    """Send the body one byte at a time, like a device on a congested link."""
    response = web.StreamResponse(status=status, headers={"Content-Type": ctype})
    response.content_length = len(body)
    await response.prepare(request)
    try:
        for i in range(len(body)):
            if i:
                await asyncio.sleep(delay)
            await response.write(body[i : i + 1])
        await response.write_eof()
    except ConnectionError:
        pass  # the client gave up on the slow body
    return response


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it exists: the device should spend as little CPU per request as it can."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


# --- the server ------------------------------------------------------------------------------


class _Listening:
    """The address of a started simulator: `port` (the bound one, even for port 0), `base_url`."""

    host: str
    _port: int | None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the simulator has not started")
        return self._port

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


class SimServer(_Listening):
    """The simulated device on a loopback port.

    From async code: `await start()` / `await stop()` in the running loop. From sync code (tests,
    other threads): `with SimServer(...) as sim:` runs it on a background thread with its own loop.
    It stops by itself on a simulated crash or after `max_lifetime_s`.
    """

    def __init__(
        self, options: SimOptions | None = None, *, host: str = DEFAULT_HOST, port: int = 0
    ) -> None:
        self.options = options or SimOptions()
        self.host = host
        self.stats = SimStats()
        self.finish_reason = ""  # "stopped", "crash" or "lifetime" once it has stopped
        self._requested_port = port
        self._port: int | None = None
        self._rng = random.Random(self.options.seed)
        seed = self.options.seed
        self._noise = Noise(
            self.options.drift,
            self.options.drift_tau_s,
            self.options.spikes,
            random.Random(None if seed is None else f"noise:{seed}"),  # the jitter keeps its draws
        )
        self._leaked = 0
        self._runner: web.AppRunner | None = None
        self._workers = asyncio.Semaphore(self.options.workers)
        self._released = asyncio.Event()  # lets hung requests go when the server stops
        self._stopped = asyncio.Event()
        self._started_at = 0.0
        self._seen: weakref.WeakSet[asyncio.BaseTransport] = weakref.WeakSet()
        self._timers: list[asyncio.TimerHandle] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_ready = threading.Event()
        self._thread_error: BaseException | None = None

    # -- state and telemetry --

    @property
    def running(self) -> bool:
        return self._runner is not None

    def server_stats(self) -> dict[str, dict[str, Any]]:
        """The /debug/server-stats payload; `ipc.ring_size` is the queue bound (0 = unbounded);
        `firmware.build` the build label, when the sim was given one."""
        s, workers = self.stats, self.options.workers
        firmware = {"firmware": {"build": self.options.build}} if self.options.build else {}
        return firmware | {
            "server": {
                "requests_handled": s.requests_handled,
                "request_errors": s.request_errors,
                "accepts_total": s.accepts_total,
                "accepts_rejected": s.accepts_rejected,
                "backpressure_503_sent": s.backpressure_503_sent,
                "workers_active": s.workers_active,
                "workers_limit_min": workers,
                "workers_limit_max": workers,
            },
            "ipc": {
                "ring_size": self.options.queue_limit or 0,
                "ring_used": s.queue_depth,
                "ring_high_water": s.queue_high_water,
            },
        }

    def memory_stats(self) -> dict[str, dict[str, int | str]]:
        """The /debug/memory-stats payload; the internal heap falls by `leak_bytes` a request."""
        free = max(0, INTERNAL_FREE_START - self._leaked)
        return {
            "heap": {
                "psram_available": True,
                "internal_free": free,
                "internal_largest": min(free, INTERNAL_LARGEST_BLOCK),
                "psram_free": PSRAM_FREE,
                "psram_largest": PSRAM_LARGEST,
            }
        }

    # -- lifecycle in the caller's loop --

    async def start(self) -> None:
        """Bind and serve; raises OSError when the port cannot be bound."""
        if self._port is not None:
            raise RuntimeError("a SimServer runs once; make a new one")
        runner = web.AppRunner(self._make_app(), access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        loop = asyncio.get_running_loop()
        self._runner, self._port, self._started_at = runner, site.port, loop.time()
        if self.options.crash_after is not None:
            self._timers.append(loop.call_later(self.options.crash_after, self._spawn, self._crash))
        if self.options.max_lifetime_s is not None:
            self._timers.append(
                loop.call_later(self.options.max_lifetime_s, self._spawn, self._expire)
            )

    async def stop(self) -> None:
        """Stop listening, let in-flight requests finish briefly, close every connection."""
        runner, self._runner = self._runner, None
        if runner is None:
            if self._port is not None:
                await self._stopped.wait()  # another caller is stopping it
            return
        for timer in self._timers:
            timer.cancel()
        self.finish_reason = self.finish_reason or "stopped"
        self._released.set()
        try:
            await runner.cleanup()
        finally:
            self._stopped.set()

    async def wait_stopped(self) -> None:
        """Until the server has stopped: by stop(), a simulated crash or its lifetime."""
        await self._stopped.wait()

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _spawn(self, make: Callable[[], Awaitable[None]]) -> None:
        task = asyncio.ensure_future(make())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _crash(self) -> None:
        """Go away like a rebooting device: no listener, every open connection reset."""
        runner = self._runner
        if runner is None:
            return
        self.finish_reason = "crash"
        for site in list(runner.sites):
            await site.stop()
        if runner.server is not None:
            for handler in runner.server.connections:
                if handler.transport is not None:
                    _reset(handler.transport)
        await self.stop()

    async def _expire(self) -> None:
        self.finish_reason = self.finish_reason or "lifetime"
        await self.stop()

    # -- lifecycle on a background thread --

    def __enter__(self) -> SimServer:
        self._thread = threading.Thread(target=self._thread_main, name="perftui-sim", daemon=True)
        self._thread.start()
        if not self._thread_ready.wait(THREAD_TIMEOUT_S):
            raise TimeoutError("the simulator thread did not start in time")
        if self._thread_error is not None:
            self._thread.join()
            raise self._thread_error
        return self

    def __exit__(self, *exc_info: object) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop closed: the server already stopped itself
            loop.call_soon_threadsafe(self._spawn, self.stop)
        thread.join(THREAD_TIMEOUT_S)

    def _thread_main(self) -> None:
        with asyncio.Runner(loop_factory=_new_loop) as runner:
            runner.run(self._thread_serve())

    async def _thread_serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            await self.start()
        except BaseException as exc:  # handed to the thread that called __enter__
            self._thread_error = exc
            return
        finally:
            self._thread_ready.set()
        await self.wait_stopped()

    # -- request handling --

    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._count_accepts])
        for path, endpoint in ENDPOINTS.items():
            app.router.add_get(path, self._load_handler(endpoint))
        if not self.options.no_debug:
            app.router.add_get("/debug/server-stats", self._server_stats_handler)
            app.router.add_get("/debug/memory-stats", self._memory_stats_handler)
        if self.options.close_connections:
            app.on_response_prepare.append(self._close_after)
        return app

    @web.middleware
    async def _count_accepts(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """A connection's first request marks it accepted (aiohttp has no accept hook)."""
        transport = request.transport
        if transport is not None and transport not in self._seen:
            self._seen.add(transport)
            self.stats.accepts_total += 1
        return await handler(request)

    async def _close_after(self, _request: web.Request, response: web.StreamResponse) -> None:
        response.force_close()
        response.headers["Connection"] = "close"

    def _load_handler(
        self, endpoint: Endpoint
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._serve_load(request, endpoint)

        return handle

    async def _serve_load(self, request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
        """Queue for a worker, spend the service time, then answer (or misbehave)."""
        opts, stats = self.options, self.stats
        if opts.hang_after is not None and self._uptime() >= opts.hang_after:
            await self._released.wait()
            return _drop(request)
        if spike := self._noise.spike_s():
            await asyncio.sleep(spike)  # late over the air: it holds no worker meanwhile
        if (
            opts.queue_limit is not None
            and self._workers.locked()
            and stats.queue_depth >= opts.queue_limit
        ):
            stats.backpressure_503_sent += 1
            return web.Response(status=503, text="busy\n")
        stats.queue_depth += 1
        stats.queue_high_water = max(stats.queue_high_water, stats.queue_depth)
        try:
            await self._workers.acquire()
        finally:
            stats.queue_depth -= 1
        stats.workers_active += 1
        try:
            jitter = self._rng.uniform(1 - JITTER, 1 + JITTER)
            drift = self._noise.factor(self._uptime())
            await asyncio.sleep(endpoint.service_s * opts.slowdown * jitter * drift)
            return await self._answer(request, endpoint)
        finally:
            stats.workers_active -= 1
            self._workers.release()

    async def _answer(self, request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
        opts, stats = self.options, self.stats
        if opts.reset_rate and self._rng.random() < opts.reset_rate:
            stats.request_errors += 1
            return _drop(request)
        stats.requests_handled += 1
        self._leaked += opts.leak_bytes
        if opts.error_rate and self._rng.random() < opts.error_rate:
            stats.request_errors += 1
            return web.Response(status=500, text="simulated error\n")
        status, body, ctype = endpoint.render(request.query)
        if opts.drip:
            return await _drip(request, status, body, ctype, opts.drip)
        return web.Response(status=status, body=body, headers={"Content-Type": ctype})

    def _uptime(self) -> float:
        return asyncio.get_running_loop().time() - self._started_at

    async def _server_stats_handler(self, request: web.Request) -> web.Response:
        response = self._debug_response(self.server_stats())
        if request.query.get("reset") == "1":
            self.stats.reset()
        return response

    async def _memory_stats_handler(self, _request: web.Request) -> web.Response:
        return self._debug_response(self.memory_stats())

    def _debug_response(self, payload: Mapping[str, Any]) -> web.Response:
        body = json.dumps(payload).encode()
        if self.options.debug_body == "malformed":
            body = body[: len(body) // 2]
        elif self.options.debug_body == "huge":
            body += b" " * (HUGE_DEBUG_BODY - len(body))  # still valid JSON, just enormous
        return web.Response(body=body, headers={"Content-Type": JSON_TYPE})


# --- serving until told to stop (CLI and child process) ---------------------------------------


async def _serve_until_done(
    sim: SimServer, signals: tuple[signal.Signals, ...], parent_pid: int | None = None
) -> None:
    """Serve until a signal, the server's own end (crash, lifetime) or, in a child, orphanhood."""
    loop = asyncio.get_running_loop()
    asked = asyncio.Event()
    for sig in signals:
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
            loop.add_signal_handler(sig, asked.set)
    waits = {asyncio.ensure_future(sim.wait_stopped()), asyncio.ensure_future(asked.wait())}
    try:
        while not any(w.done() for w in waits):
            await asyncio.wait(waits, timeout=PARENT_CHECK_S, return_when=asyncio.FIRST_COMPLETED)
            if parent_pid is not None and os.getppid() != parent_pid:
                break
    finally:
        for w in waits:
            w.cancel()
        await sim.stop()


def _child_main(
    options: SimOptions, host: str, port: int, conn: Connection, parent_pid: int
) -> None:
    """Entry point of the SimProcess child: report the port (or the bind error), then serve."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the parent, which stops us

    async def serve() -> None:
        sim = SimServer(options, host=host, port=port)
        try:
            await sim.start()
        except OSError as exc:
            conn.send(("error", exc.errno, exc.strerror or str(exc)))
            return
        conn.send(("ready", sim.port))
        await _serve_until_done(sim, (signal.SIGTERM,), parent_pid)

    with asyncio.Runner(loop_factory=_new_loop) as runner:
        runner.run(serve())
    conn.close()


class SimProcess(_Listening):
    """The simulated device in a child process (spawn), so the UI and the device share no GIL.

    The child exits when `stop()` is called, when this process dies (it checks its parent every
    0.5 s), on a simulated crash, or after `options.max_lifetime_s`.
    """

    def __init__(
        self,
        options: SimOptions | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        start_timeout: float = 30.0,
    ) -> None:
        self.options = options or SimOptions()
        self.host = host
        self._requested_port = port
        self._start_timeout = start_timeout
        self._port: int | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def is_alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def start(self) -> None:
        """Start the child and return once it listens; OSError if it could not bind."""
        if self._process is not None:
            raise RuntimeError("a SimProcess runs once; make a new one")
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe(duplex=False)
        self._process = ctx.Process(
            target=_child_main,
            args=(self.options, self.host, self._requested_port, child_conn, os.getpid()),
            name="perftui-sim",
            daemon=True,
        )
        self._process.start()
        child_conn.close()
        report = self._wait_report()
        if report is not None and report[0] == "ready":
            self._port = report[1]
            return
        code = self._process.exitcode
        self.stop()
        if report is not None:
            raise OSError(report[1], report[2])
        raise RuntimeError(f"the simulator process did not start (exit code {code})")

    def _wait_report(self) -> tuple[Any, ...] | None:
        """The child's ("ready", port) or ("error", errno, text); None if it died or timed out."""
        assert self._conn is not None and self._process is not None
        deadline = time.monotonic() + self._start_timeout
        while not self._conn.poll(0.05):
            if not self._process.is_alive() or time.monotonic() > deadline:
                return None
        try:
            return self._conn.recv()
        except EOFError:
            return None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if the child has not exited within `timeout`."""
        process = self._process
        if process is None:
            return
        if process.is_alive():
            process.terminate()
            process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> SimProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --- `perftui sim` ---------------------------------------------------------------------------


def serve_run(config: RunConfig, options: SimOptions | None = None, port: int = 0) -> SimProcess:
    """The built-in device for a run (`--sim`, the TUI's default device): on `port` if it is free,
    else on any free one; `config` then targets it under one identity, whatever port it got."""
    for candidate in dict.fromkeys([port, 0]):
        sim = SimProcess(options, port=candidate)
        try:
            sim.start()
        except OSError:
            continue  # the preferred port is taken: any free one will do
        config.port = sim.port
        config.device = "sim"
        return sim
    raise RuntimeError("the simulated device could not bind a port")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def main(args: argparse.Namespace) -> int:
    """`perftui sim`: serve until Ctrl-C or SIGTERM (exit 0); 2 for bad options, 3 if unbindable."""
    try:
        options = options_from_args(args)
    except SimOptionError as exc:
        print(f"perftui sim: error: {_flag(exc.name)} {exc.problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not 0 <= args.port <= 65535:
        print(f"perftui sim: error: --port must be 0..65535, got {args.port}", file=sys.stderr)
        return EXIT_BAD_INPUT
    sim = SimServer(options, host=args.host, port=args.port)

    async def serve() -> int:
        try:
            await sim.start()
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            print(
                f"perftui sim: error: cannot listen on {args.host}:{args.port}: {reason}",
                file=sys.stderr,
            )
            return EXIT_COULD_NOT_RUN
        print(f"perftui sim: serving {sim.base_url} ({options.describe()})", flush=True)
        await _serve_until_done(sim, (signal.SIGINT, signal.SIGTERM))
        if sim.finish_reason in ("crash", "lifetime"):
            print(f"perftui sim: stopped by itself ({sim.finish_reason})", file=sys.stderr)
        return EXIT_OK

    try:
        with asyncio.Runner(loop_factory=_new_loop) as runner:
            return runner.run(serve())
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were in place
        return EXIT_OK
