"""One row of a comparison judged: its change on the judged scale, its interval (from the
spread, the counts, or the hull of both) at any level, its verdict and notes; and the
false-discovery control over the primary rows and, apart, the others, which redraws each
tested row's interval at its adjusted level. The rules are in `perftui.analysis.compare`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from perftui.analysis.comparison import Row
from perftui.analysis.metrics import ALL_METRICS, Metric
from perftui.analysis.spread import Spread, row_spread, runs_needed, scale
from perftui.analysis.stats import count_interval, count_p_value, quantile, upper_tail
from perftui.analysis.verdict import (
    IMPROVEMENT,
    INCONCLUSIVE,
    NOT_AVAILABLE,
    REGRESSION,
    STABLE,
)

REAL_CHANGE = "a real change, within the threshold"
Interval = Callable[[float], tuple[float, float]]  # the row's interval at level 1 − a


def judge(change: float, low: float, high: float, threshold: float, higher_is_better: bool) -> str:
    """The verdict of a change and its interval (module docstring)."""
    if (low > 0 or high < 0) and abs(change) >= threshold:
        worse = change < 0 if higher_is_better else change > 0
        return REGRESSION if worse else IMPROVEMENT
    return STABLE if -threshold <= low and high <= threshold else INCONCLUSIVE


def settle(row: Row, metric: Metric) -> None:
    """The row's verdict from its interval, with the note of a real change within the
    threshold (kept true when the interval is redrawn at another level)."""
    assert row.change is not None and row.low is not None and row.high is not None
    row.verdict = judge(row.change, row.low, row.high, row.threshold, metric.higher_is_better)
    parts = [p for p in row.note.split("; ") if p and p != REAL_CHANGE]
    if row.verdict == STABLE and (row.low > 0 or row.high < 0):
        parts.insert(0, REAL_CHANGE)
    row.note = "; ".join(parts)


@dataclass
class Sides:
    """What one row is judged from: each side's per-run values and, for one run a side, its
    timeline windows and window histograms; each side's counts (error rows); the noise sample's
    records (per-run values on the judged scale); the phase's p50 windows (`steady`)."""

    values: tuple[list[float], list[float]]
    windows: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
    history: list[np.ndarray] = field(default_factory=list)
    steady: Sequence[np.ndarray] = ()
    counts: tuple[tuple[int, int] | None, tuple[int, int] | None] = (None, None)
    hists: tuple[list[str] | None, list[str] | None] = (None, None)


def make_row(
    key: str, path: str | None, metric: Metric, threshold: float, alpha: float, sides: Sides
) -> Row:
    """One row: its change, its interval at level 1 − alpha (redrawn later by `control_fdr`),
    its verdict and what a reader must know (module docstring of `perftui.analysis.compare`)."""
    va, vb = sides.values
    unit = "pp" if metric.points else "%"
    row = Row(key, path, metric.name, None, None, None, unit, threshold, NOT_AVAILABLE, "")
    row.n_a, row.n_b = len(va), len(vb)
    row.primary = path is None and metric.primary
    if not va or not vb:
        row.test, row.note = "missing data", "only in A" if vb == [] else "only in B"
        return row
    sa, sb = scale(metric, va), scale(metric, vb)
    diff = float(sb.mean() - sa.mean())
    to_change, delta = _judged_scale(row, metric, sa, sb)
    row.change = to_change(diff)
    seen = [sa, sb, *sides.history, *(scale(metric, w) for w in sides.windows if w is not None)]
    row.varied = bool(np.ptp(np.concatenate(seen)) > 0)
    spread = row_spread(metric, sa, sb, sides.windows, sides.history, sides.steady, sides.hists)
    ca, cb = sides.counts
    counts = (ca, cb) if ca is not None and cb is not None else None
    if counts is not None and (counts[0][1] == 0 or counts[1][1] == 0):
        row.verdict, row.test = INCONCLUSIVE, "insufficient data"
        row.note, row.evidence = "0 requests on a side: the rate is unknown", "not enough data"
        return row
    if isinstance(spread, str) and counts is None:
        row.verdict, row.test, row.note = INCONCLUSIVE, "insufficient data", spread
        row.evidence = "not enough data"
        return row
    runs = spread if isinstance(spread, Spread) and (row.varied or counts is None) else None
    interval = _interval(diff, to_change, runs, counts)
    row.low, row.high = interval(alpha)
    row._interval = interval  # type: ignore[attr-defined]  # redrawn by control_fdr
    row.p_value = _evidence(row, diff, runs, counts)
    settle(row, metric)
    if isinstance(spread, Spread):
        _advise(row, metric, spread, delta, alpha, len(sides.history))
    return row


def _judged_scale(
    row: Row, metric: Metric, sa: np.ndarray, sb: np.ndarray
) -> tuple[Callable[[float], float], float]:
    """The sides' values shown (geometric means for ratios), the map from a difference on the
    judged scale to the change shown, and the threshold on the judged scale."""
    if metric.log:
        row.a, row.b = float(np.exp(sa.mean())), float(np.exp(sb.mean()))
        return (lambda d: math.expm1(d) * 100.0), math.log1p(row.threshold / 100.0)
    row.a, row.b = float(sa.mean()), float(sb.mean())
    factor = 1.0 if metric.points else 100.0 / max(abs(row.a), metric.floor or 1e-12)
    return (lambda d: d * factor), row.threshold / factor


