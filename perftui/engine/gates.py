"""The legacy runner's pass/fail gates for one phase report.

The reasons keep the legacy runner's exact wording (`p95 2100.00ms > 2000.00ms`,
`internal_free drop N > M`, …): scripts grep them. The unrounded figures are in the phase
report beside them (`p95_ms`, `p95_tail_ms`, `heap_internal_drop`, …).
"""

from __future__ import annotations

from typing import Any

from perftui.config import GateLimits


def evaluate(report: dict[str, Any], t: GateLimits) -> list[str]:
    """Reasons the phase fails; an empty list means it passed."""
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
    return reasons
