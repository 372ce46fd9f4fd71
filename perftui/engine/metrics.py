"""Latency recording in HDR histograms: exact enough to trust, in memory that does not grow.

Each path records into its own *window* histogram (one `record_value` per response, the only
per-request cost). Every snapshot folds the windows into the cumulative per-path histograms, the
overall window (for the heartbeat's p50/p95/p99) and, once the last quarter of the phase has
begun, the tail histogram behind `p95_tail_ms`. So a phase of hours holds a fixed number of
histograms whatever its length.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: no request outlives that
SIGNIFICANT_DIGITS = 3  # 0.1 % resolution: far inside the 5 % fidelity target
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
ERROR_KINDS = ("timeout", "refused", "reset", "http_4xx", "http_5xx", "other")
TIMELINE_MAX_POINTS = 300  # a phase of any length keeps at most this many windows in its record
TIMELINE_WINDOWS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


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


@dataclass(slots=True)
class PathStats:
    """Counters and histograms of one path within one phase."""

    path: str
    window: HdrHistogram = field(default_factory=new_histogram)
    total: HdrHistogram = field(default_factory=new_histogram)
    moments: Moments = field(default_factory=Moments)
    requests: int = 0
    ok: int = 0
    err: int = 0
    status_counts: Counter[str] = field(default_factory=Counter)
    errors_by_kind: Counter[str] = field(default_factory=Counter)

    def record(self, status: int, latency_us: int) -> None:
        """A response arrived: 200–399 is ok, anything else an HTTP error."""
        self.requests += 1
        self.status_counts[str(status)] += 1
        self.window.record_value(min(max(latency_us, LOWEST_US), HIGHEST_US))
        m = self.moments
        m.n += 1
        m.total += latency_us
        m.squares += latency_us * latency_us
        if 200 <= status < 400:
            self.ok += 1
        else:
            self.err += 1
            if 400 <= status < 500:
                self.errors_by_kind["http_4xx"] += 1
            elif 500 <= status < 600:
                self.errors_by_kind["http_5xx"] += 1
            else:
                self.errors_by_kind["other"] += 1  # 101, or a status no HTTP server sends

    def record_failure(self, kind: str) -> None:
        """No response at all (timeout, refused, reset, …): counted, not timed."""
        self.requests += 1
        self.err += 1
        self.errors_by_kind[kind] += 1


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


class PhaseRecorder:
    """All measurements of one phase; `snapshot()` is called from the same event loop."""

    def __init__(self, paths: list[str], tail_start_s: float, duration: float = 0.0) -> None:
        self.paths = {p: PathStats(p) for p in dict.fromkeys(paths)}
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
        for path, s in self.paths.items():
            pp = summary_ms(s.total, s.moments)
            path_metrics[path] = {
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
            }
        return {
            "clients": clients,
            "duration": duration,
            "elapsed": round(elapsed, 3),
            "requests_total": requests,
            "ok": ok,
            "err": err,
            "error_rate": _rate(err, requests),
            "rps_total": round(requests / load_s, 3),
            "rps_ok": round(ok / load_s, 3),
            **overall,
            "p95_tail_ms": tail_p95,
            "tail_samples": self.tail.get_total_count(),
            "status_counts": self.status_counts(),
            "errors_by_kind": self.errors_by_kind(),
            "path_metrics": path_metrics,
            "histogram": encode(self.overall) if self.overall.get_total_count() else None,
            "timeline": self.timeline.to_dict(elapsed),
        }


def _rate(err: int, total: int) -> float:
    """Error rate in percent; a phase with no request at all counts as 100 % failed."""
    return round(100.0 * err / total, 4) if total else 100.0
