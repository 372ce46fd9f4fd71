"""What a phase report says about how far to trust it, in words: shared by the headless
printer, the run's Markdown summary and the suite's log (kept free of heavy imports: the CLI
process loads it at start)."""

from __future__ import annotations

from perftui.engine.schema import PhaseReport

CLIENT_BOUND_NOTE = "client-bound: these numbers describe perftui, not the device"
CO_KEYS = ("p50_ms", "p95_ms", "p99_ms", "p999_ms")
CO_WHY = (
    "corrected for coordinated omission: closed-loop clients stop sending while the device is "
    "slow, so the requests they would have sent are counted at their expected interval (as wrk)"
)


def co_differs(report: PhaseReport, by: float = 0.10) -> bool:
    """Whether a closed-loop phase's corrected percentiles differ from the legacy ones by more
    than `by`: only then are they worth a reader's attention."""
    co = report.get("co_corrected") or {}
    for key in CO_KEYS:
        legacy, corrected = report.get(key), co.get(key)
        if legacy and corrected is not None and abs(corrected - legacy) > by * legacy:
            return True
    return False


def co_text(report: PhaseReport) -> str:
    co = report["co_corrected"]
    return " ".join(
        f"{k.removesuffix('_ms')} {report.get(k):g}→{co[k]:g}" for k in CO_KEYS if co.get(k)
    )
