"""HDR histograms of latency in µs, and the fast ways the engine reads them.

hdrh walks its 23,552 buckets in Python for a reset, a percentile or a mean; the load's event loop
would feel that at every heartbeat, so the counters are read through numpy views here, and mean
and stdev come from exact running sums (`Moments`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: no request outlives that
SIGNIFICANT_DIGITS = 3  # 0.1 % resolution: far inside the 5 % fidelity target
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def encode(hist: HdrHistogram) -> str:
    """Compressed base64 form (HdrHistogram's own format) for the run record."""
    data = hist.encode()
    return data.decode("ascii") if isinstance(data, bytes) else str(data)


def decode(text: str) -> HdrHistogram:
    return HdrHistogram.decode(text.encode("ascii") if isinstance(text, str) else text)


def ms(us: float) -> float:
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
    return tuple(ms(v) for v in percentile_values(hist, (50.0, 95.0, 99.0), scratch))


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
        "p50_ms": ms(p50),
        "p90_ms": ms(p90),
        "p95_ms": ms(p95),
        "p99_ms": ms(p99),
        "p999_ms": ms(p999),
        "max_ms": ms(hist.get_max_value()),
        "min_ms": ms(hist.get_min_value()),
        "mean_ms": ms(moments.mean_us),
        "stdev_ms": ms(moments.stdev_us),
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
