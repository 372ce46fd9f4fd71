"""Compare two stored runs per `profile:phase` and per path: an estimate of each change with a
95 % interval, and a verdict read from the interval.

Change is B relative to A (A = the reference, e.g. the baseline; B = the candidate), as a percent
of A, except error rate, whose change and threshold are in percentage points. Latency and
throughput are ratios: a side's value is the geometric mean of its runs (one run: that run's
value), and the change and its interval are computed on the log scale, so the row shows exactly
the statistic that is tested.

Where the spread comes from (named in each row's `evidence`):
- `runs`: both sides have ≥ 2 runs and no noise sample: the runs are the unit; the run-to-run
  spread of both sides (pooled, t distribution with its degrees of freedom) gives the interval.
  It covers only the runs compared, not the device's drift from one sitting to the next, and the
  row says so. A percentile bootstrap is not used here: with 2–5 runs it is too narrow.
- `counts`: error rows also get an interval from their counts (Wilson per side, Newcombe's
  difference): 0 errors in 20 000 requests bounds the rate; 0 requests tells nothing. Where the
  runs give an interval too, the row shows (and judges) the hull of both.
- `history`: the caller passes earlier runs of A's build with the same settings (the noise
  sample, picked by `perftui.verdicts`). A two-level model: runs vary around their stored run's
  mean (within: pooled from every record with ≥ 2 runs, A, B and the sample), and stored runs'
  means drift around the device's (between: from the means of the sample and of A, the
  reference, a record of the unchanged device too). The between part is used only where a
  one-way random-effects ANOVA F test tells it from within-record noise (at level 0.25, the
  usual pre-test level for pooling), as its positive-part estimate, after leaving out at most one
  record whose mean is an outlier (robust z > 4 against the others); the degrees of freedom are
  Satterthwaite's for that mix of mean squares (the within ones alone when there is no between
  part). The row names it: "noise from 12 earlier runs: ±14 %".
- `windows`: one run a side and no history: a moving-block bootstrap over the phase's timeline
  windows gives each side's within-run spread, read with a t distribution whose degrees of
  freedom count the blocks. It cannot see drift slower than a run: with too few windows, or
  windows that drift together (the row's own or the phase's p50), the row says that the windows
  cannot resolve the change.
- nothing: INCONCLUSIVE, never STABLE.

Verdict (t = the metric's threshold, [lo, hi] the interval of the change):
- REGRESSION / IMPROVEMENT: the interval lies wholly beyond zero on that side and |change| ≥ t;
- STABLE: the interval lies within ±t (a real but small change is STABLE with a note);
- INCONCLUSIVE otherwise, with "about N runs per side would tell": the N at which a change of
  the threshold is called with 80 % power (the within part shrinks as 1/n, the between part does
  not; "more runs will not tell" only when the between part alone is too wide).
Primary rows (whole-phase p95, p99, rps, error rate, heap drop) gate CI. The others (per-path
rows, p50, p99.9, tail p95, failures-included percentiles, capacity) gate CI only on request.
Each of the two families is controlled for the false-discovery rate (Benjamini–Hochberg, scipy's
`false_discovery_control`): a row is a REGRESSION or IMPROVEMENT only if it survives its family's
control, and when the control runs, every tested row of the family shows the interval at its
adjusted level (Benjamini–Yekutieli's false-coverage intervals: R·α/m for the R rows called,
(R+1)·α/m for the others), so an interval shown never excludes zero on a row called not
significant. Rows without any variation (0 errors on every run of both sides) are not counted
in a family: they cannot call anything. For the primary family that bounds the unchanged
device's chance of failing CI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from perftui.analysis.comparison import MIN_HISTORY_RUNS, Comparison, Row, run_label
from perftui.analysis.judge import Sides, control_fdr, make_row
from perftui.analysis.metrics import CAPACITY, METRICS, PATH_METRICS, Metric
from perftui.analysis.samples import (
    capacity_reports,
    count_totals,
    noise_series,
    paths_of,
    phase_reports,
    run_values,
    timeline_windows,
    varies,
    window_histograms,
)
from perftui.analysis.spread import scale
from perftui.analysis.stages import stage_rows
from perftui.analysis.thresholds import RegressionThresholds
from perftui.like import setting_differences


def compare_runs(
    a: dict[str, Any],
    b: dict[str, Any],
    thresholds: RegressionThresholds | None = None,
    *,
    noise: Sequence[dict[str, Any]] = (),
    gate_paths: bool = False,
    noise_refused: bool = False,
) -> Comparison:
    """Every shared `profile:phase` and path of run A (reference) and run B (candidate).

    `noise`: earlier runs of the same device, profiles and settings (not A or B), whose
    run-to-run spread the intervals may use; the caller fetches them from the store.
    `noise_refused`: the user asked for none (`--noise none`), so no advice to record some.
    """
    thresholds = thresholds or RegressionThresholds()
    agg_a, agg_b = a.get("aggregated") or {}, b.get("aggregated") or {}
    rep_a, rep_b = phase_reports(a), phase_reports(b)
    keys_a, keys_b = set(agg_a) | set(rep_a), set(agg_b) | set(rep_b)
    rows = _Rows(thresholds, noise)
    only_a, only_b = sorted(keys_a - keys_b), sorted(keys_b - keys_a)
    for key in sorted(keys_a & keys_b):
        in_a, in_b = rows.phase(key, (rep_a.get(key, []), rep_b.get(key, [])), (agg_a, agg_b))
        only_a += in_a
        only_b += in_b
    cap_a, cap_b = capacity_reports(a), capacity_reports(b)
    if cap_a and cap_b:
        rows.add("capacity", None, CAPACITY, (cap_a["capacity"], cap_b["capacity"]), ({}, {}))
    control_fdr(rows.rows, thresholds.alpha)
    comparison = Comparison(
        run_label(a),
        run_label(b),
        rows.rows,
        only_a,
        only_b,
        _notes(a, b),
        dict(thresholds.values),
        thresholds.alpha,
        setting_differences(a, b),
        gate_paths,
        len(noise),
        stages=stage_rows(a, b),
    )
    if noise_refused and not noise:
        comparison.notes.append(
            "no noise model (none, by hand): the intervals cover only the runs compared, not "
            "the device's drift from one sitting to the next"
        )
    elif not comparison.has_noise_model and not comparison.mismatches:  # else: the mismatch
        comparison.notes.append(
            f"no noise model yet ({len(noise)} of {MIN_HISTORY_RUNS} earlier runs): drift "
            "between runs is unseen and can read as a change; the intervals cover only the "
            "runs compared, not the device's drift from one sitting to the next: record the "
            "device's noise (a few records of A's build on other occasions, before B)"
        )
    return comparison


Reports = list[dict[str, Any]]  # one side's phase reports of one key, a run each


class _Rows:
    """The rows of one comparison, made a phase at a time."""

    def __init__(self, thresholds: RegressionThresholds, noise: Sequence[dict[str, Any]]) -> None:
        self.thresholds = thresholds
        self.noise = [{**phase_reports(record), **capacity_reports(record)} for record in noise]
        self.rows: list[Row] = []

    def phase(
        self, key: str, reports: tuple[Reports, Reports], aggregated: tuple[dict, dict]
    ) -> tuple[list[str], list[str]]:
        """The rows of one `profile:phase` and its shared paths; the paths only A and only B
        have."""
        ra, rb = reports
        aggs = aggregated[0].get(key) or {}, aggregated[1].get(key) or {}
        # One run a side: the phase's p50 windows, read once for all of its rows' drift check.
        steady = []
        if len(ra) == 1 and len(rb) == 1:
            p50 = (timeline_windows(r[0], METRICS["p50_ms"]) for r in (ra, rb))
            steady = [w for w in p50 if w is not None]
        for metric in METRICS.values():
            if metric.compared:
                self.add(key, None, metric, reports, aggs, steady)
        paths_a, paths_b = paths_of(ra, aggs[0]), paths_of(rb, aggs[1])
        for path in sorted(paths_a & paths_b):
            for name in PATH_METRICS:
                self.add(key, path, METRICS[name], reports, aggs)
        return (
            [f"{key} {p}" for p in sorted(paths_a - paths_b)],
            [f"{key} {p}" for p in sorted(paths_b - paths_a)],
        )

    def add(
        self,
        key: str,
        path: str | None,
        metric: Metric,
        reports: tuple[Reports, Reports],
        aggs: tuple[dict, dict],
        steady: Sequence[np.ndarray] = (),
    ) -> None:
        """The row of one metric, unless neither side has it or a corrected variant equals its
        plain metric everywhere."""
        ra, rb = reports
        values = run_values(ra, aggs[0], metric, path), run_values(rb, aggs[1], metric, path)
        if not (values[0] or values[1]) or not varies(metric, [*ra, *rb], path):
            return
        sides = Sides(values, steady=steady)
        if path is None and len(ra) == 1 and len(rb) == 1:
            sides.windows = (timeline_windows(ra[0], metric), timeline_windows(rb[0], metric))
            sides.hists = (window_histograms(ra[0]), window_histograms(rb[0]))
        sides.history = [scale(metric, v) for v in noise_series(self.noise, key, metric, path)]
        sides.counts = (count_totals(ra, metric, path), count_totals(rb, metric, path))
        threshold = self.thresholds.values[metric.name]
        self.rows.append(make_row(key, path, metric, threshold, self.thresholds.alpha, sides))


def _notes(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Partial runs, phases whose numbers describe perftui rather than the device, and stalls:
    what a reader must know before trusting a row."""
    notes = []
    for side, record in (("A", a), ("B", b)):
        if (record.get("status") or "finished") != "finished":
            notes.append(f"{side} is a {record.get('status')} run: partial data")
        for key, reports in phase_reports(record).items():
            bound = sum(1 for r in reports if r.get("client_bound"))
            if bound:
                notes.append(
                    f"{side} {key}: client-bound in {bound} of {len(reports)} run(s): these "
                    "numbers describe perftui, not the device"
                )
            stalls = [r.get("stalls") or {} for r in reports]
            count = sum(int(st.get("count") or 0) for st in stalls)
            if count:
                longest = max(float(st.get("longest_ms") or 0.0) for st in stalls)
                notes.append(f"{side} {key}: {count} stall(s), longest {longest:g} ms")
    return notes
