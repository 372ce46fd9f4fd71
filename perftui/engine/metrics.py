"""Latency recording in HDR histograms: exact enough to trust, in memory that does not grow.

Each path records into its own *window* histogram (one `record_value` per response, the only
per-request cost). Every snapshot folds the windows into the cumulative per-path histograms, the
overall window (for the heartbeat's p50/p95/p99) and, once the last quarter of the phase has
begun, the tail histogram behind `p95_tail_ms`. So a phase of hours holds a fixed number of
histograms whatever its length.

A request that got no answer is timed too, into a per-path histogram of its own (a timeout at the
timeout value, a refusal or reset at the time it took to fail), so that the legacy percentiles
keep their meaning (answered requests) and `with_failures` gives the percentiles of every attempt.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from perftui.engine.hdr import (
    HIGHEST_US,
    LOWEST_US,
    Moments,
    clear,
    encode,
    ms,
    new_histogram,
    new_scratch,
    percentile_values,
    quick_percentiles_ms,
    summary_ms,
)
from perftui.engine.stalls import STALL_MIN_S, STALL_P50_FACTOR, StallDetector
from perftui.engine.timeline import Timeline

ERROR_KINDS = ("timeout", "refused", "reset", "http_4xx", "http_5xx", "other", "check")
# Client-bound: the load's thread was running or runnable nearly all the time (saturated), or
# its loop woke later than CLIENT_BOUND_LAG_MS at its p90 while busy at least
# CLIENT_BOUND_LAG_BUSY_PCT of the time (late because of its own queued work). Lag alone is not
# enough: at 200 req/s, with the load thread busy 17 % and both cores held by other processes,
# the loop woke 6.8 ms late at its p90 and the device was still the bottleneck (issue 20;
# bench/bench_selfcheck.py). Not the p99: a few percent of wake-ups are late whatever the load.
CLIENT_BOUND_LAG_MS = 5.0
LAG_STAT = "p90"
CLIENT_BOUND_BUSY_PCT = 90.0
CLIENT_BOUND_LAG_BUSY_PCT = 50.0
WITH_FAILURES = ((50.0, "p50_ms"), (95.0, "p95_ms"), (99.0, "p99_ms"), (99.9, "p999_ms"))
UNAVAILABLE_MIN_S = 0.5  # a shorter span without a success is a scattered error, not an outage
UNAVAILABLE_MEMORY = 256  # closed spans a late failure (a timeout) may still claim


class Availability:
    """`unavailable_s`: how long, within the load window, no request succeeded while some failed.

    The load window [phase start, end of load] is cut at every successful answer (2xx/3xx, at
    the time its last byte arrived). A span between two successes (or from the phase's start to
    the first, or from the last to the end of the load) counts whole when it lasts at least
    `UNAVAILABLE_MIN_S` and a request *sent* within it failed (no answer, or an HTTP error). A
    failure belongs to the span it was sent in, so a timeout that fires seconds later, even after
    the load has ended, still marks the span in which the device stopped answering. Spans without
    a failure are the device being slow, not unavailable. Streaming, in bounded memory.
    """

    __slots__ = ("_failed", "_last_ok", "_total", "_unclaimed", "load_end", "start")

    def __init__(self, start: float, duration: float) -> None:
        self.start = start
        self.load_end = start + duration if duration > 0 else math.inf
        self._last_ok = start
        self._failed = False
        self._unclaimed: deque[tuple[float, float]] = deque(maxlen=UNAVAILABLE_MEMORY)
        self._total = 0.0

    def success(self, at: float) -> None:
        """A successful answer completed at `at` (perf_counter)."""
        if at <= self._last_ok:
            return  # another client's later success was recorded first: the span is closed
        span_end = min(at, self.load_end)
        if span_end - self._last_ok >= UNAVAILABLE_MIN_S:
            if self._failed:
                self._total += span_end - self._last_ok
            else:
                self._unclaimed.append((self._last_ok, span_end))
        self._last_ok = at
        self._failed = False

    def failure(self, sent_at: float) -> None:
        """A request sent at `sent_at` failed (possibly long after it was sent)."""
        if sent_at >= self._last_ok:
            self._failed = True
            return
        for i, (begin, end) in enumerate(self._unclaimed):
            if begin <= sent_at < end:
                self._total += end - begin
                del self._unclaimed[i]
                return

    def seconds(self, elapsed: float) -> float:
        """The total, with the open span closed at the end of the load (or at `elapsed`)."""
        end = min(self.start + elapsed, self.load_end)
        total = self._total
        if self._failed and end - self._last_ok >= UNAVAILABLE_MIN_S:
            total += end - self._last_ok
        return round(total, 3)


@dataclass(slots=True)
class PathStats:
    """Counters and histograms of one path within one phase."""

    path: str
    availability: Availability
    window: HdrHistogram = field(default_factory=new_histogram)
    total: HdrHistogram = field(default_factory=new_histogram)
    moments: Moments = field(default_factory=Moments)
    requests: int = 0
    ok: int = 0
    err: int = 0
    status_counts: Counter[str] = field(default_factory=Counter)
    errors_by_kind: Counter[str] = field(default_factory=Counter)
    failed: HdrHistogram = field(default_factory=new_histogram)  # requests without an answer
    retries: int = 0

    def record(
        self,
        status: int,
        latency_us: int,
        done_at: float,
        retries: int = 0,
        checked: bool | None = None,
    ) -> None:
        """A response arrived at `done_at` (perf_counter): 200–399 is ok, else an HTTP error.

        `retries`: how many times the request was re-sent to get it (the idle-close race).
        `checked`: the profile's response check passed (ok, whatever the status) or failed
        (an error of kind "check"); None = no check, the status decides.
        """
        self.requests += 1
        self.retries += retries
        self.status_counts[str(status)] += 1
        self.window.record_value(min(max(latency_us, LOWEST_US), HIGHEST_US))
        m = self.moments
        m.n += 1
        m.total += latency_us
        m.squares += latency_us * latency_us
        if checked if checked is not None else 200 <= status < 400:
            self.ok += 1
            self.availability.success(done_at)
        else:
            self.err += 1
            self.availability.failure(done_at - latency_us / 1_000_000)
            if checked is False:
                self.errors_by_kind["check"] += 1
            elif 400 <= status < 500:
                self.errors_by_kind["http_4xx"] += 1
            elif 500 <= status < 600:
                self.errors_by_kind["http_5xx"] += 1
            else:
                self.errors_by_kind["other"] += 1  # 101, or a status no HTTP server sends

    def record_failure(self, kind: str, latency_us: int, sent_at: float, retries: int = 0) -> None:
        """No response at all (timeout, refused, reset, …) for a request sent at `sent_at`.

        Timed apart from the answers (`latency_us`: the timeout for a timeout, else the time it
        took to fail), so the legacy percentiles stay those of answered requests.
        """
        self.requests += 1
        self.err += 1
        self.retries += retries
        self.errors_by_kind[kind] += 1
        self.failed.record_value(min(max(latency_us, LOWEST_US), HIGHEST_US))
        self.availability.failure(sent_at)

    def with_failures(self) -> HdrHistogram | None:
        """Every attempt's latency, answered or not; None when every request was answered."""
        if not self.failed.get_total_count():
            return None
        every = new_histogram()
        every.add(self.total)
        every.add(self.failed)
        return every

    def report(self, load_s: float) -> dict[str, Any]:
        """The path's entry in the phase report (`path_metrics`), rates per second of load."""
        pp = summary_ms(self.total, self.moments)
        entry: dict[str, Any] = {
            "requests_total": self.requests,
            "ok": self.ok,
            "err": self.err,
            "error_rate": _rate(self.err, self.requests),
            "rps_ok": round(self.ok / load_s, 3),
            "p50_ms": pp["p50_ms"],
            "p90_ms": pp["p90_ms"],
            "p95_ms": pp["p95_ms"],
            "p99_ms": pp["p99_ms"],
            "p999_ms": pp["p999_ms"],
            "max_ms": pp["max_ms"],
            "mean_ms": pp["mean_ms"],
            "status_counts": dict(sorted(self.status_counts.items())),
            "errors_by_kind": {k: self.errors_by_kind.get(k, 0) for k in ERROR_KINDS},
            "retries": self.retries,
        }
        if (every := self.with_failures()) is not None:
            entry["with_failures"] = with_failures_ms(every)
        return entry


