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
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: no request outlives that
SIGNIFICANT_DIGITS = 3  # 0.1 % resolution: far inside the 5 % fidelity target
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
ERROR_KINDS = ("timeout", "refused", "reset", "http_4xx", "http_5xx", "other", "check")
TIMELINE_MAX_POINTS = 300  # a phase of any length keeps at most this many windows in its record
TIMELINE_WINDOWS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
STALL_MIN_S = 0.2  # a stall is longer than max(this, STALL_P50_FACTOR × the running p50)
STALL_P50_FACTOR = 20
STALLS_AT_MAX = 1000  # offsets kept in the report; count/longest/total go on counting
# The engine's loop wakes later than this at its p90: it is the bottleneck. Not the p99: on a
# shared machine a few percent of wake-ups are late by being descheduled, whatever the load;
# a saturated loop is late on most of them.
CLIENT_BOUND_LAG_MS = 5.0
LAG_STAT = "p90"
CLIENT_BOUND_BUSY_PCT = 90.0  # or the load's thread was running/runnable nearly all the time
WITH_FAILURES = ((50.0, "p50_ms"), (95.0, "p95_ms"), (99.0, "p99_ms"), (99.9, "p999_ms"))
UNAVAILABLE_MIN_S = 0.5  # a shorter span without a success is a scattered error, not an outage
UNAVAILABLE_MEMORY = 256  # closed spans a late failure (a timeout) may still claim


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def encode(hist: HdrHistogram) -> str:
    """Compressed base64 form (HdrHistogram's own format) for the run record."""
    data = hist.encode()
    return data.decode("ascii") if isinstance(data, bytes) else str(data)


def decode(text: str) -> HdrHistogram:
    return HdrHistogram.decode(text.encode("ascii") if isinstance(text, str) else text)


def _ms(us: float) -> float:
    return round(us / 1000.0, 3)


def clear(hist: HdrHistogram) -> None:
    """hdrh's `reset()`, with the counters zeroed through a numpy view: hdrh zeroes the 23,552
    counters one by one in Python (~1.5 ms), too slow for every window of every path."""
    np.ctypeslib.as_array(hist.counts)[:] = 0
    hist.total_count = 0
    hist.min_value = sys.maxsize
    hist.max_value = 0
    hist.start_time_stamp_msec = sys.maxsize
    hist.end_time_stamp_msec = 0


def percentile_values(
    hist: HdrHistogram, percentiles: Sequence[float], scratch: np.ndarray | None = None
) -> list[int]:
    """hdrh's own percentile values (same target count, same bucket-to-value mapping), with the
    bucket walk done by numpy: hdrh walks the 23,552 buckets in Python, ~0.6 ms per call, which
    the load's event loop would feel at every heartbeat.

    `scratch` (an int64 array of the counts' length) takes the cumulative counts instead of a new
    184 KiB array: the engine calls this many times a second (see `PhaseRecorder`)."""
    counts = np.ctypeslib.as_array(hist.counts)
    cumulative = np.cumsum(counts, out=scratch)
    out = []
    for pct in percentiles:
        target = hist.get_target_count_at_percentile(pct)
        index = int(np.searchsorted(cumulative, target, side="left"))
        out.append(hist.get_highest_equivalent_value(hist.get_value_from_index(index)))
    return out


def quick_percentiles_ms(
    hist: HdrHistogram, scratch: np.ndarray | None = None
) -> tuple[float | None, ...]:
    """(p50, p95, p99) in ms: the cheap subset a heartbeat needs (~0.2 ms)."""
    if hist.get_total_count() == 0:
        return (None, None, None)
    return tuple(_ms(v) for v in percentile_values(hist, (50.0, 95.0, 99.0), scratch))


def counts_at_or_below(
    hist: HdrHistogram, bounds_us: Sequence[int], scratch: np.ndarray | None = None
) -> list[int]:
    """How many recorded values are at or below each bound (to the histogram's precision): a
    Prometheus histogram's buckets from the HDR counts, in one numpy pass."""
    if hist.get_total_count() == 0:
        return [0] * len(bounds_us)
    cumulative = np.cumsum(np.ctypeslib.as_array(hist.counts), out=scratch)
    last = len(cumulative) - 1
    return [int(cumulative[min(hist._counts_index_for(b), last)]) for b in bounds_us]


def new_scratch() -> np.ndarray:
    """A buffer for `percentile_values(..., scratch)`: one per recorder, reused."""
    return np.empty(new_histogram().counts_len, dtype=np.int64)


