"""Two `--stages` runs side by side, window by window: per target rate, each side's achieved
rate and p95.

A ramp's record keeps, per timeline window, the mean target over the window (`ramp.target`)
beside what the window measured. Windows are matched by target rate, not by time: each side's
windows fall into bins of a round width (about a tenth of the higher peak target), apart for a
rising, a steady and a falling ramp (coming down, a device drains the queue it built while
overloaded: its latency at a rate is not the same as on the way up). In a bin, a side's achieved
rate is its requests over its windows' time, and its p95 comes from its windows' histograms
merged (a percentile of percentiles would not be the p95 of those requests); every run of a
side is pooled. These rows are a description, not a verdict: whether two runs set up
differently (other stages, one without) may be compared is decided with the settings
(`perftui.like`), and the comparison lists that difference first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from html import escape
from typing import TypedDict

from perftui.engine.hdr import decode
from perftui.engine.pacing import Ramp
from perftui.engine.schema import PhaseReport, RunRecord
from perftui.engine.timeline import window_spans

BINS = 10  # about this many target levels up to the higher peak
DIRECTION = {1: "up", 0: "steady", -1: "down"}
ARROW = {"up": "↑", "steady": "=", "down": "↓"}
Window = tuple[float, float, int, str | None]  # target, seconds, requests, encoded histogram


class StageSide(TypedDict):
    """One side of a row: over its windows at the level."""

    target_rps: float | None
    achieved_rps: float | None
    p95_ms: float | None
    windows: int


class StageRow(TypedDict):
    """One target level and direction of one ramped `profile:phase`, A beside B."""

    key: str
    level_rps: float
    direction: str
    a: StageSide | None
    b: StageSide | None


def _ramp_reports(record: RunRecord) -> dict[str, list[PhaseReport]]:
    """A record's phase reports with a rate ramp, by `profile:phase`."""
    out: dict[str, list[PhaseReport]] = {}
    for run in record.get("raw_runs") or []:
        for res in run.get("results") or []:
            report = res.get("report") or {}
            if (report.get("ramp") or {}).get("unit") == "rps":
                out.setdefault(f"{res.get('profile')}:{res.get('phase')}", []).append(report)
    return out


def _step(peak: float) -> float:
    """A round bin width (1, 2 or 5 × 10^k) giving about BINS levels up to `peak`."""
    raw = max(peak, 1e-9) / BINS
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _windows(report: PhaseReport) -> Iterable[tuple[float, str, float, float, int, str | None]]:
    """(target, direction, start s, seconds, requests, encoded histogram) of each window."""
    ramp = report["ramp"]
    shape = Ramp([tuple(stage) for stage in ramp.get("stages") or []])
    timeline = report.get("timeline") or {}
    hists = timeline.get("histograms") or []
    targets, requests_ = ramp.get("target") or [], timeline.get("requests") or []
    # strict=False: a record cut short keeps its full rows only
    rows = zip(window_spans(timeline), targets, requests_, strict=False)
    for i, ((start, end), target, requests) in enumerate(rows):
        rise = shape.at(min(end, shape.duration)) - shape.at(min(start, shape.duration))
        sign = (rise > 1e-9) - (rise < -1e-9)
        hist = hists[i] if i < len(hists) and isinstance(hists[i], str) else None
        yield float(target), DIRECTION[sign], start, end - start, int(requests), hist


def _side(windows: list[Window]) -> StageSide:
    """One side of one row: mean target and achieved rate over its windows' time, and the p95
    of their requests (their histograms merged)."""
    seconds = sum(w[1] for w in windows)
    requests = sum(w[2] for w in windows)
    merged = None
    for *_, encoded in windows:
        if encoded is None:
            merged = None
            break
        hist = decode(encoded)
        if merged is None:
            merged = hist
        else:
            merged.add(hist)
    p95 = None
    if merged is not None and merged.get_total_count():
        p95 = round(merged.get_value_at_percentile(95.0) / 1000.0, 3)
    return {
        "target_rps": round(sum(w[0] * w[1] for w in windows) / seconds, 3) if seconds else None,
        "achieved_rps": round(requests / seconds, 3) if seconds else None,
        "p95_ms": p95,
        "windows": len(windows),
    }