def with_failures_ms(hist: HdrHistogram) -> dict[str, float]:
    """The `with_failures` entry: p50…p99.9 of every attempt, in ms."""
    values = percentile_values(hist, [pct for pct, _ in WITH_FAILURES])
    return {key: ms(v) for (_, key), v in zip(WITH_FAILURES, values, strict=True)}


@dataclass(slots=True)
class OpenLoopStats:
    """What an open-loop phase's pacer did: sends against the target, and how late they left."""

    target_rps: float
    arrivals: str
    sent: int = 0
    late: int = 0
    max_lag_s: float = 0.0

    def note_send(self, lag_s: float, late: bool) -> None:
        self.sent += 1
        self.late += late
        if lag_s > self.max_lag_s:
            self.max_lag_s = lag_s


def corrected_histogram(
    hist: HdrHistogram, expected_interval_us: int, above_us: int = 0
) -> HdrHistogram:
    """`hist` corrected for coordinated omission the way wrk 4 does it after a run: each
    recorded latency longer than `above_us` (and than the expected interval) also stands for the
    requests the client would have sent meanwhile (hdrh's `record_corrected_value`, bucket by
    bucket). wrk corrects every latency above the interval; but a closed loop's interval is its
    mean latency, so ordinary jitter then adds samples *below* the plain ones (a p50 of 44 ms
    "corrected" to 38.7 with no stall at all): only answers as long as a stall are corrected."""
    out = new_histogram()
    counts = np.ctypeslib.as_array(hist.counts)
    for index in np.flatnonzero(counts):
        value = hist.get_value_from_index(int(index))
        if value > above_us:
            out.record_corrected_value(value, expected_interval_us, int(counts[index]))
        else:
            out.record_value(value, int(counts[index]))
    return out