def summary_ms(hist: HdrHistogram, moments: Moments) -> dict[str, float | None]:
    """p50…p99.9, max, min, mean and stdev in milliseconds; None where there are no samples.

    Mean and stdev come from exact running sums: hdrh computes them by walking every bucket in
    Python, which takes tens of milliseconds.
    """
    keys = ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms", "min_ms")
    if hist.get_total_count() == 0:
        return dict.fromkeys((*keys, "mean_ms", "stdev_ms"))
    p50, p90, p95, p99, p999 = percentile_values(hist, PERCENTILES)
    return {
        "p50_ms": _ms(p50),
        "p90_ms": _ms(p90),
        "p95_ms": _ms(p95),
        "p99_ms": _ms(p99),
        "p999_ms": _ms(p999),
        "max_ms": _ms(hist.get_max_value()),
        "min_ms": _ms(hist.get_min_value()),
        "mean_ms": _ms(moments.mean_us),
        "stdev_ms": _ms(moments.stdev_us),
    }


@dataclass(slots=True)
class Moments:
    """Exact count, mean and stdev of latencies via running sums (µs)."""

    n: int = 0
    total: float = 0.0
    squares: float = 0.0

    def merge(self, other: Moments) -> None:
        self.n += other.n
        self.total += other.total
        self.squares += other.squares

    @property
    def mean_us(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def stdev_us(self) -> float:
        if self.n < 2:
            return 0.0
        var = (self.squares - self.total * self.total / self.n) / (self.n - 1)
        return math.sqrt(max(var, 0.0))


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


def with_failures_ms(hist: HdrHistogram) -> dict[str, float]:
    """The `with_failures` entry: p50…p99.9 of every attempt, in ms."""
    values = percentile_values(hist, [pct for pct, _ in WITH_FAILURES])
    return {key: _ms(v) for (_, key), v in zip(WITH_FAILURES, values, strict=True)}


def timeline_window_s(duration: float) -> int:
    """The narrowest round window that keeps a phase of `duration` within the point budget."""
    need = max(duration, 0.0) / TIMELINE_MAX_POINTS
    return next((w for w in TIMELINE_WINDOWS_S if w >= need), TIMELINE_WINDOWS_S[-1])


class Timeline:
    """A phase's figures per window of a fixed width, chosen from the phase's duration so that
    an 8-hour soak and a 12-second burst both keep a few hundred points at most.

    It is fed the recorder's snapshot windows (each a fraction of a timeline window), so each
    window's percentiles come from its own histogram, not from merged percentiles. The verdicts
    use the windows as blocks of one run; the soak views draw them.
    """

    COLUMNS = ("t_s", "requests", "errors", "rps", "p50_ms", "p95_ms", "p99_ms", "heap_free")

    def __init__(self, duration: float) -> None:
        self.window_s = timeline_window_s(duration)
        self.columns: dict[str, list[Any]] = {c: [] for c in self.COLUMNS}
        self._hist = new_histogram()
        self._scratch = new_scratch()
        self._start = 0.0
        self._requests = self._errors = 0
        self._heap: int | None = None

    def add(self, window: HdrHistogram, requests: int, errors: int, elapsed: float) -> None:
        """One snapshot window ending at `elapsed` s, with its new requests and errors."""
        self._hist.add(window)
        self._requests += requests
        self._errors += errors
        if elapsed - self._start >= self.window_s - 1e-6:
            self._close(elapsed)

    def note_heap(self, free_bytes: int | None) -> None:
        """The device's free heap, polled during the window; the last value read is kept."""
        if free_bytes is not None:
            self._heap = free_bytes

    def _close(self, end: float) -> None:
        span = end - self._start
        if span <= 0 or (self._requests == 0 and self._heap is None):
            self._start = end
            return
        p50, p95, p99 = quick_percentiles_ms(self._hist, self._scratch)
        row = (round(end, 3), self._requests, self._errors, round(self._requests / span, 3))
        for key, value in zip(self.COLUMNS, (*row, p50, p95, p99, self._heap), strict=True):
            self.columns[key].append(value)
        clear(self._hist)
        self._requests = self._errors = 0
        self._heap = None
        self._start = end

    def to_dict(self, end: float) -> dict[str, Any]:
        """The record's form, with the last partial window closed at `end`."""
        if self._requests or self._heap is not None:
            self._close(max(end, self._start))
        columns = dict(self.columns)
        if all(v is None for v in columns["heap_free"]):
            del columns["heap_free"]
        return {"window_s": self.window_s, **columns}


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


@dataclass(slots=True)
class Stall:
    at_s: float  # offset from the phase start
    duration_s: float


class StallDetector:
    """Spans during which requests were outstanding and none completed (both loop modes).

    A closed-loop client stops sending while the device is frozen, so its percentiles hide the
    freeze; the span without any answer does not hide. O(1) per request: a counter of requests
    in flight and the time the current quiet span began.
    """

    def __init__(self, start: float) -> None:
        self.start = start
        self.threshold_s = STALL_MIN_S
        self.outstanding = 0
        self.quiet_since = start
        self.count = 0
        self.longest_s = 0.0
        self.total_s = 0.0
        self.at: list[float] = []
        self.new: list[Stall] = []  # found since the last `drain()`, for the live events

    def set_p50(self, p50_ms: float | None) -> None:
        """The phase's running p50 raises the bar: a slow device is not a stalling one."""
        if p50_ms is not None:
            self.threshold_s = max(STALL_MIN_S, STALL_P50_FACTOR * p50_ms / 1000)

    def sent(self, now: float) -> None:
        if self.outstanding == 0:
            self.quiet_since = now
        self.outstanding += 1

    def ended(self, now: float) -> None:
        """A request ended (an answer or a failure): the quiet span, if any, is over."""
        span = now - self.quiet_since
        if span > self.threshold_s:
            self._add(self.quiet_since, span)
        self.quiet_since = now
        self.outstanding = max(0, self.outstanding - 1)

    def finish(self, now: float) -> None:
        """At the phase's end, requests still unanswered may be inside a stall."""
        if self.outstanding and now - self.quiet_since > self.threshold_s:
            self._add(self.quiet_since, now - self.quiet_since)
            self.quiet_since = now

    def _add(self, began: float, span: float) -> None:
        stall = Stall(round(began - self.start, 3), span)
        self.count += 1
        self.total_s += span
        self.longest_s = max(self.longest_s, span)
        if len(self.at) < STALLS_AT_MAX:
            self.at.append(stall.at_s)
        self.new.append(stall)

    def drain(self) -> list[Stall]:
        out, self.new = self.new, []
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "longest_ms": _ms(self.longest_s * 1e6),
            "total_ms": _ms(self.total_s * 1e6),
            "at": list(self.at),
        }