def stage_rows(a: RunRecord, b: RunRecord) -> list[StageRow]:
    """Per `profile:phase` with a rate ramp on both sides, per target level (`level_rps`, the
    bin) and direction, in the order the ramp meets them (the earliest window of any run of
    either side): each side's mean target, achieved rate, p95 and windows (None where that
    side has no window at the level)."""
    ramps_a, ramps_b = _ramp_reports(a), _ramp_reports(b)
    rows: list[StageRow] = []
    for key in sorted(set(ramps_a) & set(ramps_b)):
        sides = [
            [w for report in ramps[key] for w in _windows(report)] for ramps in (ramps_a, ramps_b)
        ]
        peak = max((w[0] for side in sides for w in side), default=0.0)
        if peak <= 0:
            continue
        step = _step(peak)
        cells: dict[tuple[str, float], tuple[list[Window], list[Window]]] = {}
        first: dict[tuple[str, float], float] = {}  # when the ramp first meets the level
        for index, side in enumerate(sides):
            for target, direction, start, seconds, requests, hist in side:
                if target <= 0 or seconds <= 0:
                    continue
                level = round(math.floor(target / step + 0.5) * step, 6)
                cell = cells.setdefault((direction, level), ([], []))
                cell[index].append((target, seconds, requests, hist))
                first[direction, level] = min(first.get((direction, level), start), start)
        for direction, level in sorted(cells, key=lambda k: first[k]):
            wa, wb = cells[direction, level]
            rows.append(
                {
                    "key": key,
                    "level_rps": level,
                    "direction": direction,
                    "a": _side(wa) if wa else None,
                    "b": _side(wb) if wb else None,
                }
            )
    return rows


def _cell(side: StageSide | None, name: str) -> str:
    value = side.get(name) if side else None
    return "–" if value is None else f"{value:.4g}" if value < 1e4 else f"{value:.0f}"


HEAD = ("target req/s", "ramp", "A achieved", "B achieved", "A p95 ms", "B p95 ms", "windows A/B")


def _tables(rows: list[StageRow]) -> dict[str, list[tuple[str, ...]]]:
    """Per ramped `profile:phase`, its rows as the report's cells (HEAD's columns)."""
    out: dict[str, list[tuple[str, ...]]] = {}
    for r in rows:
        a, b = r["a"], r["b"]
        targets = dict.fromkeys(_cell(side, "target_rps") for side in (a, b) if side)
        out.setdefault(r["key"], []).append(
            (
                " / ".join(targets),
                ARROW[r["direction"]],
                *(_cell(side, name) for name in ("achieved_rps", "p95_ms") for side in (a, b)),
                f"{a['windows'] if a else 0}/{b['windows'] if b else 0}",
            )
        )
    return out


def markdown(rows: list[StageRow]) -> list[str]:
    """The report's section: a table per ramped `profile:phase` (nothing without rows)."""
    lines: list[str] = []
    for key, cells in _tables(rows).items():
        lines += ["", f"### {key}: ramp windows by target rate", "", f"| {' | '.join(HEAD)} |"]
        lines.append("|---:|:---:|---:|---:|---:|---:|---:|")
        lines += [f"| {' | '.join(row)} |" for row in cells]
    return lines


def html(rows: list[StageRow]) -> list[str]:
    """The same section for the HTML report."""
    out = []
    for key, cells in _tables(rows).items():
        head = "".join(f"<th>{escape(h)}</th>" for h in HEAD)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in cells
        )
        out.append(f"<h2>{escape(key)}: ramp windows by target rate</h2>")
        out.append(f"<table><tr>{head}</tr>{body}</table>")
    return out