def _thread_busy_s() -> float | None:
    """Seconds this thread spent on a CPU *or waiting for one* (Linux schedstat), None elsewhere.

    A loop that always has work is runnable all the time; on a shared machine it may get only
    part of a core, so its CPU time alone would not show that it is the bottleneck.
    """
    try:
        with open("/proc/thread-self/schedstat") as f:
            on_cpu, waiting = f.read().split()[:2]
    except (OSError, ValueError):
        return None
    return (int(on_cpu) + int(waiting)) / 1e9


class SelfCheck:
    """Is the generator itself the bottleneck? Its event loop's lag and its CPU say so.

    The lag is how late a timer wakes: a loop that is busy with the load answers late, and then
    every latency it measures includes perftui's own queueing. Busy is the share of the wall
    time the loop's thread was running or runnable: near 100 % it never waited for the device.
    Create it on the load's thread.
    """

    def __init__(
        self,
        start: float,
        cpu_clock: Callable[[], float] = time.process_time,
        busy_clock: Callable[[], float | None] = _thread_busy_s,
    ) -> None:
        self.start = start
        self.cpu_clock = cpu_clock
        self.busy_clock = busy_clock
        self.cpu_start = cpu_clock()
        self.busy_start = busy_clock()
        self.lag = new_histogram()
        self._end: tuple[float, float, float | None] | None = None

    def stop(self, now: float) -> None:
        """The load is over: what follows (telemetry reads, the record) is not the load's."""
        self._end = (now, self.cpu_clock(), self.busy_clock())

    def note_lag(self, lateness_s: float) -> None:
        self.lag.record_value(min(max(int(lateness_s * 1e6), LOWEST_US), HIGHEST_US))

    def _read(self, now: float) -> tuple[float, float, float | None]:
        return self._end or (now, self.cpu_clock(), self.busy_clock())

    def _pct(self, used: float, wall: float) -> float:
        return 100.0 * used / wall if wall > 0 else 0.0

    def cpu_pct(self, now: float) -> float:
        end, cpu, _ = self._read(now)
        return self._pct(cpu - self.cpu_start, end - self.start)

    def busy_pct(self, now: float) -> float:
        """Running or runnable share of the loop's thread; its CPU share where that is unknown."""
        end, _, busy = self._read(now)
        if busy is None or self.busy_start is None:
            return self.cpu_pct(now)
        return self._pct(busy - self.busy_start, end - self.start)

    def lag_ms(self) -> dict[str, float | None]:
        if not self.lag.get_total_count():
            return {"max": None, "p90": None, "p99": None}
        p90, p99 = percentile_values(self.lag, (90.0, 99.0))
        return {"max": ms(self.lag.get_max_value()), "p90": ms(p90), "p99": ms(p99)}

    def client_bound(self, now: float) -> bool:
        """perftui itself limited the phase: its load thread saturated (see the constants)."""
        lag, busy = self.lag_ms()[LAG_STAT] or 0.0, self.busy_pct(now)
        late = lag > CLIENT_BOUND_LAG_MS and busy >= CLIENT_BOUND_LAG_BUSY_PCT
        return late or busy > CLIENT_BOUND_BUSY_PCT

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "client_bound": self.client_bound(now),
            "loop_lag_ms": self.lag_ms(),
            "engine_cpu_pct": round(self.cpu_pct(now), 1),
            "loop_busy_pct": round(self.busy_pct(now), 1),
        }


