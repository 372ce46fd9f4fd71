"""Compare two stored runs per `profile:phase` and per path, with a verdict that survives noise.

Change is B relative to A (A = the reference, e.g. the baseline; B = the candidate), as a percent
of A, except error rate, whose change and threshold are in percentage points.

Verdict rule (t = the metric's threshold, p = the significance test's p-value, α = 0.05):
- |change| < t/2                                   → STABLE (decided by the threshold, no test)
- otherwise, if the test cannot reject (p ≥ α) or
  there is not enough data to test                 → STABLE, noted "no significant change"
- significant, worse,  |change| ≥ t                → REGRESSION (the only verdict that fails CI)
- significant, worse,  t/2 ≤ |change| < t          → DEGRADED (real but under the threshold)
- significant, better, |change| ≥ t                → IMPROVEMENT
- significant, better, |change| < t                → STABLE, noted "small improvement"
A threshold is required on top of significance because large sample counts make tiny changes
"significant"; significance is required on top of the threshold because a noisy device moves
medians by 20 % with no change at all.

Which test decides (named in every row):
- `mann-whitney(runs)`: each side has ≥ 4 runs → scipy's Mann-Whitney U on the per-run values
  (benchstat's rule: fewer runs cannot reach α = 0.05);
- `distribution`: latency percentiles with fewer runs → the runs' HDR histograms are merged per
  side and scipy's `quantile_test` checks each side's percentile against the other's samples;
  significant only when both reject;
- `fisher(counts)`: error rate with fewer runs → Fisher's exact test on pooled error/ok counts;
- `welch(runs)`: other metrics with 2–3 runs per side → Welch's t-test on per-run values;
- `insufficient data`: a single run on a side and no distribution to fall back on.
"""

from __future__ import annotations

import functools
import math
import statistics
import tomllib
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

ALPHA = 0.05
MIN_RUNS_MWU = 4
CONFIG_NAME = "perftui.toml"

REGRESSION = "REGRESSION"
DEGRADED = "DEGRADED"
IMPROVEMENT = "IMPROVEMENT"
STABLE = "STABLE"
NOT_AVAILABLE = "N/A"
VERDICT_ORDER = (REGRESSION, DEGRADED, IMPROVEMENT, STABLE)


class ConfigError(ValueError):
    """A bad threshold setting (file or flag); the message is one line."""


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    label: str
    higher_is_better: bool
    threshold: float
    # Relative changes divide by max(|A|, floor), so near-zero values do not explode.
    floor: float = 0.0
    points: bool = False  # change and threshold in percentage points, not percent
    quantile: float | None = None  # the percentile the HDR histogram can test


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("rps_ok", "rps ok", True, 10.0, floor=1.0),
        Metric("p50_ms", "p50 ms", False, 20.0, floor=0.05, quantile=50.0),
        Metric("p95_ms", "p95 ms", False, 20.0, floor=0.05, quantile=95.0),
        Metric("p99_ms", "p99 ms", False, 30.0, floor=0.05, quantile=99.0),
        Metric("p999_ms", "p99.9 ms", False, 30.0, floor=0.05, quantile=99.9),
        Metric("p95_tail_ms", "tail p95 ms", False, 30.0, floor=0.05),
        Metric("error_rate", "error %", False, 1.0, points=True),
        Metric("heap_internal_drop", "heap drop B", False, 15.0, floor=4096.0),
    )
}
PATH_METRICS = ("rps_ok", "p50_ms", "p95_ms", "p99_ms", "error_rate")


@dataclass
class Thresholds:
    """Per-metric thresholds (percent; error rate in points) and the significance level."""

    values: dict[str, float] = field(
        default_factory=lambda: {name: m.threshold for name, m in METRICS.items()}
    )
    alpha: float = ALPHA

    def updated(self, settings: dict[str, Any], source: str) -> Thresholds:
        """A copy with `settings` ({metric: value, "alpha": value}) applied; checked."""
        values = dict(self.values)
        alpha = self.alpha
        for name, value in settings.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{source}: threshold {name} must be a number ≥ 0")
            if name == "alpha":
                if not 0 < value < 1:
                    raise ConfigError(f"{source}: alpha must be between 0 and 1")
                alpha = float(value)
            elif name in METRICS:
                values[name] = float(value)
            else:
                known = ", ".join([*METRICS, "alpha"])
                raise ConfigError(f"{source}: unknown threshold {name!r} (known: {known})")
        return Thresholds(values, alpha)


