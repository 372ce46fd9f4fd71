"""Where a row's interval gets its spread (the module docstring of `perftui.analysis.compare`
says when each is used): the runs of both sides; a two-level model over the noise sample's
records (within and between records, F-tested, one outlier left out); the timeline windows of
one run a side (block bootstrap, drifting windows refused); or why there is none. And how many
runs per side would tell an inconclusive row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from perftui.analysis.comparison import MIN_HISTORY_RUNS
from perftui.analysis.metrics import METRICS, Metric
from perftui.analysis.stats import (
    block_bootstrap_sd,
    histogram_bootstrap_sd,
    lag1,
    quantile,
    sum_of_squares,
)

MIN_WINDOWS = 10  # per side: fewer cannot show whether they drift together
BOOTSTRAP_RESAMPLES = 1000
MAX_RUNS_ADVICE = 50
PRETEST = 0.25  # the F test's level for a between-record part (pooling pre-test)
OUTLIER_Z = 4.0  # a record mean this many robust sds from the others' is left out
POWER = 0.8  # the power at the threshold that the runs advice aims for
# Window-resampled rows whose whole-run statistic is a percentile of the merged histograms.
WINDOW_QUANTILES = {"p50_ms": 50.0, "p95_ms": 95.0, "p99_ms": 99.0}


@dataclass
class Spread:
    """The standard error of the judged difference, its degrees of freedom, where it came from,
    and (when known) its make-up: the variance of one run around its stored run's mean
    (`within`) and of stored runs' means around the device's (`between`, drift between runs
    that more runs per side cannot average away)."""

    se: float
    df: float  # math.inf for a normal approximation
    test: str
    evidence: str
    within: float | None = None
    between: float = 0.0
    note: str = ""  # what a reader must know about the interval (e.g. what it does not cover)


def scale(metric: Metric, values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Values on the judged scale: log for ratios, as they are otherwise."""
    arr = np.asarray(values, dtype=float)
    return np.log(np.maximum(arr, metric.floor or 1e-9)) if metric.log else arr


def window_spread(
    metric: Metric,
    wa: np.ndarray,
    wb: np.ndarray,
    steady: Sequence[np.ndarray] = (),
    hists: tuple[list[str] | None, list[str] | None] = (None, None),
) -> Spread | str:
    """One run a side: the two sides' within-run standard errors. `steady`: the phase's p50
    windows of each side, whose drift is the phase's (see below). `hists`: each side's window
    histograms; a percentile row resamples them (`histogram_bootstrap_sd`)."""
    n = min(wa.size, wb.size)
    if n < MIN_WINDOWS:
        return f"1 run each, {n} windows: too few to resolve a change"
    scaled = [scale(metric, w) for w in (wa, wb)]
    # Windows that drift together (a link wandering over seconds, not from window to window)
    # need blocks longer than one run holds: short blocks read that drift as noise that averages
    # away (AR(1) windows at ρ = 0.8 excluded no change in a third of A/A pairs). Past the
    # autocorrelation's own 95 % band, 2/√n, the run cannot show its noise. The drift is the
    # device's, so the whole phase shares it; a tail column's sampling noise can hide it (11 p95
    # windows inside the band, beside p50 windows at 0.65, were called −26 % on an unchanged
    # device), so the phase's p50 windows speak for every row of it.
    series = [(metric.name, x) for x in scaled]
    p50 = METRICS["p50_ms"]
    series += [(p50.name, scale(p50, w)) for w in steady if w.size >= MIN_WINDOWS]
    drifting = [(lag, name) for name, x in series if (lag := lag1(x)) > 2 / math.sqrt(x.size)]
    if drifting:
        lag, name = max(drifting)
        return (
            f"1 run each: the phase's windows drift together ({name} lag-1 autocorrelation "
            f"{lag:.2f}), so one run cannot show this noise"
        )
    block = max(2, round(n ** (1 / 3)))
    quantile_pct = WINDOW_QUANTILES.get(metric.name)
    if quantile_pct is not None and all(h is not None for h in hists):
        se = [
            histogram_bootstrap_sd(h, quantile_pct, block, BOOTSTRAP_RESAMPLES, seed=i)
            for i, h in enumerate(hists)
            if h is not None
        ]
    else:
        se = [
            block_bootstrap_sd(x, block, BOOTSTRAP_RESAMPLES, seed=i) for i, x in enumerate(scaled)
        ]
    # Each side's error is estimated from about n/block independent blocks: a t interval with
    # Welch–Satterthwaite's degrees of freedom, not a normal one that trusts 7 windows as 700.
    dfs = [max(1.0, w.size / block - 1) for w in (wa, wb)]
    var = se[0] ** 2 + se[1] ** 2
    den = sum(s**4 / d for s, d in zip(se, dfs, strict=True))
    df = var**2 / den if den > 0 else min(dfs)
    sizes = f"{wa.size} windows" if wa.size == wb.size else f"{wa.size} vs {wb.size} windows"
    return Spread(math.sqrt(var), df, "block-bootstrap", f"1 run each: {sizes}")


