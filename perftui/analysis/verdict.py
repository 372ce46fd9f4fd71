"""A comparison row's verdict. A `StrEnum`: reports, JSON and CI scripts read the plain words."""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    REGRESSION = "REGRESSION"
    IMPROVEMENT = "IMPROVEMENT"
    INCONCLUSIVE = "INCONCLUSIVE"  # not enough data, or an interval across the threshold
    STABLE = "STABLE"  # the interval lies within ±threshold
    NOT_AVAILABLE = "N/A"  # a metric one side lacks


# Worst first: the order a summary picks its headline verdict in.
VERDICT_ORDER = (Verdict.REGRESSION, Verdict.INCONCLUSIVE, Verdict.IMPROVEMENT, Verdict.STABLE)
REGRESSION, IMPROVEMENT = Verdict.REGRESSION, Verdict.IMPROVEMENT
INCONCLUSIVE, STABLE, NOT_AVAILABLE = Verdict.INCONCLUSIVE, Verdict.STABLE, Verdict.NOT_AVAILABLE
NOTHING_COMPARED = "NOTHING COMPARED"  # a comparison headline only: no gated row was tested
