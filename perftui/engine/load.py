"""The load itself: N clients, each with one keep-alive connection, walking a profile's requests.

Each client owns one `http1.Connection` (asyncio transport + httptools parser), so no client ever
waits on another's pool slot (the queueing that makes a shared httpx pool report invented
latency) and nothing is retried behind our back (the one resend, on the idle-close race, is
counted). Timing is `perf_counter()` from just before the request is written to the last byte of
its response; a request that fails is timed to its failure (a timeout at the timeout value).

In an open-loop phase (`rate` given) the clients are the connections of a paced load instead:
each request has an intended send time (`pacing`), and its latency runs from that time, so a
wait for a free connection is latency too, as wrk2 measures it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from perftui.engine.backoff import Backoff
from perftui.engine.http1 import Connection, ResponseError, build_request, host_header
from perftui.engine.metrics import OpenLoopStats, PhaseRecorder
from perftui.engine.pacing import ArrivalSchedule, ClientRamp, Pacer, Ramp, RampSchedule
from perftui.engine.schema import JsonObject, PhaseReport
from perftui.engine.timeline import window_spans
from perftui.profiles import Profile

if TYPE_CHECKING:
    from perftui.config import PhaseSettings

STOP_GRACE_S = 1.0  # after a stop request, in-flight requests get this long before cancellation
# The engine's own loop lag is sampled this often: the 4/s heartbeat ticker alone gives too few
# samples for a p99 in a short phase, and 50 wake-ups a second cost nothing.
LAG_PROBE_S = 0.02

RESET_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})


@dataclass(slots=True)
class PhaseOutcome:
    recorder: PhaseRecorder
    elapsed: float
    timed_out: bool
    stopped: bool
    snapshot_errors: list[str]
    handshakes: list[float]  # seconds of each TLS handshake of the phase (https only)
    check_problems: dict[str, str]  # path → its first failed response check


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
    pacer: Pacer | None = None,
    tls: ssl.SSLContext | None = None,
    handshakes: list[float] | None = None,
    problems: dict[str, str] | None = None,
    gate: ClientRamp | None = None,
    index: int = 0,
) -> None:
    """One client: one connection, round-robin over the profile's weighted request cycle.

    Closed loop (no `pacer`): the next request leaves when the previous answer is in. Open loop:
    when the pacer says, and the latency counts from the intended time.
    """
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or (443 if url.scheme == "https" else 80)
    header = host_header(host, port)
    plan = [
        (
            recorder.paths[r.path],
            build_request(r.method, r.path, header, r.headers, r.body),
            r.method == "HEAD",
            r.check,
        )
        for r in profile.sequence()
    ]
    n = len(plan)
    i = 0
    clock = time.perf_counter
    stalls = recorder.stalls
    conn = Connection(host, port, tls if url.scheme == "https" else None, any(p[3] for p in plan))
    backoff = Backoff()  # after a failure that came at once, instead of spinning
    try:
        while not stop.is_set():
            if pacer is None:
                if (t0 := clock()) >= deadline:
                    break
                if gate is not None and (pause := gate.wait_s(index, t0)) > 0:
                    await asyncio.sleep(pause)  # a client ramp: not this client's turn yet
                    continue
                sent_at = t0
            else:
                if (intended := await pacer.next()) is None:
                    break
                t0, sent_at = intended, clock()
            stalls.sent(sent_at)
            stats, raw, head, check = plan[i]
            i = (i + 1) % n
            try:
                async with asyncio.timeout(timeout):
                    status, t1 = await conn.send(raw, head)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                stalls.ended(clock())
                kind = classify(exc)
                spent = (sent_at + timeout if kind == "timeout" else clock()) - t0
                stats.record_failure(kind, int(spent * 1_000_000), sent_at, conn.resent)
                if kind != "timeout":
                    await asyncio.sleep(min(backoff.next_pause(), max(deadline - clock(), 0.0)))
                continue
            stalls.ended(t1)
            backoff.reset()
            if check is None:
                stats.record(status, int((t1 - t0) * 1_000_000), t1, conn.resent)
                continue
            problem = check.problem(status, conn.body, conn.body_len)
            stats.record(status, int((t1 - t0) * 1_000_000), t1, conn.resent, problem is None)
            if problem and problems is not None:
                problems.setdefault(stats.path, problem)
    finally:
        conn.close()
        if handshakes is not None:
            handshakes += conn.handshakes


async def _ticker(
    recorder: PhaseRecorder,
    start: float,
    clock: Callable[[], float],
    snapshot_interval_s: float,
    on_snapshot: Callable[[PhaseRecorder, JsonObject, float], None],
    snapshot_errors: list[str],
) -> None:
    """A snapshot every `snapshot_interval_s`, one exactly where the tail quarter begins; the
    first error of `on_snapshot` is kept in `snapshot_errors`, never raised."""
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


async def _lag_probe(recorder: PhaseRecorder, clock: Callable[[], float]) -> None:
    """How late the load's loop wakes, for the client-bound self-check."""
    while True:
        due = clock() + LAG_PROBE_S
        await asyncio.sleep(LAG_PROBE_S)
        recorder.check.note_lag(max(0.0, clock() - due))