def load_thresholds(
    history_dir: Path | None,
    config_file: Path | None = None,
    overrides: dict[str, float] | None = None,
) -> Thresholds:
    """Defaults, then `[thresholds]` of the config file (`--config` or `perftui.toml` in the
    history dir), then command-line overrides."""
    thresholds = Thresholds()
    path = config_file or (history_dir / CONFIG_NAME if history_dir else None)
    if path is not None and (config_file is not None or path.is_file()):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
        section = data.get("thresholds", {})
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: [thresholds] must be a table")
        thresholds = thresholds.updated(section, str(path))
    return thresholds.updated(overrides or {}, "command line")


@dataclass
class Row:
    """One metric of one `profile:phase` (or one path in it), A against B."""

    key: str
    path: str | None
    metric: str
    a: float | None
    b: float | None
    change: float | None
    unit: str
    threshold: float
    verdict: str
    test: str
    p_value: float | None
    note: str
    n_a: int
    n_b: int


@dataclass
class Comparison:
    a: dict[str, Any]
    b: dict[str, Any]
    rows: list[Row]
    only_in_a: list[str]
    only_in_b: list[str]
    notes: list[str]
    thresholds: dict[str, float]
    alpha: float

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == REGRESSION]

    @property
    def verdict(self) -> str:
        """The worst verdict of any row (STABLE when there is nothing to compare)."""
        seen = {r.verdict for r in self.rows}
        return next((v for v in VERDICT_ORDER if v in seen), STABLE)

    def counts(self) -> dict[str, int]:
        return {v: sum(1 for r in self.rows if r.verdict == v) for v in (*VERDICT_ORDER, "N/A")}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["verdict"] = self.verdict
        out["counts"] = self.counts()
        return out


def run_label(record: dict[str, Any]) -> dict[str, Any]:
    """What a report says about a compared run."""
    return {
        key: record.get(key)
        for key in ("run_id", "started_at", "timestamp_utc", "target", "tag", "status", "note")
    } | {
        "profiles": record.get("profiles") or [],
        "runs_per_profile": record.get("runs_per_profile"),
    }


class _Reports(list):
    """One side's phase reports of one key; their merged histogram is decoded once."""

    @functools.cached_property
    def histogram(self) -> tuple[np.ndarray, np.ndarray] | None:
        return _merged_histogram(self)


def _reports(record: dict[str, Any]) -> dict[str, _Reports]:
    out: dict[str, _Reports] = {}
    for run in record.get("raw_runs") or []:
        for res in run.get("results") or []:
            key = f"{res.get('profile')}:{res.get('phase')}"
            out.setdefault(key, _Reports()).append(res.get("report") or {})
    return out


def _values(
    reports: list[dict[str, Any]], agg: dict[str, Any], metric: str, path: str | None
) -> list[float]:
    """Per-run values; the aggregated median stands in when the raw runs lack the metric."""
    if path is not None:
        reports = [(r.get("path_metrics") or {}).get(path) or {} for r in reports]
        agg = (agg.get("path_metrics") or {}).get(path) or {}
    values = [float(r[metric]) for r in reports if isinstance(r.get(metric), int | float)]
    if not values and isinstance(agg.get(metric), dict):
        median = agg[metric].get("median")
        values = [float(median)] if isinstance(median, int | float) else []
    return values


