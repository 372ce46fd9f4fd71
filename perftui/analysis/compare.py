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

import math
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perftui.analysis.metrics import ALL_METRICS, CAPACITY, METRICS, PATH_METRICS, Metric
from perftui.analysis.stages import stage_rows
from perftui.analysis.verdict import VERDICT_ORDER, Verdict
from perftui.like import like_settings

ALPHA = 0.05
CONFIG_NAME = "perftui.toml"
MIN_WINDOWS = 10  # per side: fewer cannot show whether they drift together
MIN_HISTORY_RUNS = 3
BOOTSTRAP_RESAMPLES = 1000
MAX_RUNS_ADVICE = 50
PRETEST = 0.25  # the F test's level for a between-record part (pooling pre-test)
OUTLIER_Z = 4.0  # a record mean this many robust sds from the others' is left out
POWER = 0.8  # the power at the threshold that the runs advice aims for
# Window-resampled rows whose whole-run statistic is a percentile of the merged histograms.
WINDOW_QUANTILES = {"p50_ms": 50.0, "p95_ms": 95.0, "p99_ms": 99.0}

REGRESSION, IMPROVEMENT = Verdict.REGRESSION, Verdict.IMPROVEMENT
INCONCLUSIVE, STABLE, NOT_AVAILABLE = Verdict.INCONCLUSIVE, Verdict.STABLE, Verdict.NOT_AVAILABLE
NOTHING_COMPARED = "NOTHING COMPARED"  # a comparison headline only: no gated row was tested


class ConfigError(ValueError):
    """A bad threshold setting (file or flag); the message is one line."""


@dataclass
class RegressionThresholds:
    """Per-metric regression thresholds (percent; error rate in points) and α (1 − confidence)."""

    values: dict[str, float] = field(
        default_factory=lambda: {name: m.threshold for name, m in ALL_METRICS.items()}
    )
    alpha: float = ALPHA

    def updated(self, settings: dict[str, Any], source: str) -> RegressionThresholds:
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
            elif name in ALL_METRICS:
                values[name] = float(value)
            else:
                known = ", ".join([*ALL_METRICS, "alpha"])
                raise ConfigError(f"{source}: unknown threshold {name!r} (known: {known})")
        return RegressionThresholds(values, alpha)


def load_thresholds(
    history_dir: Path | None,
    config_file: Path | None = None,
    overrides: dict[str, float] | None = None,
) -> RegressionThresholds:
    """Defaults, then `[thresholds]` of the config file (`--config` or `perftui.toml` in the
    history dir), then command-line overrides."""
    thresholds = RegressionThresholds()
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
    verdict: Verdict
    test: str  # how the interval was made: "t(runs)", "t(runs+history)", "block-bootstrap"…
    p_value: float | None = None  # two-sided, of the same interval
    note: str = ""
    n_a: int = 0
    n_b: int = 0
    low: float | None = None  # the interval of `change`, same unit
    high: float | None = None
    evidence: str = ""  # "3 runs each", "1 run: 20 windows", "history: 12 runs"
    primary: bool = False
    # After Benjamini–Hochberg, for secondary rows, when some secondary row was called a change.
    p_adjusted: float | None = None
    runs_needed: int | None = None
    varied: bool = True  # False when every value of both sides is the same (e.g. 0 errors)

    @property
    def place(self) -> str:
        """Where the row is shown: primary, secondary or per-path rows."""
        if self.path is not None:
            return "per-path"
        return "primary" if self.primary else "secondary"


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
    mismatches: list[str] = field(default_factory=list)  # settings that differ, A vs B
    gate_paths: bool = False
    noise_runs: int = 0
    # The noise sample by name (filled by the comparison service): the runs in it, and each
    # run of the device left out with why ("r1: build B", "r2: after B's first run", …).
    noise_ids: list[str] = field(default_factory=list)
    noise_left_out: list[str] = field(default_factory=list)
    noise_rule: str = ""  # how the sample was picked: "build A before B", "by hand", …
    stages: list[dict[str, Any]] = field(default_factory=list)  # ramps: `analysis.stages`

    def gated(self) -> list[Row]:
        """The rows that decide CI: primary ones, and the rest when `gate_paths` asks."""
        return [r for r in self.rows if r.primary or self.gate_paths]

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.gated() if r.verdict == REGRESSION]

    @property
    def verdict(self) -> str:
        """The worst verdict of the gated rows; NOTHING COMPARED when none had an interval."""
        if not any(r.low is not None for r in self.gated()):
            return NOTHING_COMPARED
        seen = {r.verdict for r in self.gated()}
        return next((v for v in VERDICT_ORDER if v in seen), STABLE)

    @property
    def nothing_reason(self) -> str:
        """Why nothing was compared (empty when something was)."""
        if self.verdict != NOTHING_COMPARED:
            return ""
        if not self.rows:
            return "the phases do not overlap"
        return "no gated row could be tested"

    @property
    def has_noise_model(self) -> bool:
        """Enough earlier comparable runs for the history to show drift between runs."""
        return self.noise_runs >= MIN_HISTORY_RUNS

    @property
    def tested(self) -> int:
        """How many rows were tested: those with an interval and some variation (the two
        families of the FDR control)."""
        return sum(1 for r in self.rows if r.low is not None and r.varied)

    def counts(self) -> dict[str, int]:
        return {v: sum(1 for r in self.rows if r.verdict == v) for v in (*VERDICT_ORDER, "N/A")}

    def where(self) -> list[str]:
        """Where the non-stable verdicts are: ["2 regression in primary rows", …]."""
        out = []
        for verdict in (REGRESSION, IMPROVEMENT, INCONCLUSIVE):
            for place in ("primary", "secondary", "per-path"):
                n = sum(1 for r in self.rows if r.verdict == verdict and r.place == place)
                if n:
                    out.append(f"{n} {verdict.lower()} in {place} rows")
        return out

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for row, data in zip(self.rows, out["rows"], strict=True):
            data["place"] = row.place
        out["verdict"] = self.verdict
        out["counts"] = self.counts()
        out["tested"] = self.tested
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