def corrected_histogram(hist: HdrHistogram, expected_interval_us: int) -> HdrHistogram:
    """`hist` corrected for coordinated omission the way wrk 4 does it after a run: each
    recorded latency longer than the expected interval also stands for the requests the client
    would have sent meanwhile (hdrh's `record_corrected_value`, bucket by bucket)."""
    out = new_histogram()
    counts = np.ctypeslib.as_array(hist.counts)
    for index in np.flatnonzero(counts):
        value = hist.get_value_from_index(int(index))
        out.record_corrected_value(value, expected_interval_us, int(counts[index]))
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
        return {"max": _ms(self.lag.get_max_value()), "p90": _ms(p90), "p99": _ms(p99)}

    def client_bound(self, now: float) -> bool:
        lag = self.lag_ms()[LAG_STAT] or 0.0
        return lag > CLIENT_BOUND_LAG_MS or self.busy_pct(now) > CLIENT_BOUND_BUSY_PCT

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
        """The legacy phase report (every key of REFERENCE.md) plus what perftui adds.

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
        path_metrics: dict[str, Any] = {}
        every = new_histogram()
        for path, s in self.paths.items():
            pp = summary_ms(s.total, s.moments)
            path_metrics[path] = entry = {
                "requests_total": s.requests,
                "ok": s.ok,
                "err": s.err,
                "error_rate": _rate(s.err, s.requests),
                "rps_ok": round(s.ok / load_s, 3),
                "p50_ms": pp["p50_ms"],
                "p90_ms": pp["p90_ms"],
                "p95_ms": pp["p95_ms"],
                "p99_ms": pp["p99_ms"],
                "p999_ms": pp["p999_ms"],
                "max_ms": pp["max_ms"],
                "mean_ms": pp["mean_ms"],
                "status_counts": dict(sorted(s.status_counts.items())),
                "errors_by_kind": {k: s.errors_by_kind.get(k, 0) for k in ERROR_KINDS},
                "retries": s.retries,
            }
            if (path_every := s.with_failures()) is not None:
                entry["with_failures"] = with_failures_ms(path_every)
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
        (load time ÷ answers per client), as wrk 4 corrects.
        """
        ol = self.open_loop
        if ol is None:
            co = None
            if answers := self.overall.get_total_count():
                interval_us = round(load_s * 1e6 * max(clients, 1) / answers)
                corrected = corrected_histogram(self.overall, interval_us)
                p50, p95, p99, p999 = percentile_values(corrected, (50.0, 95.0, 99.0, 99.9))
                co = {"p50_ms": _ms(p50), "p95_ms": _ms(p95), "p99_ms": _ms(p99)}
                co["p999_ms"] = _ms(p999)
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
            "max_lag_ms": _ms(ol.max_lag_s * 1e6),
            "co_corrected": None,
        }


def _rate(err: int, total: int) -> float:
    """Error rate in percent; a phase with no request at all counts as 100 % failed."""
    return round(100.0 * err / total, 4) if total else 100.0
