"""A metric across stored runs, with a change-point verdict and a plotext chart.

Verdict: the run sequence (oldest first) is split where the medians before and after differ
most (each segment ≥ 4 runs, the least Mann-Whitney U needs to reach α = 0.05); the trend is
`improving` or `degrading` only when that step is beyond the metric's compare threshold AND
scipy's Mann-Whitney U calls the two segments different; otherwise `stable`. Fewer than 8 runs
give `insufficient data`, said as such.

It takes runs (stored summaries to choose from, then the chosen run records), never a store:
the caller fetches them (`perftui.cli.compare`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from perftui.analysis.metrics import METRICS
from perftui.analysis.thresholds import RegressionThresholds
from perftui.engine.schema import IndexRow, RunRecord
from perftui.like import identity, settings_key

MIN_SEGMENT = 4


@dataclass
class Trend:
    target: str
    key: str
    metric: str
    run_ids: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    verdict: str = "insufficient data"
    change_at: str | None = None  # first run after the step
    before: float | None = None
    after: float | None = None
    change: float | None = None  # percent (points for error rate)
    p_value: float | None = None


def _change(metric: str, before: float, after: float) -> float:
    spec = METRICS[metric]
    if spec.points:
        return after - before
    return (after - before) / max(abs(before), spec.floor or 1e-12) * 100.0


def judge(trend: Trend, thresholds: RegressionThresholds) -> None:
    """Fill the verdict fields of `trend` from its values (see the module docstring)."""
    from scipy import stats  # imported on use: it costs half a second that `list` should not pay

    values = trend.values
    if len(values) < 2 * MIN_SEGMENT:
        trend.verdict = "insufficient data"
        return
    best = max(
        range(MIN_SEGMENT, len(values) - MIN_SEGMENT + 1),
        key=lambda i: abs(statistics.median(values[i:]) - statistics.median(values[:i])),
    )
    before, after = statistics.median(values[:best]), statistics.median(values[best:])
    change = _change(trend.metric, before, after)
    p = float(stats.mannwhitneyu(values[:best], values[best:], alternative="two-sided").pvalue)
    trend.change_at, trend.before, trend.after = trend.run_ids[best], before, after
    trend.change, trend.p_value = change, p
    spec = METRICS[trend.metric]
    if p >= thresholds.alpha or abs(change) < thresholds.values[trend.metric]:
        trend.verdict = "stable"
    else:
        better = change > 0 if spec.higher_is_better else change < 0
        trend.verdict = "improving" if better else "degrading"


def _wanted(key: str, profile: str | None, phase: str | None) -> bool:
    prof, _, ph = key.partition(":")
    return (profile is None or prof == profile) and (phase is None or ph == phase)


def select(
    summaries: Iterable[IndexRow],
    profile: str | None = None,
    phase: str | None = None,
    last: int = 30,
) -> list[IndexRow]:
    """The newest `last` run summaries (given newest first) that have a wanted `profile:phase`."""
    chosen = [s for s in summaries if any(_wanted(k, profile, phase) for k in s.get("keys", []))]
    return chosen[:last]


def trends(
    records: Iterable[RunRecord],
    profile: str | None = None,
    phase: str | None = None,
    metric: str = "p95_ms",
    thresholds: RegressionThresholds | None = None,
) -> list[Trend]:
    """One trend per (target, `profile:phase`) over run records given oldest first."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
    out: dict[tuple[str, str], Trend] = {}
    records = list(records)
    # Only like with like: per device and key, the runs set up as its newest run was.
    settings: dict[tuple[str, str], Any] = {}
    for record in reversed(records):
        for key in record.get("aggregated") or {}:
            settings.setdefault((identity(record), key), settings_key(record))
    for record in records:
        for key, agg in (record.get("aggregated") or {}).items():
            wanted = _wanted(key, profile, phase)
            value = (agg.get(metric) or {}).get("median") if wanted else None
            group = (identity(record), key)
            if not isinstance(value, int | float):
                continue
            if settings_key(record) != settings[group]:
                continue
            t = out.setdefault(group, Trend(group[0], key, metric))
            t.run_ids.append(record["run_id"])
            t.started.append(record.get("started_at") or "")
            t.values.append(float(value))
    for t in out.values():
        judge(t, thresholds or RegressionThresholds())
    return sorted(out.values(), key=lambda t: (t.target, t.key))


