"""The statistical estimators a comparison's intervals are made of, apart from what a row is:
moving-block bootstraps (of a series' mean, and of a percentile of merged window histograms),
sums of squares, t quantiles and tails, and count intervals. scipy is imported on use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _block_index(n: int, block: int, resamples: int, seed: int) -> np.ndarray:
    """Moving-block resamples of n windows: `resamples` rows of n window indices."""
    starts = np.random.default_rng(seed).integers(0, n - block + 1, (resamples, -(-n // block)))
    return (starts[:, :, None] + np.arange(block)).reshape(resamples, -1)[:, :n]


def block_bootstrap_sd(values: np.ndarray, block: int, resamples: int, seed: int = 0) -> float:
    """The standard error of the mean of a series with serial correlation: a moving-block
    bootstrap (overlapping blocks of `block` windows, drawn with replacement)."""
    n = values.size
    block = max(1, min(block, n))
    index = _block_index(n, block, resamples, seed)
    # Overlapping blocks' means are centred on the series' mean, which takes b/n of their
    # variance away (for independent windows exactly): 6 windows in blocks of 2 read 2/3 of it.
    bias = n / (n - block) if n > block else 1.0
    return float(np.std(values[index].mean(axis=1), ddof=1) * math.sqrt(bias))


def histogram_bootstrap_sd(
    encoded: Sequence[str], quantile_pct: float, block: int, resamples: int, seed: int = 0
) -> float:
    """The standard error of a whole run's percentile (log ms): windows resampled in moving
    blocks as `block_bootstrap_sd` does, each resample's window histograms merged and the
    percentile read from the merge, as the run's own percentile is. Per-window percentiles would
    not do: the spread of p99 over windows of a few hundred requests is not the spread of the
    p99 of all of them."""
    from perftui.engine.hdr import decode

    hists = [decode(text) for text in encoded]
    counts = np.vstack([np.ctypeslib.as_array(h.counts)[: h.counts_len] for h in hists])
    used = np.flatnonzero(counts.sum(axis=0))
    counts = counts[:, used].astype(np.int64)
    first = hists[0]
    values = np.array(
        [first.get_highest_equivalent_value(first.get_value_from_index(int(i))) for i in used],
        dtype=float,
    )
    n = len(hists)
    block = max(1, min(block, n))
    index = _block_index(n, block, resamples, seed)
    merged = np.zeros((resamples, used.size), dtype=np.int64)
    for j in range(n):
        merged += counts[index[:, j]]
    cumulative = np.cumsum(merged, axis=1)
    target = np.maximum(1, np.floor(quantile_pct / 100 * cumulative[:, -1] + 0.5))
    at = np.argmax(cumulative >= target[:, None], axis=1)
    stats = np.log(np.maximum(values[at] / 1000.0, 1e-9))
    bias = n / (n - block) if n > block else 1.0
    return float(np.std(stats, ddof=1) * math.sqrt(bias))


def lag1(values: np.ndarray) -> float:
    """The lag-1 autocorrelation of a series (0 for a flat one)."""
    centred = values - values.mean()
    denominator = float(centred @ centred)
    return float(centred[1:] @ centred[:-1]) / denominator if denominator > 0 else 0.0


def sum_of_squares(groups: Sequence[np.ndarray]) -> tuple[float, int]:
    """Sum of squares around each group's mean, and its degrees of freedom."""
    ss = sum(float(((g - g.mean()) ** 2).sum()) for g in groups if g.size > 1)
    return ss, sum(g.size - 1 for g in groups if g.size > 1)


def quantile(p: float, df: float) -> float:
    """The t distribution's p-quantile (normal for df = ∞). scipy.special's functions, not
    scipy.stats': importing scipy.stats costs a cold `compare` about half a second more."""
    from scipy import special

    return float(special.ndtri(p) if math.isinf(df) else special.stdtrit(df, p))


def upper_tail(x: float, df: float) -> float:
    """P(T > x) for the t distribution (normal for df = ∞)."""
    from scipy import special

    return float(special.ndtr(-x) if math.isinf(df) else special.stdtr(df, -x))


def count_interval(a: tuple[int, int], b: tuple[int, int], level: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval (his method 10) of B's rate minus A's, in percentage
    points, from the two sides' Wilson intervals (scipy) at confidence 1 − level."""
    from scipy import stats

    (xa, na), (xb, nb) = a, b
    ci = [stats.binomtest(x, n).proportion_ci(1 - level, method="wilson") for x, n in (a, b)]
    pa, pb = xa / na, xb / nb
    (la, ua), (lb, ub) = ((c.low, c.high) for c in ci)
    d = pb - pa
    low = d - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2)
    high = d + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2)
    return 100.0 * low, 100.0 * high


def count_p_value(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Fisher's exact test of the two sides' rates (scipy)."""
    from scipy import stats

    (xa, na), (xb, nb) = a, b
    return float(stats.fisher_exact([[xa, na - xa], [xb, nb - xb]]).pvalue)
