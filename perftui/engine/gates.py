"""The legacy runner's pass/fail gates for one phase report."""

from __future__ import annotations

from typing import Any

from perftui.config import Thresholds


def evaluate(report: dict[str, Any], t: Thresholds, max_stall_ms: float = 0.0) -> list[str]:
    """Reasons the phase fails; an empty list means it passed. `max_stall_ms` 0 = no stall gate."""
    reasons: list[str] = []
    if report.get("timed_out"):
        reasons.append(f"watchdog: phase exceeded its {report.get('watchdog_budget_s')} s budget")
    stopped = bool(report.get("stopped"))
    if stopped:
        reasons.append("stopped before the phase finished")
    error_rate = report.get("error_rate")
    if error_rate is not None and error_rate > t.max_error_rate:
        reasons.append(f"error_rate {error_rate:.2f}% > {t.max_error_rate:g}%")
    p95, p99, tail = report.get("p95_ms"), report.get("p99_ms"), report.get("p95_tail_ms")
    if p95 is not None and p95 > t.max_p95_ms:
        reasons.append(f"p95 {p95:.1f} ms > {t.max_p95_ms:g} ms")
    if p99 is not None and p99 > t.max_p99_ms:
        reasons.append(f"p99 {p99:.1f} ms > {t.max_p99_ms:g} ms")
    if report.get("tail_samples") == 0 and report.get("requests_total") and not stopped:
        # No answer at all in the last quarter (a device that hung late): no tail p95 to judge,
        # which must not read as a healthy tail.
        reasons.append("no response completed in the last quarter of the phase")
    if p95 and tail is not None and tail / p95 > t.max_tail_p95_ratio:
        reasons.append(
            f"tail p95 {tail:.1f} ms is {tail / p95:.2f}× p95 (> {t.max_tail_p95_ratio:g}×)"
        )
    internal, psram = report.get("heap_internal_drop"), report.get("heap_psram_drop")
    if internal is not None and internal > t.max_internal_free_drop:
        reasons.append(f"internal heap dropped {internal} B > {t.max_internal_free_drop} B")
    if psram is not None and psram > t.max_psram_free_drop:
        reasons.append(f"PSRAM dropped {psram} B > {t.max_psram_free_drop} B")
    longest = (report.get("stalls") or {}).get("longest_ms")
    if max_stall_ms > 0 and longest is not None and longest > max_stall_ms:
        reasons.append(f"stall {longest:.0f}ms > {max_stall_ms:g}ms")
    return reasons