# ----- the samples of one side -------------------------------------------------------------


def _capacity(record: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """A capacity search's answer as the one "report" of the key "capacity" (or nothing), so
    earlier searches of the device are its noise like earlier runs are a phase's."""
    value = (record.get("capacity") or {}).get(CAPACITY.name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"capacity": [{CAPACITY.name: value}]}
    return {}


def _reports(record: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for run in record.get("raw_runs") or []:
        for res in run.get("results") or []:
            key = f"{res.get('profile')}:{res.get('phase')}"
            out.setdefault(key, []).append(res.get("report") or {})
    return out


def client_bound_runs(record: dict[str, Any]) -> tuple[int, int]:
    """(client-bound phase runs, phase runs) of a record: how much of it measured perftui's
    host rather than the device."""
    reports = [r for runs in _reports(record).values() for r in runs]
    return sum(1 for r in reports if r.get("client_bound")), len(reports)


def _value(report: dict[str, Any], metric: Metric, path: str | None) -> float | None:
    src = report if path is None else (report.get("path_metrics") or {}).get(path) or {}
    if metric.source is not None:
        src = src.get(metric.source) or {}
    value = src.get(metric.field or metric.name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _varies(metric: Metric, reports: list[dict[str, Any]], path: str | None) -> bool:
    """A corrected variant (`Metric.variant_of`) earns a row only where it differs somewhere."""
    if metric.variant_of is None:
        return True
    plain = METRICS[metric.variant_of]
    return any(_value(r, metric, path) != _value(r, plain, path) for r in reports)


def _values(
    reports: list[dict[str, Any]], agg: dict[str, Any], metric: Metric, path: str | None
) -> list[float]:
    """Per-run values; the aggregated median stands in when the raw runs lack the metric
    (imported legacy files that kept only summaries)."""
    values = [v for v in (_value(r, metric, path) for r in reports) if v is not None]
    if not values and metric.source is None:
        if path is not None:
            agg = (agg.get("path_metrics") or {}).get(path) or {}
        summary = agg.get(metric.name)
        median = summary.get("median") if isinstance(summary, dict) else None
        values = [float(median)] if isinstance(median, int | float) else []
    return values


def record_values(records: Sequence[dict[str, Any]], metric: Metric) -> list[list[float]] | None:
    """Each record's per-run values of `metric` on the first `profile:phase` all of them have
    (None when they share none, or a record lacks the metric): what a record's level is."""
    reports = [_reports(r) for r in records]
    shared = set.intersection(*(set(r) for r in reports)) if reports else set()
    for key in sorted(shared):
        groups = [_values(r[key], {}, metric, None) for r in reports]
        if all(groups):
            return groups
    return None


def _windows(report: dict[str, Any], metric: Metric) -> np.ndarray | None:
    """The metric per timeline window of one phase report (None if the record has none)."""
    timeline = report.get("timeline")
    if metric.window is None or not isinstance(timeline, dict):
        return None
    if metric.window == "error_rate":
        requests = np.asarray(timeline.get("requests") or [], dtype=float)
        errors = np.asarray(timeline.get("errors") or [], dtype=float)
        if requests.size == 0 or requests.size != errors.size:
            return None
        keep = requests > 0
        return 100.0 * errors[keep] / requests[keep]
    column = [v for v in timeline.get(metric.window) or [] if isinstance(v, int | float)]
    return np.asarray(column, dtype=float) if column else None


# ----- the interval ------------------------------------------------------------------------


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


def _scale(metric: Metric, values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Values on the judged scale: log for ratios, as they are otherwise."""
    arr = np.asarray(values, dtype=float)
    return np.log(np.maximum(arr, metric.floor or 1e-9)) if metric.log else arr


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


def _lag1(values: np.ndarray) -> float:
    """The lag-1 autocorrelation of a series (0 for a flat one)."""
    centred = values - values.mean()
    denominator = float(centred @ centred)
    return float(centred[1:] @ centred[:-1]) / denominator if denominator > 0 else 0.0


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
    scaled = [_scale(metric, w) for w in (wa, wb)]
    # Windows that drift together (a link wandering over seconds, not from window to window)
    # need blocks longer than one run holds: short blocks read that drift as noise that averages
    # away (AR(1) windows at ρ = 0.8 excluded no change in a third of A/A pairs). Past the
    # autocorrelation's own 95 % band, 2/√n, the run cannot show its noise. The drift is the
    # device's, so the whole phase shares it; a tail column's sampling noise can hide it (11 p95
    # windows inside the band, beside p50 windows at 0.65, were called −26 % on an unchanged
    # device), so the phase's p50 windows speak for every row of it.
    series = [(metric.name, x) for x in scaled]
    p50 = METRICS["p50_ms"]
    series += [(p50.name, _scale(p50, w)) for w in steady if w.size >= MIN_WINDOWS]
    drifting = [(lag, name) for name, x in series if (lag := _lag1(x)) > 2 / math.sqrt(x.size)]
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


def window_histograms(report: dict[str, Any]) -> list[str] | None:
    """A phase report's window histograms, when the record has one per timeline window."""
    timeline = report.get("timeline")
    if not isinstance(timeline, dict):
        return None
    hists = timeline.get("histograms")
    windows = timeline.get("p95_ms") or []
    if not isinstance(hists, list) or not hists or len(hists) != len(windows):
        return None
    return hists if all(isinstance(h, str) for h in hists) else None


def _ss(groups: Sequence[np.ndarray]) -> tuple[float, int]:
    """Sum of squares around each group's mean, and its degrees of freedom."""
    ss = sum(float(((g - g.mean()) ** 2).sum()) for g in groups if g.size > 1)
    return ss, sum(g.size - 1 for g in groups if g.size > 1)


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

    ss, df_w = _ss([*unchanged, sb])
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


def _spread(
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
    own_ss, own_df = _ss([sa, sb]) if na >= 2 and nb >= 2 else (0.0, 0)
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


def judge(change: float, low: float, high: float, threshold: float, higher_is_better: bool) -> str:
    """The verdict of a change and its interval (module docstring)."""
    if (low > 0 or high < 0) and abs(change) >= threshold:
        worse = change < 0 if higher_is_better else change > 0
        return REGRESSION if worse else IMPROVEMENT
    return STABLE if -threshold <= low and high <= threshold else INCONCLUSIVE


def _runs_needed(n: int, delta: float, alpha: float, spread: Spread) -> tuple[int | None, str]:
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


def quantile(p: float, df: float) -> float:
    """The t distribution's p-quantile (normal for df = ∞). scipy.special's functions, not
    scipy.stats': importing scipy.stats costs a cold `compare` about half a second more."""
    from scipy import special

    return float(special.ndtri(p) if math.isinf(df) else special.stdtrit(df, p))


def _upper_tail(x: float, df: float) -> float:
    """P(T > x) for the t distribution (normal for df = ∞)."""
    from scipy import special

    return float(special.ndtr(-x) if math.isinf(df) else special.stdtr(df, -x))


REAL_CHANGE = "a real change, within the threshold"
Interval = Callable[[float], tuple[float, float]]  # the row's interval at level 1 − a


def _settle(row: Row, metric: Metric) -> None:
    """The row's verdict from its interval, with the note of a real change within the
    threshold (kept true when the interval is redrawn at another level)."""
    assert row.change is not None and row.low is not None and row.high is not None
    row.verdict = judge(row.change, row.low, row.high, row.threshold, metric.higher_is_better)
    parts = [p for p in row.note.split("; ") if p and p != REAL_CHANGE]
    if row.verdict == STABLE and (row.low > 0 or row.high < 0):
        parts.insert(0, REAL_CHANGE)
    row.note = "; ".join(parts)


def _counts(
    reports: list[dict[str, Any]], metric: Metric, path: str | None
) -> tuple[int, int] | None:
    """(events, trials) over every run of a side for a count row, None if a run lacks them."""
    if metric.counts is None:
        return None
    events = trials = 0
    for report in reports:
        src = report if path is None else (report.get("path_metrics") or {}).get(path) or {}
        x, n = (src.get(name) for name in metric.counts)
        if not isinstance(x, int) or not isinstance(n, int) or isinstance(x, bool):
            return None
        events, trials = events + x, trials + n
    return (events, trials) if reports else None


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


def _count_p(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Fisher's exact test of the two sides' rates (scipy)."""
    from scipy import stats

    (xa, na), (xb, nb) = a, b
    return float(stats.fisher_exact([[xa, na - xa], [xb, nb - xb]]).pvalue)


def _row(
    key: str,
    path: str | None,
    metric: Metric,
    threshold: float,
    alpha: float,
    values: tuple[list[float], list[float]],
    windows: tuple[np.ndarray | None, np.ndarray | None],
    history: list[np.ndarray],
    steady: Sequence[np.ndarray] = (),
    counts: tuple[tuple[int, int] | None, tuple[int, int] | None] = (None, None),
    hists: tuple[list[str] | None, list[str] | None] = (None, None),
) -> Row:
    va, vb = values
    unit = "pp" if metric.points else "%"
    row = Row(key, path, metric.name, None, None, None, unit, threshold, NOT_AVAILABLE, "")
    row.n_a, row.n_b = len(va), len(vb)
    row.primary = path is None and metric.primary
    if not va or not vb:
        row.test, row.note = "missing data", "only in A" if vb == [] else "only in B"
        return row
    sa, sb = _scale(metric, va), _scale(metric, vb)
    diff = float(sb.mean() - sa.mean())
    if metric.log:
        row.a, row.b = float(np.exp(sa.mean())), float(np.exp(sb.mean()))

        def to_change(d: float) -> float:
            return math.expm1(d) * 100.0

        delta = math.log1p(threshold / 100.0)
    else:
        row.a, row.b = float(sa.mean()), float(sb.mean())
        factor = 1.0 if metric.points else 100.0 / max(abs(row.a), metric.floor or 1e-12)

        def to_change(d: float) -> float:
            return d * factor

        delta = threshold / factor

    row.change = to_change(diff)
    seen = [sa, sb, *history, *(_scale(metric, w) for w in windows if w is not None)]
    row.varied = bool(np.ptp(np.concatenate(seen)) > 0)
    spread = _spread(metric, sa, sb, windows, history, steady, hists)
    ca, cb = counts
    if ca is not None and cb is not None and (ca[1] == 0 or cb[1] == 0):
        row.verdict, row.test = INCONCLUSIVE, "insufficient data"
        row.note, row.evidence = "0 requests on a side: the rate is unknown", "not enough data"
        return row
    by_counts = ca is not None and cb is not None
    if isinstance(spread, str) and not by_counts:
        row.verdict, row.test, row.note = INCONCLUSIVE, "insufficient data", spread
        row.evidence = "not enough data"
        return row
    use_runs = isinstance(spread, Spread) and (row.varied or not by_counts)

    def interval(level: float) -> tuple[float, float]:
        low, high = math.inf, -math.inf
        if use_runs and isinstance(spread, Spread):
            half = quantile(1 - level / 2, spread.df) * spread.se
            low, high = to_change(diff - half), to_change(diff + half)
        if by_counts and ca is not None and cb is not None:
            c_low, c_high = count_interval(ca, cb, level)
            low, high = min(low, c_low), max(high, c_high)
        return low, high

    row.low, row.high = interval(alpha)
    row._interval = interval  # type: ignore[attr-defined]  # redrawn by control_fdr
    p_values = []
    if use_runs and isinstance(spread, Spread):
        row.test, row.evidence = spread.test, spread.evidence
        se = spread.se
        p_values.append(2 * _upper_tail(abs(diff) / se, spread.df) if se > 0 else float(diff == 0))
    if by_counts and ca is not None and cb is not None:
        row.test = f"{row.test}+counts" if use_runs else "counts"
        shown = f"counts: {ca[0]} of {ca[1]} vs {cb[0]} of {cb[1]}"
        row.evidence = f"{row.evidence}; {shown}" if use_runs else shown
        p_values.append(_count_p(ca, cb) if row.varied else 1.0)
    row.p_value = max(p_values)
    _settle(row, metric)
    if not isinstance(spread, Spread):
        return row
    if row.verdict == INCONCLUSIVE:
        if spread.test == "block-bootstrap":
            row.note = "the windows of one run cannot resolve this change; repeat the runs"
        else:
            n = min(len(va), len(vb))
            row.runs_needed, advice = _runs_needed(n, delta, alpha, spread)
            row.note = "; ".join(filter(None, [row.note, advice]))
    if "history" in spread.test:
        run_sd = math.sqrt(spread.between + (spread.within or 0.0))
        noise = f"noise from {len(history)} earlier runs: ±{_noise_pct(metric, run_sd)}"
        row.note = "; ".join(filter(None, [noise, spread.note, row.note]))
    return row


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
                _settle(row, ALL_METRICS[row.metric])
                shown = f"{100 * (1 - level):.3g} % interval (FDR over {m} {family})"
                row.note = "; ".join(filter(None, [row.note, shown]))
            if p >= alpha and row.verdict in (REGRESSION, IMPROVEMENT):
                row.verdict = INCONCLUSIVE
            if was in (REGRESSION, IMPROVEMENT) and row.verdict not in (REGRESSION, IMPROVEMENT):
                control = f"not significant after FDR control over {m} {family}"
                row.note = "; ".join(filter(None, [row.note, control]))


def _series(
    noise: Sequence[dict[str, list[dict[str, Any]]]], key: str, metric: Metric, path: str | None
) -> list[list[float]]:
    """Per earlier run (its phase reports by key), its per-run values of one row."""
    out = []
    for reports in noise:
        found = (_value(r, metric, path) for r in reports.get(key, []))
        values = [v for v in found if v is not None]
        if values:
            out.append(values)
    return out


def compare_runs(
    a: dict[str, Any],
    b: dict[str, Any],
    thresholds: RegressionThresholds | None = None,
    *,
    noise: Sequence[dict[str, Any]] = (),
    gate_paths: bool = False,
) -> Comparison:
    """Every shared `profile:phase` and path of run A (reference) and run B (candidate).

    `noise`: earlier runs of the same device, profiles and settings (not A or B), whose
    run-to-run spread the intervals may use; the caller fetches them from the store.
    """
    thresholds = thresholds or RegressionThresholds()
    t = thresholds.values
    agg_a, agg_b = a.get("aggregated") or {}, b.get("aggregated") or {}
    rep_a, rep_b = _reports(a), _reports(b)
    keys_a, keys_b = set(agg_a) | set(rep_a), set(agg_b) | set(rep_b)
    noise_reports = [{**_reports(record), **_capacity(record)} for record in noise]
    rows: list[Row] = []
    only_a = sorted(keys_a - keys_b)
    only_b = sorted(keys_b - keys_a)

    def add(
        key: str,
        path: str | None,
        metric: Metric,
        ra: list,
        rb: list,
        aggs: tuple,
        steady: Sequence[np.ndarray] = (),
    ) -> None:
        values = _values(ra, aggs[0], metric, path), _values(rb, aggs[1], metric, path)
        if not (values[0] or values[1]) or not _varies(metric, [*ra, *rb], path):
            return
        single = path is None and len(ra) == 1 and len(rb) == 1
        windows = (_windows(ra[0], metric), _windows(rb[0], metric)) if single else (None, None)
        hists = (window_histograms(ra[0]), window_histograms(rb[0])) if single else (None, None)
        history = [_scale(metric, v) for v in _series(noise_reports, key, metric, path)]
        counts = (_counts(ra, metric, path), _counts(rb, metric, path))
        alpha = thresholds.alpha
        rows.append(
            _row(
                key,
                path,
                metric,
                t[metric.name],
                alpha,
                values,
                windows,
                history,
                steady,
                counts,
                hists,
            )
        )

    for key in sorted(keys_a & keys_b):
        ra, rb = rep_a.get(key, []), rep_b.get(key, [])
        aggs = agg_a.get(key) or {}, agg_b.get(key) or {}
        # One run a side: the phase's p50 windows, read once for all of its rows' drift check.
        steady = []
        if len(ra) == 1 and len(rb) == 1:
            p50 = (_windows(r[0], METRICS["p50_ms"]) for r in (ra, rb))
            steady = [w for w in p50 if w is not None]
        for metric in METRICS.values():
            if metric.compared:
                add(key, None, metric, ra, rb, aggs, steady)
        paths_a, paths_b = _paths(ra, aggs[0]), _paths(rb, aggs[1])
        only_a += [f"{key} {p}" for p in sorted(paths_a - paths_b)]
        only_b += [f"{key} {p}" for p in sorted(paths_b - paths_a)]
        for path in sorted(paths_a & paths_b):
            for name in PATH_METRICS:
                add(key, path, METRICS[name], ra, rb, aggs)
    cap_a, cap_b = _capacity(a), _capacity(b)
    if cap_a and cap_b:
        add("capacity", None, CAPACITY, cap_a["capacity"], cap_b["capacity"], ({}, {}))
    control_fdr(rows, thresholds.alpha)
    comparison = Comparison(
        run_label(a),
        run_label(b),
        rows,
        only_a,
        only_b,
        _notes(a, b),
        dict(t),
        thresholds.alpha,
        setting_differences(a, b),
        gate_paths,
        len(noise),
        stages=stage_rows(a, b),
    )
    if not comparison.has_noise_model and not comparison.mismatches:  # else: the mismatch
        comparison.notes.append(
            f"no noise model yet ({len(noise)} of {MIN_HISTORY_RUNS} earlier runs): drift "
            "between runs is unseen and can read as a change; the intervals cover only the "
            "runs compared, not the device's drift from one sitting to the next: record the "
            "device's noise (a few records of A's build on other occasions, before B)"
        )
    return comparison


def _noise_pct(metric: Metric, sd: float) -> str:
    if metric.points:
        return f"{sd:.2g} pp"
    return f"{math.expm1(sd) * 100:.0f} %" if metric.log else f"{sd:.3g}"


def _paths(reports: list[dict[str, Any]], agg: dict[str, Any]) -> set[str]:
    paths = set((agg.get("path_metrics") or {}).keys())
    for report in reports:
        paths |= set((report.get("path_metrics") or {}).keys())
    return paths


def _notes(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Partial runs, phases whose numbers describe perftui rather than the device, and stalls:
    what a reader must know before trusting a row."""
    notes = []
    for side, record in (("A", a), ("B", b)):
        if (record.get("status") or "finished") != "finished":
            notes.append(f"{side} is a {record.get('status')} run: partial data")
        for key, reports in _reports(record).items():
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


# ----- like with like ------------------------------------------------------------------------


def identity(record: dict[str, Any]) -> str:
    """The device a run measured: a stable name ("sim" for the built-in simulator, whatever its
    port) or the target."""
    return str(record.get("device") or record.get("target") or "?")


def setting_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Every difference between the settings that shape the two runs' load and measurement
    (the record's `measurement`), the device, and "settings unknown" for a run without them."""
    out = []
    if identity(a) != identity(b):
        out.append(f"device: A {identity(a)}, B {identity(b)}")
    ma, mb = a.get("measurement"), b.get("measurement")
    if not isinstance(ma, dict) or not isinstance(mb, dict):
        unknown = [s for s, m in (("A", ma), ("B", mb)) if not isinstance(m, dict)]
        out.append(f"settings unknown for {' and '.join(unknown)} (recorded before they were kept)")
        return out
    for name, va, vb in _diff(like_settings(ma), like_settings(mb), ""):
        out.append(f"{name}: A {_short(va)}, B {_short(vb)}")
    return out


def _diff(a: Any, b: Any, prefix: str) -> list[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += _diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if a == b else [(prefix, a, b)]


def _short(value: Any) -> str:
    text = "–" if value is None else str(value)
    return text if len(text) <= 40 else text[:37] + "…"
