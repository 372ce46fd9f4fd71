"""The load itself: N clients, each with one keep-alive connection, walking a profile's requests.

Each client owns one `http1.Connection` (asyncio transport + httptools parser), so no client ever
waits on another's pool slot (the queueing that makes a shared httpx pool report invented
latency) and nothing is retried behind our back (the one resend, on the idle-close race, is
counted). Timing is `perf_counter()` from just before the request is written to the last byte of
its response; a request that fails is timed to its failure (a timeout at the timeout value).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from perftui.engine.backoff import Backoff
from perftui.engine.http1 import Connection, ResponseError, build_request, host_header
from perftui.engine.metrics import PhaseRecorder
from perftui.profiles import Profile

STOP_GRACE_S = 1.0  # after a stop request, in-flight requests get this long before cancellation

RESET_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})


@dataclass(slots=True)
class PhaseOutcome:
    recorder: PhaseRecorder
    elapsed: float
    timed_out: bool
    stopped: bool
    snapshot_errors: list[str]


def classify(exc: BaseException) -> str:
    """Map a failed request to one of the error kinds of `metrics.ERROR_KINDS`."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return "reset"
    if isinstance(exc, ResponseError | ssl.SSLError | socket.gaierror):
        return "other"
    if isinstance(exc, OSError):
        if exc.errno == errno.ECONNREFUSED:
            return "refused"
        if exc.errno == errno.ETIMEDOUT:
            return "timeout"
        if exc.errno in RESET_ERRNOS:
            return "reset"
    return "other"


async def _client(
    base_url: str,
    profile: Profile,
    recorder: PhaseRecorder,
    deadline: float,
    timeout: float,
    stop: asyncio.Event,
) -> None:
    """One client: one connection, round-robin over the profile's weighted request cycle."""
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or (443 if url.scheme == "https" else 80)
    header = host_header(host, port)
    plan = [
        (
            recorder.paths[r.path],
            build_request(r.method, r.path, header, r.headers, r.body),
            r.method == "HEAD",
        )
        for r in profile.sequence()
    ]
    n = len(plan)
    i = 0
    clock = time.perf_counter
    conn = Connection(host, port, tls=url.scheme == "https")
    backoff = Backoff()  # after a failure that came at once, instead of spinning
    try:
        while not stop.is_set() and clock() < deadline:
            stats, raw, head = plan[i]
            i = (i + 1) % n
            t0 = clock()
            try:
                async with asyncio.timeout(timeout):
                    status, t1 = await conn.send(raw, head)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                kind = classify(exc)
                spent = timeout if kind == "timeout" else clock() - t0
                stats.record_failure(kind, int(spent * 1_000_000), t0, conn.resent)
                if kind != "timeout":
                    await asyncio.sleep(min(backoff.next_pause(), max(deadline - clock(), 0.0)))
                continue
            backoff.reset()
            stats.record(status, int((t1 - t0) * 1_000_000), t1, conn.resent)
    finally:
        conn.close()


async def run_phase(
    base_url: str,
    profile: Profile,
    clients: int,
    duration: float,
    timeout: float,
    budget_s: float,
    stop: asyncio.Event,
    on_snapshot: Callable[[PhaseRecorder, dict[str, Any], float], None],
    snapshot_interval_s: float = 0.25,
) -> PhaseOutcome:
    """Drive one phase; never returns later than `budget_s` (the watchdog) plus a grace second."""
    recorder = PhaseRecorder(profile.paths, tail_start_s=0.75 * duration, duration=duration)
    clock = time.perf_counter
    start = clock()
    deadline = start + duration
    tasks = [
        asyncio.create_task(_client(base_url, profile, recorder, deadline, timeout, stop))
        for _ in range(clients)
    ]
    done_event = asyncio.Event()
    gathered = asyncio.gather(*tasks, return_exceptions=True)
    gathered.add_done_callback(lambda _: done_event.set())

    snapshot_errors: list[str] = []

    async def ticker() -> None:
        next_tick = snapshot_interval_s
        tail_at = recorder.tail_start_s
        while True:
            target = next_tick
            if 0 < tail_at < target and clock() - start < tail_at:
                target = tail_at  # close a window exactly where the tail quarter begins
            while (now := clock() - start) < target:  # uvloop's timers may fire a little early
                await asyncio.sleep(target - now)
            elapsed = clock() - start
            snap = recorder.snapshot(elapsed)
            try:
                on_snapshot(recorder, snap, elapsed)
            except Exception as exc:  # a consumer's bug must not stop the measurement
                if not snapshot_errors:
                    snapshot_errors.append(f"{type(exc).__name__}: {exc}")
            if target == next_tick:
                next_tick += snapshot_interval_s

    tick_task = asyncio.create_task(ticker())
    timed_out = stopped = False
    try:
        watchdog = asyncio.create_task(asyncio.wait_for(done_event.wait(), budget_s))
        stop_wait = asyncio.create_task(stop.wait())
        await asyncio.wait({watchdog, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set() and not done_event.is_set():
            # Cut short only if the stop came inside the load window; after it, the clients were
            # merely waiting for their last answers and the phase is complete.
            stopped = clock() - start < duration
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done_event.wait(), STOP_GRACE_S)
        elif watchdog.done() and not done_event.is_set():
            timed_out = True
        for t in (watchdog, stop_wait, *tasks):
            t.cancel()
        await asyncio.gather(watchdog, stop_wait, gathered, return_exceptions=True)
    finally:
        tick_task.cancel()
        await asyncio.gather(tick_task, return_exceptions=True)
    elapsed = clock() - start
    recorder.snapshot(elapsed)
    return PhaseOutcome(recorder, elapsed, timed_out, stopped, snapshot_errors)