def chart(items: list[Trend], width: int = 100, height: int = 20, color: bool = False) -> str:
    """A plotext line chart of the trends (x: run number, oldest first) as a string."""
    import plotext as plt  # imported on use: only a chart needs it

    plt.clear_figure()
    plt.plotsize(width, height)
    if not color:
        plt.theme("clear")
    several_targets = len({t.target for t in items}) > 1
    for t in items:
        label = f"{t.target} {t.key}" if several_targets else t.key
        plt.plot(list(range(1, len(t.values) + 1)), t.values, label=label)
    if items:
        plt.title(f"{METRICS[items[0].metric].label} (median per run)")
    plt.xlabel("run, oldest → newest")
    return plt.build() if color else plt.uncolorize(plt.build())


def describe(t: Trend) -> str:
    """One line per trend for the terminal."""
    head = f"{t.target} {t.key} {METRICS[t.metric].label}: {t.verdict} over {len(t.values)} runs"
    if t.change is None:
        return head + (" (8 needed for a verdict)" if t.verdict == "insufficient data" else "")
    unit = "pp" if METRICS[t.metric].points else "%"
    return (
        f"{head}; step at {t.change_at}: {t.before:.4g} → {t.after:.4g} "
        f"({t.change:+.1f} {unit}, mann-whitney p={t.p_value:.3g})"
    )


def change_points(
    groups: Sequence[Sequence[float]], threshold: float, alpha: float = 0.05, log: bool = True
) -> list[int]:
    """Where a sequence of records (oldest first, each its runs' values) changes level: the
    indices of the records that start a new segment. The split is where the record means sit
    closest to their segments' medians (the least total absolute deviation, a robust least
    squares); it stands when `_differ` says so. Each segment is split again until no step stands
    (binary segmentation). A record may be a segment alone: its runs speak for it, so a build
    measured once still stands apart.

    Not where the medians differ most: with A A A B B, cutting A A | A B B moves the right
    median as far as the true cut does, and the tie went to the earlier cut, so A's own third
    record was split from the first two (and left out of A's noise sample)."""
    means = [_level(g, log) for g in groups]

    def cost(lo: int, hi: int) -> float:
        middle = statistics.median(means[lo:hi])
        return sum(abs(m - middle) for m in means[lo:hi])

    def split(lo: int, hi: int) -> list[int]:
        if hi - lo < 2:
            return []
        best = min(range(lo + 1, hi), key=lambda i: cost(lo, i) + cost(i, hi))
        if not _differ(groups[lo:best], groups[best:hi], threshold, alpha, log):
            return []
        return [*split(lo, best), best, *split(best, hi)]

    return split(0, len(groups))


def segment_around(
    groups: Sequence[Sequence[float]],
    index: int,
    threshold: float,
    alpha: float = 0.05,
    log: bool = True,
) -> tuple[int, int]:
    """The records (oldest first) that share record `index`'s level, as `(lo, hi)`: grown from
    it one neighbour at a time, older ones first, each joining unless `_differ` tells it from
    the records already in; the walk stops at the first that differs. Binary segmentation finds
    no step between a level and an interleave of builds above and below it (their median sits
    near it); the walk stops at the first record of another build beside the segment."""
    lo, hi = index, index + 1
    while lo > 0 and not _differ(groups[lo:hi], groups[lo - 1 : lo], threshold, alpha, log):
        lo -= 1
    while hi < len(groups) and not _differ(
        groups[lo:hi], groups[hi : hi + 1], threshold, alpha, log
    ):
        hi += 1
    return lo, hi


def _level(values: Sequence[float], log: bool) -> float:
    return math.log(max(statistics.fmean(values), 1e-9)) if log else statistics.fmean(values)


def _differ(
    left: Sequence[Sequence[float]],
    right: Sequence[Sequence[float]],
    threshold: float,
    alpha: float,
    log: bool,
) -> bool:
    """Whether two runs of records differ in level: the medians of their record means are
    `threshold` (percent) apart, and Mann-Whitney U calls their runs different (scipy.stats, a
    second's import, only then)."""
    step = statistics.median(_level(g, log) for g in right) - statistics.median(
        _level(g, log) for g in left
    )
    pct = math.expm1(abs(step)) * 100 if log else abs(step)
    before = [v for g in left for v in g]
    after = [v for g in right for v in g]
    if pct < threshold or len(before) < 2 or len(after) < 2:
        return False
    from scipy import stats

    return float(stats.mannwhitneyu(before, after, alternative="two-sided").pvalue) < alpha