class PhaseRecorder:
    """All measurements of one phase; `snapshot()` is called from the same event loop.

    `open_loop` is set for a phase paced at a rate; a closed-loop phase is also reported
    corrected for coordinated omission.
    """

    def __init__(
        self,
        paths: list[str],
        tail_start_s: float,
        duration: float = 0.0,
        started: float | None = None,
        open_loop: OpenLoopStats | None = None,
    ) -> None:
        """`started`: the phase's start on the perf_counter clock (default: now)."""
        start = time.perf_counter() if started is None else started
        self.availability = Availability(start, duration)
        self.paths = {p: PathStats(p, self.availability) for p in dict.fromkeys(paths)}
        self.open_loop = open_loop
        self.stalls = StallDetector(start)
        self.check = SelfCheck(start)
        self.tail_start_s = tail_start_s
        self.tail = new_histogram()
        self.overall = new_histogram()
        # Reused at every snapshot, never reallocated: a fresh 184 KiB counts array per path per
        # snapshot (plus numpy's cumulative sums) is freed and allocated again dozens of times a
        # second at 5 heartbeats/s, which glibc's heap served by growing (RSS rose ~55 MB/h).
        self._window = new_histogram()
        self.scratch = new_scratch()
        self.timeline = Timeline(duration)
        self._last_requests = 0
        self._last_errors = 0
        self._last_elapsed = 0.0

    def snapshot(self, elapsed: float) -> dict[str, Any]:
        """Fold the windows into the totals and describe the window that just closed."""
        window = self._window
        clear(window)
        in_tail = self._last_elapsed >= self.tail_start_s - 1e-6
        for stats in self.paths.values():
            if stats.window.get_total_count():
                window.add(stats.window)
                stats.total.add(stats.window)
                clear(stats.window)
        self.overall.add(window)
        if in_tail:
            self.tail.add(window)
        requests = sum(s.requests for s in self.paths.values())
        errors = sum(s.err for s in self.paths.values())
        span = elapsed - self._last_elapsed
        rps_now = (requests - self._last_requests) / span if span > 0 else 0.0
        new_requests, new_errors = requests - self._last_requests, errors - self._last_errors
        self.timeline.add(window, new_requests, new_errors, elapsed)
        self._last_requests, self._last_errors, self._last_elapsed = requests, errors, elapsed
        w50, w95, w99 = quick_percentiles_ms(window, self.scratch)
        c50, c95, c99 = quick_percentiles_ms(self.overall, self.scratch)
        self.stalls.set_p50(c50)
        return {
            "requests": requests,
            "ok": requests - errors,
            "errors": errors,
            "rps_now": rps_now,
            "window_p50_ms": w50,
            "window_p95_ms": w95,
            "window_p99_ms": w99,
            "p50_ms": c50,
            "p95_ms": c95,
            "p99_ms": c99,
        }

    def errors_by_kind(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for s in self.paths.values():
            total.update(s.errors_by_kind)
        return {k: total.get(k, 0) for k in ERROR_KINDS}

    def status_counts(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for s in self.paths.values():
            total.update(s.status_counts)
        return dict(sorted(total.items()))

    def report(self, clients: int, duration: float, elapsed: float) -> dict[str, Any]:
        """The legacy runner's phase report, every key of it, plus what perftui adds.

        Rates are per second of *load*: requests are only sent until the phase's duration, so the
        wait for the last in-flight answers (up to a request timeout) does not dilute them.
        """
        elapsed = max(elapsed, 1e-9)
        load_s = min(elapsed, duration) if duration > 0 else elapsed
        requests = sum(s.requests for s in self.paths.values())
        ok = sum(s.ok for s in self.paths.values())
        err = requests - ok
        moments = Moments()
        for stats in self.paths.values():
            moments.merge(stats.moments)
        overall = summary_ms(self.overall, moments)
        tail_p95 = quick_percentiles_ms(self.tail)[1]
        path_metrics = {path: s.report(load_s) for path, s in self.paths.items()}
        every = new_histogram()  # every failed attempt, then every answer: when some failed
        for s in self.paths.values():
            if s.failed.get_total_count():
                every.add(s.failed)
        extra: dict[str, Any] = {}
        if every.get_total_count():
            every.add(self.overall)
            extra["with_failures"] = with_failures_ms(every)
        return {
            "clients": clients,
            "duration": duration,
            "elapsed": round(elapsed, 3),
            "requests_total": requests,
            "ok": ok,
            "err": err,
            "error_rate": _rate(err, requests),
            "unavailable_s": self.availability.seconds(elapsed),
            "retries": sum(s.retries for s in self.paths.values()),
            "rps_total": round(requests / load_s, 3),
            "rps_ok": round(ok / load_s, 3),
            **overall,
            **extra,
            "p95_tail_ms": tail_p95,
            "tail_samples": self.tail.get_total_count(),
            "status_counts": self.status_counts(),
            "errors_by_kind": self.errors_by_kind(),
            "path_metrics": path_metrics,
            "histogram": encode(self.overall) if self.overall.get_total_count() else None,
            "timeline": self.timeline.to_dict(elapsed),
            **self._loop_report(clients, requests, load_s),
            "stalls": self.stalls.to_dict(),
            **self.check.to_dict(self.stalls.start + elapsed),
        }

    def _loop_report(self, clients: int, requests: int, load_s: float) -> dict[str, Any]:
        """Open or closed loop: the target beside what was achieved, or the corrected tail.

        The expected interval of a closed-loop client is the phase's mean interval per client
        (load time ÷ answers per client), as wrk 4 corrects; only answers longer than a stall
        (`StallDetector`'s threshold for the phase's p50) are corrected, so the corrected
        percentiles equal the plain ones in a phase where no client waited that long.
        """
        ol = self.open_loop
        if ol is None:
            co = None
            if answers := self.overall.get_total_count():
                interval_us = round(load_s * 1e6 * max(clients, 1) / answers)
                p50_us = self.overall.get_value_at_percentile(50.0)
                above_us = round(max(STALL_MIN_S * 1e6, STALL_P50_FACTOR * p50_us))
                corrected = corrected_histogram(self.overall, interval_us, above_us)
                p50, p95, p99, p999 = percentile_values(corrected, (50.0, 95.0, 99.0, 99.9))
                co = {"p50_ms": ms(p50), "p95_ms": ms(p95), "p99_ms": ms(p99)}
                co["p999_ms"] = ms(p999)
            return {
                "mode": "closed",
                "target_rps": None,
                "achieved_rps": round(requests / load_s, 3),
                "late": None,
                "max_lag_ms": None,
                "co_corrected": co,
            }
        return {
            "mode": "open",
            "arrivals": ol.arrivals,
            "target_rps": ol.target_rps,
            "achieved_rps": round(ol.sent / load_s, 3),
            "late": ol.late,
            "max_lag_ms": ms(ol.max_lag_s * 1e6),
            "co_corrected": None,
        }


def _rate(err: int, total: int) -> float:
    """Error rate in percent; a phase with no request at all counts as 100 % failed."""
    return round(100.0 * err / total, 4) if total else 100.0