async def run_phase(
    base_url: str,
    profile: Profile,
    clients: int,
    duration: float,
    timeout: float,
    budget_s: float,
    stop: asyncio.Event,
    on_snapshot: Callable[[PhaseRecorder, JsonObject, float], None],
    snapshot_interval_s: float = 0.25,
    rate: float | None = None,
    arrivals: str = "constant",
    tls: ssl.SSLContext | None = None,
    stages: Sequence[tuple[float, float]] | None = None,
) -> PhaseOutcome:
    """Drive one phase; never returns later than `budget_s` (the watchdog) plus a grace second.

    `rate` (req/s) makes it open loop, `clients` then being the most connections open at once.
    `stages` ramps the rate (open loop) or the active clients (closed loop) as `pacing.Ramp`.
    """
    clock = time.perf_counter
    start = clock()
    deadline = start + duration
    open_loop, pacer, gate = _pacing(rate, arrivals, stages, start, deadline, clock)
    recorder = PhaseRecorder(
        profile.paths, 0.75 * duration, duration, started=start, open_loop=open_loop
    )
    handshakes: list[float] = []
    problems: dict[str, str] = {}  # path → its first failed check
    args = (base_url, profile, recorder, deadline, timeout, stop, pacer, tls, handshakes, problems)
    tasks = [asyncio.create_task(_client(*args, gate, i)) for i in range(clients)]
    done_event = asyncio.Event()
    gathered = asyncio.gather(*tasks, return_exceptions=True)
    gathered.add_done_callback(lambda _: done_event.set())

    snapshot_errors: list[str] = []

    tick_task = asyncio.create_task(
        _ticker(recorder, start, clock, snapshot_interval_s, on_snapshot, snapshot_errors)
    )
    probe_task = asyncio.create_task(_lag_probe(recorder, clock))
    try:
        timed_out, stopped = await _await_clients(
            tasks, gathered, done_event, stop, budget_s, lambda: clock() - start < duration
        )
    finally:
        tick_task.cancel()
        probe_task.cancel()
        await asyncio.gather(tick_task, probe_task, return_exceptions=True)
    elapsed = clock() - start
    recorder.check.stop(clock())
    recorder.stalls.finish(clock())
    recorder.snapshot(elapsed)
    return PhaseOutcome(
        recorder, elapsed, timed_out, stopped, snapshot_errors, handshakes, problems
    )


def _pacing(
    rate: float | None,
    arrivals: str,
    stages: Sequence[tuple[float, float]] | None,
    start: float,
    deadline: float,
    clock: Callable[[], float],
) -> tuple[OpenLoopStats | None, Pacer | None, ClientRamp | None]:
    """How the phase's requests are paced: open loop (`rate`: intended send times, constant,
    Poisson or a ramp's), a closed loop whose active clients ramp (`stages`), or neither."""
    if rate:
        open_loop = OpenLoopStats(rate, arrivals)
        schedule = (
            RampSchedule(Ramp(stages), arrivals, start)
            if stages
            else ArrivalSchedule(rate, arrivals, start)
        )
        return open_loop, Pacer(schedule, deadline, open_loop, clock, asyncio.sleep), None
    if stages:
        return None, None, ClientRamp(Ramp(stages), start, deadline)
    return None, None, None


async def _await_clients(
    tasks: list[asyncio.Task[None]],
    gathered: asyncio.Future[list[object]],
    done_event: asyncio.Event,
    stop: asyncio.Event,
    budget_s: float,
    in_load_window: Callable[[], bool],
) -> tuple[bool, bool]:
    """Wait for the clients to finish, the watchdog's budget or a stop (then a grace period),
    and cancel what is left: (timed out, stopped inside the load window)."""
    timed_out = stopped = False
    watchdog = asyncio.create_task(asyncio.wait_for(done_event.wait(), budget_s))
    stop_wait = asyncio.create_task(stop.wait())
    await asyncio.wait({watchdog, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    if stop.is_set() and not done_event.is_set():
        # Cut short only if the stop came inside the load window; after it, the clients were
        # merely waiting for their last answers and the phase is complete.
        stopped = in_load_window()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done_event.wait(), STOP_GRACE_S)
    elif watchdog.done() and not done_event.is_set():
        timed_out = True
    for t in (watchdog, stop_wait, *tasks):
        t.cancel()
    await asyncio.gather(watchdog, stop_wait, gathered, return_exceptions=True)
    return timed_out, stopped


def checks_report(outcome: PhaseOutcome) -> PhaseReport:
    """`checks_failed` per path (how many, and the first one's reason), or nothing."""
    if not outcome.check_problems:
        return {}
    paths = outcome.recorder.paths
    return {
        "checks_failed": {
            path: {"count": paths[path].errors_by_kind["check"], "first": why}
            for path, why in sorted(outcome.check_problems.items())
        }
    }


def handshake_report(handshakes: list[float]) -> PhaseReport:
    """`tls_handshake_ms` of a phase (new connections only), or nothing for plain http."""
    if not handshakes:
        return {}
    ms = sorted(h * 1000 for h in handshakes)
    return {
        "tls_handshake_ms": {
            "count": len(ms),
            "mean": round(sum(ms) / len(ms), 3),
            "p50": round(ms[len(ms) // 2], 3),
            "max": round(ms[-1], 3),
        }
    }


def ramp_report(settings: PhaseSettings, timeline: JsonObject) -> PhaseReport:
    """`ramp` of a `--stages` phase: its unit, stages, and the mean target over each of the
    timeline's windows (beside the achieved `rps`, so capacity and compare can read both)."""
    if not settings.stages:
        return {}
    ramp = Ramp(settings.stages)
    targets = [
        round(ramp.mean(min(start, ramp.duration), min(end, ramp.duration)), 3)
        for start, end in window_spans(timeline)
    ]
    return {
        "ramp": {
            "unit": settings.stages_unit,
            "stages": [list(stage) for stage in settings.stages],
            "target": targets,
        }
    }
