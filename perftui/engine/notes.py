"""What a phase report says about how far to trust it, in words: shared by the headless
printer, the run's Markdown summary, the suite's log (kept free of heavy imports: the CLI
process loads it at start) and the TUI."""

from __future__ import annotations

from perftui.engine.schema import PhaseReport

CLIENT_BOUND_NOTE = "client-bound: these numbers describe perftui, not the device"
CO_KEYS = ("p50_ms", "p95_ms", "p99_ms", "p999_ms")
CO_WHY = (
    "closed-loop clients send nothing while an answer is late, so the requests they would have "
    "sent are counted at their expected interval (as wrk)"
)


def _moved(report: PhaseReport, by: float) -> list[tuple[str, float, float]]:
    """(percentile, plain, corrected) where the correction moved it by more than `by`: only
    then is it worth a reader's attention."""
    co = report.get("co_corrected") or {}
    out = []
    for key in CO_KEYS:
        plain, corrected = report.get(key), co.get(key)
        if plain and corrected is not None and abs(corrected - plain) > by * plain:
            out.append((key.removesuffix("_ms"), float(plain), float(corrected)))
    return out


def co_note(report: PhaseReport, by: float = 0.10) -> str | None:
    """The one text every viewer shows for the corrected percentiles: those that moved by more
    than `by`, plain → corrected, and which way; None when none did (no note, no row)."""
    moved = _moved(report, by)
    if not moved:
        return None
    parts = ", ".join(f"{q} {plain:g}→{fixed:g}" for q, plain, fixed in moved)
    up = [fixed > plain for _, plain, fixed in moved]
    way = "higher" if all(up) else "lower" if not any(up) else "moved"
    return f"CO-corrected {parts} ms ({way}): {CO_WHY}"