def _records_spread(
    unchanged: list[np.ndarray], sb: np.ndarray, na: int, nb: int
) -> tuple[float, float, float, float, str]:
    """The two-level model over the records of the unchanged device (`unchanged`: the sample's
    records and A's, each its runs' values) and B's: (se, df, within, between, note).

    Within: the pooled variance of runs around their record's mean, from every record with ≥ 2
    runs. Between: from a one-way random-effects ANOVA of the unchanged records, used only when
    its F test tells it from within (level PRETEST), as the positive-part estimate
    (MSB − MSW)/n0; one record of the sample whose mean is an outlier is left out first. The
    variance of B's mean minus A's is then 2·between + within·(1/nA + 1/nB), a combination of the
    two mean squares whose degrees of freedom are Satterthwaite's."""
    from scipy import special

    ss, df_w = sum_of_squares([*unchanged, sb])
    note = ""
    if df_w == 0:  # single runs everywhere: drift and run-to-run noise cannot be told apart
        means = np.array([g.mean() for g in unchanged])
        total = float(np.var(means, ddof=1))
        return math.sqrt(2 * total), float(len(unchanged) - 1), 0.0, total, note
    msw = ss / df_w
    dropped = _outlier(unchanged[:-1], msw)  # A (the last) is never left out
    if dropped is not None:
        shift = unchanged[dropped].mean() - np.median([g.mean() for g in unchanged])
        note = f"1 earlier run left out of the drift as an outlier ({shift:+.2g} on its scale)"
        unchanged = [g for i, g in enumerate(unchanged) if i != dropped]
    sizes = np.array([g.size for g in unchanged], dtype=float)
    means = np.array([g.mean() for g in unchanged])
    k, total_n = len(unchanged), float(sizes.sum())
    grand = float((sizes * means).sum() / total_n)
    msb = float((sizes * (means - grand) ** 2).sum() / (k - 1))
    n0 = (total_n - float((sizes**2).sum()) / total_n) / (k - 1)
    p_between = float(special.fdtrc(k - 1, df_w, msb / msw)) if msw > 0 else float(msb <= 0)
    inv = 1 / na + 1 / nb
    if p_between >= PRETEST or msb <= msw:
        return math.sqrt(msw * inv), float(df_w), msw, 0.0, note
    between = (msb - msw) / n0
    c_b, c_w = 2 / n0, inv - 2 / n0  # var = c_b·MSB + c_w·MSW
    var = c_b * msb + c_w * msw
    den = (c_b * msb) ** 2 / (k - 1) + (c_w * msw) ** 2 / df_w
    return math.sqrt(var), var**2 / den, msw, between, note


def _outlier(sample: list[np.ndarray], msw: float) -> int | None:
    """The index of the one record of the sample whose mean lies more than OUTLIER_Z robust sds
    (the others' MAD, with its own sampling error) from the others' median; None if no record
    does or the sample is too small to tell (fewer than 4 records)."""
    if len(sample) < 4:
        return None
    means = np.array([g.mean() for g in sample])
    scores = []
    for i, g in enumerate(sample):
        others = np.delete(means, i)
        centre = float(np.median(others))
        mad = 1.4826 * float(np.median(np.abs(others - centre)))
        scale = math.sqrt(mad**2 + msw / g.size)
        scores.append(abs(means[i] - centre) / scale if scale > 0 else 0.0)
    worst = int(np.argmax(scores))
    return worst if scores[worst] > OUTLIER_Z else None


def row_spread(
    metric: Metric,
    sa: np.ndarray,
    sb: np.ndarray,
    windows: tuple[np.ndarray | None, np.ndarray | None],
    history: list[np.ndarray],
    steady: Sequence[np.ndarray] = (),
    hists: tuple[list[str] | None, list[str] | None] = (None, None),
) -> Spread | str:
    """Where the interval's spread comes from (see the module docstring), or why there is none.

    With a noise sample (≥ 3 earlier records of A's build, each an array of its per-run values
    on the judged scale) the model has two levels (`_records_spread`); A, the reference, is a
    record of the unchanged device too, so its mean joins the sample that shows the drift.
    """
    na, nb = sa.size, sb.size
    runs = f"{na} run{'s' if na > 1 else ''} each" if na == nb else f"{na} vs {nb} runs"
    own_ss, own_df = sum_of_squares([sa, sb]) if na >= 2 and nb >= 2 else (0.0, 0)
    if len(history) >= MIN_HISTORY_RUNS:
        se, df, within, between, note = _records_spread([*history, sa], sb, na, nb)
        evidence = f"{runs}; history: {len(history)} runs"
        test = "t(runs+history)" if own_df else "t(history)"
        return Spread(se, df, test, evidence, within if within > 0 else None, between, note)
    if own_df:
        within = own_ss / own_df
        se = math.sqrt(within * (1 / na + 1 / nb))
        return Spread(se, own_df, "t(runs)", runs, within)
    if na == 1 and nb == 1 and windows[0] is not None and windows[1] is not None:
        return window_spread(metric, windows[0], windows[1], steady, hists)
    if na == 1 and nb == 1:
        return "1 run each, no timeline and no history: nothing shows the noise"
    return f"{min(na, nb)} run on a side and no history: nothing shows its noise"


def runs_needed(n: int, delta: float, alpha: float, spread: Spread) -> tuple[int | None, str]:
    """How many runs per side would call a change of the threshold (`delta`, on the judged
    scale) with POWER: the smallest n with (t₁₋α/₂ + t_power)·se(n) ≤ delta, where
    se(n)² = 2·between + 2·within/n. The between part does not average away: when it alone
    is too wide, more runs will not tell."""
    if spread.within is None or spread.within <= 0 or delta <= 0:
        return None, ""
    z = quantile(1 - alpha / 2, spread.df) + quantile(POWER, spread.df)
    room = (delta / z) ** 2 - 2 * spread.between
    if room <= 0:
        return None, "more runs will not tell: the device drifts between runs more than this"
    needed = math.ceil(2 * spread.within / room)
    if needed <= n:  # powered already: the change sits near the threshold
        return None, ""
    if needed > MAX_RUNS_ADVICE:
        return needed, f"more than {MAX_RUNS_ADVICE} runs per side would be needed"
    return needed, f"about {needed} runs per side would tell"