def _merged_histogram(reports: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray] | None:
    """(values in ms, counts) of every run's histogram merged, or None if any run lacks one."""
    merged: HdrHistogram | None = None
    for report in reports:
        encoded = report.get("histogram")
        if not encoded:
            return None
        try:
            hist = HdrHistogram.decode(encoded)
        except Exception:  # a damaged histogram only costs the distribution test
            return None
        if merged is None:
            merged = hist
        else:
            merged.add(hist)
    if merged is None or merged.get_total_count() == 0:
        return None
    counts = np.ctypeslib.as_array(merged.counts)[: merged.counts_len].astype(np.int64)
    index = np.nonzero(counts)[0]
    half_mag = merged.sub_bucket_half_count_magnitude
    bucket = (index >> half_mag) - 1
    sub = (index & (merged.sub_bucket_half_count - 1)) + merged.sub_bucket_half_count
    low = bucket < 0
    sub = np.where(low, sub - merged.sub_bucket_half_count, sub)
    bucket = np.where(low, 0, bucket)
    values_us = sub.astype(np.int64) << (bucket + merged.unit_magnitude)
    return values_us / 1000.0, counts[index]


def _quantile(values: np.ndarray, counts: np.ndarray, q: float) -> float:
    cumulative = np.cumsum(counts)
    return float(values[np.searchsorted(cumulative, q / 100.0 * cumulative[-1])])


def _distribution_test(
    hist_a: tuple[np.ndarray, np.ndarray], hist_b: tuple[np.ndarray, np.ndarray], q: float
) -> float:
    """p-value that the q-th percentiles differ: each side's percentile tested against the
    other side's samples with scipy's quantile_test; the larger p (both must reject)."""
    from scipy import stats  # imported on use: it costs half a second that `list` should not pay

    samples_a = np.repeat(*hist_a)
    samples_b = np.repeat(*hist_b)
    qa, qb = _quantile(*hist_a, q), _quantile(*hist_b, q)
    p1 = stats.quantile_test(samples_b, q=qa, p=q / 100.0).pvalue
    p2 = stats.quantile_test(samples_a, q=qb, p=q / 100.0).pvalue
    return float(max(p1, p2))


def _counts(reports: list[dict[str, Any]], path: str | None) -> tuple[int, int] | None:
    err = ok = 0
    for report in reports:
        src = report if path is None else (report.get("path_metrics") or {}).get(path) or {}
        if not isinstance(src.get("err"), int) or not isinstance(src.get("ok"), int):
            return None
        err, ok = err + src["err"], ok + src["ok"]
    return (err, ok) if err + ok else None


def _test(
    metric: Metric,
    values: tuple[list[float], list[float]],
    reports: tuple[_Reports, _Reports],
    path: str | None,
) -> tuple[str, float | None, str]:
    """(test name, p-value or None, note) following the module docstring's order."""
    from scipy import stats  # imported on use: it costs half a second that `list` should not pay

    va, vb = values
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if len(va) >= MIN_RUNS_MWU and len(vb) >= MIN_RUNS_MWU:
            p = stats.mannwhitneyu(va, vb, alternative="two-sided").pvalue
            return "mann-whitney(runs)", float(p), ""
        if metric.quantile is not None and path is None:
            hists = reports[0].histogram, reports[1].histogram
            if hists[0] is not None and hists[1] is not None:
                return "distribution", _distribution_test(hists[0], hists[1], metric.quantile), ""
        if metric.name == "error_rate":
            counts = _counts(reports[0], path), _counts(reports[1], path)
            if counts[0] is not None and counts[1] is not None:
                p = stats.fisher_exact([list(counts[0]), list(counts[1])]).pvalue
                return "fisher(counts)", float(p), ""
        if len(va) >= 2 and len(vb) >= 2:
            if statistics.pvariance(va) == 0 and statistics.pvariance(vb) == 0:
                return "insufficient data", None, "no run-to-run variance to test against"
            p = stats.ttest_ind(va, vb, equal_var=False).pvalue
            return "welch(runs)", float(p), ""
    return "insufficient data", None, f"{min(len(va), len(vb))} run(s) on a side"


