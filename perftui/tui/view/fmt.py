"""Number formatting shared by the screens, so every table reads the same way."""

from __future__ import annotations

from perftui.engine.schema import Aggregate


def ms(value: float | None) -> str:
    """Milliseconds with a precision that suits their size; '-' when unknown."""
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"


def count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def duration(seconds: float | None) -> str:
    """`1h02m`, `4m05s` or `12s`: short enough for a status line."""
    if seconds is None:
        return "-"
    s = max(0, round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def heap(value: int | None) -> str:
    """Bytes as KiB (device heaps are a few hundred KiB)."""
    return "-" if value is None else f"{value / 1024:,.1f} KiB"


def median(agg: Aggregate, metric: str) -> float | None:
    """The median of one aggregated metric (`aggregated[key][metric]['median']`)."""
    value = agg.get(metric)
    return value.get("median") if isinstance(value, dict) else None


def short_stamp(text: str | None) -> str:
    """`2026-11-23T10:46:25Z` → `2026-11-23 10:46` (the list needs minutes, not seconds)."""
    if not text:
        return "-"
    return text.replace("T", " ")[:16]


def clip(text: str, width: int) -> str:
    """Cut the middle out of a long path (`/query-typed?q…true`): both ends say the most."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]
