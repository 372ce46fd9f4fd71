"""The legacy runner's pass/fail gates for one phase report.

The reasons keep the legacy runner's exact wording (`p95 2100.00ms > 2000.00ms`,
`internal_free drop N > M`, …): scripts grep them. The unrounded figures are in the phase
report beside them (`p95_ms`, `p95_tail_ms`, `heap_internal_drop`, …).
"""

from __future__ import annotations

from perftui.config import GateLimits
from perftui.engine.schema import PhaseReport


def evaluate(report: PhaseReport, t: GateLimits, max_stall_ms: float = 0.0) -> list[str]:
    """Reasons the phase fails; an empty list means it passed. `max_stall_ms` 0 = no stall gate."""
    reasons: list[str] = []
    if report.get("timed_out"):
        reasons.append(f"watchdog: phase exceeded its {report.get('watchdog_budget_s')} s budget")
    stopped = bool(report.get("stopped"))
    if stopped:
        reasons.append("stopped before the phase finished")
    error_rate = report.get("error_rate")
    if error_rate is not None and error_rate > t.max_error_rate:
        reasons.append(f"error_rate {error_rate:.2f}% > {t.max_error_rate:.2f}%")
    p95, p99, tail = report.get("p95_ms"), report.get("p99_ms"), report.get("p95_tail_ms")
    if p95 is not None and p95 > t.max_p95_ms:
        reasons.append(f"p95 {p95:.2f}ms > {t.max_p95_ms:.2f}ms")
    if p99 is not None and p99 > t.max_p99_ms:
        reasons.append(f"p99 {p99:.2f}ms > {t.max_p99_ms:.2f}ms")
    if report.get("tail_samples") == 0 and report.get("requests_total") and not stopped:
        # No answer at all in the last quarter (a device that hung late): no tail p95 to judge,
        # which must not read as a healthy tail.
        reasons.append("no response completed in the last quarter of the phase")
    if p95 and tail is not None and tail / p95 > t.max_tail_p95_ratio:
        reasons.append(f"tail ratio {tail / p95:.2f} > {t.max_tail_p95_ratio:.2f}")
    internal, psram = report.get("heap_internal_drop"), report.get("heap_psram_drop")
    if internal is not None and internal > t.max_internal_free_drop:
        reasons.append(f"internal_free drop {internal} > {t.max_internal_free_drop}")
    if psram is not None and psram > t.max_psram_free_drop:
        reasons.append(f"psram_free drop {psram} > {t.max_psram_free_drop}")
    slope = report.get("heap_slope_b_per_h")
    if t.max_heap_slope is not None and slope is not None and slope < -t.max_heap_slope:
        reasons.append(f"heap slope {slope:.0f} B/h < {-t.max_heap_slope:.0f} B/h")
    longest = (report.get("stalls") or {}).get("longest_ms")
    if max_stall_ms > 0 and longest is not None and longest > max_stall_ms:
        reasons.append(f"stall {longest:.0f}ms > {max_stall_ms:g}ms")
    return reasons


HEAP_SLOPE_MIN_SAMPLES = 3


def heap_slope_per_hour(fit: RunningSlope) -> float | None:
    """Least-squares slope of free heap over time, in bytes/hour, from every poll of the phase.

    A fit over every poll, not before → after: a slow leak under noisy allocations shows as a
    steady slope long before the drop gate trips. None with fewer than three samples or no
    time spread (a slope of two points is just their difference).
    """
    slope_per_s = fit.slope()
    return None if slope_per_s is None else round(slope_per_s * 3600.0, 1)


class RunningSlope:
    """Least-squares slope of y over t, updated one sample at a time in constant memory.

    The same fit as numpy.polyfit(t, y, 1) over every sample of the run (a soak's heap polls
    would otherwise grow without bound), kept with Welford's centred sums so hours of seconds
    against ~10⁵ bytes lose no precision.
    """

    def __init__(self) -> None:
        self.n = 0
        self._mean_t = self._mean_y = 0.0
        self._m2_t = self._c_ty = 0.0

    def add(self, t: float, y: float) -> None:
        self.n += 1
        dt = t - self._mean_t
        self._mean_t += dt / self.n
        self._mean_y += (y - self._mean_y) / self.n
        self._m2_t += dt * (t - self._mean_t)
        self._c_ty += dt * (y - self._mean_y)

    def slope(self) -> float | None:
        """dy/dt, or None before three samples or while t has not moved."""
        if self.n < HEAP_SLOPE_MIN_SAMPLES or self._m2_t <= 0:
            return None
        return self._c_ty / self._m2_t