def _interval(
    diff: float,
    to_change: Callable[[float], float],
    runs: Spread | None,
    counts: tuple[tuple[int, int], tuple[int, int]] | None,
) -> Interval:
    """The row's interval at any level: the runs' t interval, the counts' one, or their hull."""

    def interval(level: float) -> tuple[float, float]:
        low, high = math.inf, -math.inf
        if runs is not None:
            half = quantile(1 - level / 2, runs.df) * runs.se
            low, high = to_change(diff - half), to_change(diff + half)
        if counts is not None:
            c_low, c_high = count_interval(*counts, level)
            low, high = min(low, c_low), max(high, c_high)
        return low, high

    return interval


def _evidence(
    row: Row,
    diff: float,
    runs: Spread | None,
    counts: tuple[tuple[int, int], tuple[int, int]] | None,
) -> float:
    """The row's test and evidence named; its p-value (the larger of the runs' and counts')."""
    p_values = []
    if runs is not None:
        row.test, row.evidence = runs.test, runs.evidence
        se = runs.se
        p_values.append(2 * upper_tail(abs(diff) / se, runs.df) if se > 0 else float(diff == 0))
    if counts is not None:
        (xa, na), (xb, nb) = counts
        row.test = f"{row.test}+counts" if runs is not None else "counts"
        shown = f"counts: {xa} of {na} vs {xb} of {nb}"
        row.evidence = f"{row.evidence}; {shown}" if runs is not None else shown
        p_values.append(count_p_value(*counts) if row.varied else 1.0)
    return max(p_values)


def _advise(
    row: Row, metric: Metric, spread: Spread, delta: float, alpha: float, history: int
) -> None:
    """What would tell an inconclusive row, and how noisy the device's runs are."""
    if row.verdict == INCONCLUSIVE:
        if spread.test == "block-bootstrap":
            row.note = "the windows of one run cannot resolve this change; repeat the runs"
        else:
            row.runs_needed, advice = runs_needed(min(row.n_a, row.n_b), delta, alpha, spread)
            row.note = "; ".join(filter(None, [row.note, advice]))
    if "history" in spread.test:
        run_sd = math.sqrt(spread.between + (spread.within or 0.0))
        noise = f"noise from {history} earlier runs: ±{_noise_pct(metric, run_sd)}"
        row.note = "; ".join(filter(None, [noise, spread.note, row.note]))


def control_fdr(rows: list[Row], alpha: float) -> None:
    """Benjamini–Hochberg in two families: the primary rows, which gate CI, and the others. With
    no change at all, any call is a false one, so the primary family bounds the chance that the
    gate fails on noise by alpha (BH's condition: the rows' tests independent or positively
    correlated, as a phase's latency and rps rows are); a dozen rows tested one by one would fail
    CI on an unchanged device several times as often. A row with no variation at all (0 errors
    everywhere) cannot reach significance, so it is left out of its family rather than diluting
    it (Tarone's rule for untestable hypotheses). The control can only take calls back, so with
    no call in a family there is nothing to adjust (and scipy.stats is not loaded).

    Where it runs, each tested row of the family is shown (and judged) with its
    false-coverage-rate interval (Benjamini & Yekutieli 2005): at level R·α/m for the R rows BH
    called, which then exclude zero, and at (R+1)·α/m for the others, which then contain it
    (their p-values exceed (R+1)·α/m by BH's step-up rule)."""
    for primary in (True, False):
        tested = [r for r in rows if r.primary is primary and r.p_value is not None and r.varied]
        if not any(r.verdict in (REGRESSION, IMPROVEMENT) for r in tested):
            continue
        from scipy import stats  # imported on use: the heaviest import of a `compare`

        adjusted = stats.false_discovery_control([r.p_value for r in tested], method="bh")
        m, called = len(tested), int(sum(p < alpha for p in adjusted))
        family = "primary rows" if primary else "rows"
        for row, p in zip(tested, adjusted, strict=True):
            row.p_adjusted = float(p)
            level = (called if p < alpha else called + 1) * alpha / m
            was = row.verdict
            interval: Interval | None = getattr(row, "_interval", None)
            if interval is not None:
                row.low, row.high = interval(level)
                settle(row, ALL_METRICS[row.metric])
                shown = f"{100 * (1 - level):.3g} % interval (FDR over {m} {family})"
                row.note = "; ".join(filter(None, [row.note, shown]))
            if p >= alpha and row.verdict in (REGRESSION, IMPROVEMENT):
                row.verdict = INCONCLUSIVE
            if was in (REGRESSION, IMPROVEMENT) and row.verdict not in (REGRESSION, IMPROVEMENT):
                control = f"not significant after FDR control over {m} {family}"
                row.note = "; ".join(filter(None, [row.note, control]))


def _noise_pct(metric: Metric, sd: float) -> str:
    if metric.points:
        return f"{sd:.2g} pp"
    return f"{math.expm1(sd) * 100:.0f} %" if metric.log else f"{sd:.3g}"
