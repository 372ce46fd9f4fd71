"""A phase's timeline (the record's `report["timeline"]` columns) drawn with plotext: latency,
rate, errors and heap over the phase, stalls marked; and A against B over time for Compare.

The record keeps at most a few hundred windows per phase whatever its length, so these draw the
whole phase as stored, with no resampling here.
"""

from __future__ import annotations

from typing import Any, cast

from perftui.engine.notes import co_note
from perftui.engine.schema import JsonObject, PhaseReport, RunRecord, Stalls

# What Compare's overlay can show, cycled with a key: (column, label, unit).
OVERLAY_METRICS = (
    ("p95_ms", "p95", "ms"),
    ("p99_ms", "p99", "ms"),
    ("p50_ms", "p50", "ms"),
    ("rps", "rps", "req/s"),
    ("errors", "errors per window", ""),
    ("heap_free", "free heap", "B"),
)
SIDE_COLOR = {"A": "blue", "B": "red"}
# Told apart by the glyph too, not by colour alone: A's lines are drawn in o, B's in x.
SIDE_MARKER = {"A": "o", "B": "x"}
OVERLAY_KEY = {s: f"{SIDE_COLOR[s]} {SIDE_MARKER[s]}" for s in SIDE_COLOR}


def phase_reports(record: RunRecord, key: str) -> list[tuple[int, PhaseReport]]:
    """(run index, phase report) of every run of `profile:phase` that has a timeline."""
    out: list[tuple[int, PhaseReport]] = []
    for run in record.get("raw_runs") or []:
        for res in run.get("results") or []:
            report = res.get("report") or {}
            if f"{res.get('profile')}:{res.get('phase')}" == key and report.get("timeline"):
                out.append((int(run.get("run_index") or len(out) + 1), report))
    return out


def _points(timeline: JsonObject, column: str) -> tuple[list[float], list[float]]:
    """(t, value) where the value was measured: a window without answers has no p95. A last
    window shorter than half the others (the phase's end cut it: 12 answers in 56 ms) is left
    out: its rate and percentiles come from a few answers and drew a spike or a cliff."""
    xs, ys = [], []
    ts, values = cast("list[float]", timeline.get("t_s") or []), timeline.get(column) or []
    window = timeline.get("window_s")
    if len(ts) >= 2 and isinstance(window, int | float) and ts[-1] - ts[-2] < window / 2:
        ts = ts[:-1]
    for t, v in zip(ts, cast("list[float | None]", values), strict=False):
        if v is not None:
            xs.append(t)
            ys.append(v)
    return xs, ys


def stall_offsets(report: PhaseReport) -> list[float]:
    stalls = cast("Stalls | None", report.get("stalls"))
    return list(stalls.get("at") or []) if isinstance(stalls, dict) else []


def _mark_stalls(plt: Any, report: PhaseReport) -> None:
    for at in stall_offsets(report):
        plt.vline(at, "red")


def draw_latency(plt: Any, report: PhaseReport, title: str) -> None:
    """p50/p95/p99 per window over the phase, with a red line at each stall."""
    timeline = report.get("timeline") or {}
    for column, label in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
        xs, ys = _points(timeline, column)
        if xs:
            plt.plot(xs, ys, label=label)
    _mark_stalls(plt, report)
    stalls = len(stall_offsets(report))
    plt.title(f"{title}: latency per {timeline.get('window_s', '?')} s window (ms)")
    if stalls:
        plt.title(f"{title}: latency (ms), {stalls} stall(s) marked in red")
    plt.xlabel("s into the phase")


def draw_rate(plt: Any, report: PhaseReport) -> None:
    """Requests/s and errors per window over the phase."""
    timeline = report.get("timeline") or {}
    xs, ys = _points(timeline, "rps")
    if xs:
        plt.plot(xs, ys, label="rps")
    ex, ey = _points(timeline, "errors")
    if any(ey):
        plt.bar(ex, ey, label="errors", color="red")
    _mark_stalls(plt, report)
    plt.title("requests/s per window" + (" · errors in red" if any(ey) else ""))


def draw_heap(plt: Any, report: PhaseReport) -> bool:
    """Free heap as polled during the phase; False when the phase had no heap polling."""
    xs, ys = _points(report.get("timeline") or {}, "heap_free")
    if not xs:
        return False
    plt.plot(xs, ys, label="free heap")
    slope = report.get("heap_slope_b_per_h")
    plt.title("free heap (B)" + (f" · slope {slope:+,.0f} B/h" if slope is not None else ""))
    return True


def draw_overlay(
    plt: Any, sides: dict[str, list[tuple[int, PhaseReport]]], key: str, metric: int
) -> bool:
    """Every run of A and of B on one time axis (A blue o, B red x) for one column; False when
    neither side has that column for `key`."""
    column, label, unit = OVERLAY_METRICS[metric % len(OVERLAY_METRICS)]
    drawn = False
    for side, runs in sides.items():
        for _, report in runs:
            xs, ys = _points(report.get("timeline") or {}, column)
            if xs:
                plt.plot(  # no legend: it sat on the top line, over B; the key line says it
                    xs, ys, color=SIDE_COLOR.get(side), marker=SIDE_MARKER.get(side)
                )
                drawn = True
    plt.title(f"{key}: {label}{f' ({unit})' if unit else ''} over the phase, every run, A vs B")
    plt.xlabel("s into the phase")
    return drawn


def phase_notes(report: PhaseReport) -> list[str]:
    """What a phase report adds beyond the legacy figures, in words: stalls, coordinated-
    omission-corrected percentiles where the correction moved them (`engine.notes.co_note`), a
    client-bound warning and the heap slope."""
    notes: list[str] = []
    stalls = cast("Stalls | None", report.get("stalls"))
    if isinstance(stalls, dict) and stalls.get("count"):
        notes.append(
            f"stalls {stalls['count']} (longest {stalls.get('longest_ms', 0) / 1000:.2f} s, "
            f"total {stalls.get('total_ms', 0) / 1000:.2f} s)"
        )
    if co := co_note(report):  # decided where every viewer's note is (engine.notes)
        notes.append(co)
    if report.get("client_bound"):
        notes.append("client-bound: these numbers describe perftui, not the device")
    if report.get("target_rps"):
        notes.append(
            f"rate {report.get('achieved_rps') or 0:,.1f}/{report['target_rps']:,.0f} req/s "
            "achieved/target"
        )
    slope = report.get("heap_slope_b_per_h")
    if slope is not None:
        notes.append(f"heap slope {slope:+,.0f} B/h")
    return notes