def _row(
    key: str,
    path: str | None,
    metric: Metric,
    thresholds: Thresholds,
    values: tuple[list[float], list[float]],
    reports: tuple[_Reports, _Reports],
) -> Row:
    va, vb = values
    a = statistics.median(va) if va else None
    b = statistics.median(vb) if vb else None
    t = thresholds.values[metric.name]
    unit = "pp" if metric.points else "%"
    base = Row(key, path, metric.name, a, b, None, unit, t, NOT_AVAILABLE, "", None, "", 0, 0)
    base.n_a, base.n_b = len(va), len(vb)
    if a is None or b is None:
        base.test, base.note = "missing data", "only in A" if b is None else "only in B"
        return base
    change = b - a if metric.points else (b - a) / max(abs(a), metric.floor or 1e-12) * 100.0
    base.change = change
    worse = change < 0 if metric.higher_is_better else change > 0
    if abs(change) < t / 2:
        base.verdict, base.test = STABLE, "threshold"
        return base
    base.test, base.p_value, note = _test(metric, values, reports, path)
    if base.p_value is not None and math.isnan(base.p_value):
        base.test, base.p_value, note = "insufficient data", None, "the test gave no p-value"
    if base.p_value is None or base.p_value >= thresholds.alpha:
        base.verdict = STABLE
        base.note = "; ".join(filter(None, ["no significant change", note]))
    elif worse:
        base.verdict = REGRESSION if abs(change) >= t else DEGRADED
    else:
        base.verdict = IMPROVEMENT if abs(change) >= t else STABLE
        base.note = "" if abs(change) >= t else "small improvement"
    return base


def compare_runs(
    a: dict[str, Any], b: dict[str, Any], thresholds: Thresholds | None = None
) -> Comparison:
    """Every shared `profile:phase` and path of run A (reference) and run B (candidate)."""
    thresholds = thresholds or Thresholds()
    agg_a, agg_b = a.get("aggregated") or {}, b.get("aggregated") or {}
    rep_a, rep_b = _reports(a), _reports(b)
    keys_a, keys_b = set(agg_a) | set(rep_a), set(agg_b) | set(rep_b)
    rows: list[Row] = []
    only_a = sorted(keys_a - keys_b)
    only_b = sorted(keys_b - keys_a)
    for key in sorted(keys_a & keys_b):
        reports = rep_a.get(key, _Reports()), rep_b.get(key, _Reports())
        aggs = agg_a.get(key) or {}, agg_b.get(key) or {}
        for metric in METRICS.values():
            values = (
                _values(reports[0], aggs[0], metric.name, None),
                _values(reports[1], aggs[1], metric.name, None),
            )
            if values[0] or values[1]:
                rows.append(_row(key, None, metric, thresholds, values, reports))
        paths_a = _paths(reports[0], aggs[0])
        paths_b = _paths(reports[1], aggs[1])
        only_a += [f"{key} {p}" for p in sorted(paths_a - paths_b)]
        only_b += [f"{key} {p}" for p in sorted(paths_b - paths_a)]
        for path in sorted(paths_a & paths_b):
            for name in PATH_METRICS:
                values = (
                    _values(reports[0], aggs[0], name, path),
                    _values(reports[1], aggs[1], name, path),
                )
                if values[0] or values[1]:
                    rows.append(_row(key, path, METRICS[name], thresholds, values, reports))
    return Comparison(
        run_label(a),
        run_label(b),
        rows,
        only_a,
        only_b,
        _notes(a, b),
        dict(thresholds.values),
        thresholds.alpha,
    )


def _paths(reports: list[dict[str, Any]], agg: dict[str, Any]) -> set[str]:
    paths = set((agg.get("path_metrics") or {}).keys())
    for report in reports:
        paths |= set((report.get("path_metrics") or {}).keys())
    return paths


def _notes(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    notes = []
    if a.get("target") != b.get("target"):
        notes.append(f"different targets: A {a.get('target')}, B {b.get('target')}")
    for side, record in (("A", a), ("B", b)):
        if (record.get("status") or "finished") != "finished":
            notes.append(f"{side} is a {record.get('status')} run: partial data")
    return notes
