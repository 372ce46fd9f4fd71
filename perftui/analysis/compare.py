"""Compare two stored runs per `profile:phase` and per path: an estimate of each change with a
95 % interval, and a verdict read from the interval.

Change is B relative to A (A = the reference, e.g. the baseline; B = the candidate), as a percent
of A, except error rate, whose change and threshold are in percentage points. Latency and
throughput are ratios: a side's value is the geometric mean of its runs (one run: that run's
value), and the change and its interval are computed on the log scale, so the row shows exactly
the statistic that is tested.

Where the spread comes from (named in each row's `evidence`):
- `runs`: both sides have ≥ 2 runs: the runs are the unit; the run-to-run spread of both sides
  (pooled, t distribution with its degrees of freedom) gives the interval. A percentile bootstrap
  is not used here: with 2–5 runs it is too narrow (it cannot see variance it did not sample).
- `history`: the caller passes earlier comparable runs (same device, profiles and settings). A
  two-level model: runs vary around their stored run's mean (pooled from A, B and the history),
  and stored runs' means drift around the device's (from the spread of the means of the history
  and of A, the reference: a run of the unchanged device too).
  Runs taken back to back cannot show that drift; the history can, and with it a single run a
  side can be judged. The row names it: "noise from 12 earlier runs: ±14 %".
- `windows`: one run a side and no history: a moving-block bootstrap over the phase's timeline
  windows gives each side's within-run spread, read with a t distribution whose degrees of
  freedom count the blocks. It cannot see drift slower than a run: with too few windows, or
  windows that drift together (the row's own or the phase's p50), the row says that the windows
  cannot resolve the change.
- nothing: INCONCLUSIVE, never STABLE.

Verdict (t = the metric's threshold, [lo, hi] the interval of the change):
- REGRESSION / IMPROVEMENT: the interval lies wholly beyond zero on that side and |change| ≥ t;
- STABLE: the interval lies within ±t (a real but small change is STABLE with a note);
- INCONCLUSIVE otherwise, with "about N runs per side would tell" when the half-width's
  1/√n scaling can say it.
Primary rows (whole-phase p95, p99, rps, error rate, heap drop) gate CI. The others (per-path
rows, p50, p99.9, tail p95, failures-included percentiles, capacity) gate CI only on request.
Each of the two families is controlled for the false-discovery rate (Benjamini–Hochberg, scipy's
`false_discovery_control`): a row is a REGRESSION or IMPROVEMENT only if it survives its family's
control. Rows without any variation (0 errors on every run of both sides) are not counted
in a family: they cannot call anything. For the primary family that bounds the unchanged
device's chance of failing CI.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perftui.analysis.metrics import ALL_METRICS, CAPACITY, METRICS, PATH_METRICS, Metric
from perftui.analysis.verdict import VERDICT_ORDER, Verdict
from perftui.like import like_settings

ALPHA = 0.05
CONFIG_NAME = "perftui.toml"
MIN_WINDOWS = 10  # per side: fewer cannot show whether they drift together
MIN_HISTORY_RUNS = 3
BOOTSTRAP_RESAMPLES = 1000
MAX_RUNS_ADVICE = 50

REGRESSION, IMPROVEMENT = Verdict.REGRESSION, Verdict.IMPROVEMENT
INCONCLUSIVE, STABLE, NOT_AVAILABLE = Verdict.INCONCLUSIVE, Verdict.STABLE, Verdict.NOT_AVAILABLE


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

    def gated(self) -> list[Row]:
        """The rows that decide CI: primary ones, and the rest when `gate_paths` asks."""
        return [r for r in self.rows if r.primary or self.gate_paths]

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.gated() if r.verdict == REGRESSION]

    @property
    def verdict(self) -> str:
        """The worst verdict of the gated rows (STABLE when there is nothing to compare)."""
        seen = {r.verdict for r in self.gated()}
        return next((v for v in VERDICT_ORDER if v in seen), STABLE)

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


def _scale(metric: Metric, values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Values on the judged scale: log for ratios, as they are otherwise."""
    arr = np.asarray(values, dtype=float)
    return np.log(np.maximum(arr, metric.floor or 1e-9)) if metric.log else arr


def block_bootstrap_sd(values: np.ndarray, block: int, resamples: int, seed: int = 0) -> float:
    """The standard error of the mean of a series with serial correlation: a moving-block
    bootstrap (overlapping blocks of `block` windows, drawn with replacement)."""
    n = values.size
    block = max(1, min(block, n))
    starts = np.random.default_rng(seed).integers(0, n - block + 1, (resamples, -(-n // block)))
    index = (starts[:, :, None] + np.arange(block)).reshape(resamples, -1)[:, :n]
    # Overlapping blocks' means are centred on the series' mean, which takes b/n of their
    # variance away (for independent windows exactly): 6 windows in blocks of 2 read 2/3 of it.
    bias = n / (n - block) if n > block else 1.0
    return float(np.std(values[index].mean(axis=1), ddof=1) * math.sqrt(bias))


def _lag1(values: np.ndarray) -> float:
    """The lag-1 autocorrelation of a series (0 for a flat one)."""
    centred = values - values.mean()
    denominator = float(centred @ centred)
    return float(centred[1:] @ centred[:-1]) / denominator if denominator > 0 else 0.0


def window_spread(
    metric: Metric, wa: np.ndarray, wb: np.ndarray, steady: Sequence[np.ndarray] = ()
) -> Spread | str:
    """One run a side: the two sides' within-run standard errors. `steady`: the phase's p50
    windows of each side, whose drift is the phase's (see below)."""
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
    se = [block_bootstrap_sd(x, block, BOOTSTRAP_RESAMPLES, seed=i) for i, x in enumerate(scaled)]
    # Each side's error is estimated from about n/block independent blocks: a t interval with
    # Welch–Satterthwaite's degrees of freedom, not a normal one that trusts 7 windows as 700.
    dfs = [max(1.0, w.size / block - 1) for w in (wa, wb)]
    var = se[0] ** 2 + se[1] ** 2
    den = sum(s**4 / d for s, d in zip(se, dfs, strict=True))
    df = var**2 / den if den > 0 else min(dfs)
    sizes = f"{wa.size} windows" if wa.size == wb.size else f"{wa.size} vs {wb.size} windows"
    return Spread(math.sqrt(var), df, "block-bootstrap", f"1 run each: {sizes}")


def _ss(groups: Sequence[np.ndarray]) -> tuple[float, int]:
    """Sum of squares around each group's mean, and its degrees of freedom."""
    ss = sum(float(((g - g.mean()) ** 2).sum()) for g in groups if g.size > 1)
    return ss, sum(g.size - 1 for g in groups if g.size > 1)


def _spread(
    metric: Metric,
    sa: np.ndarray,
    sb: np.ndarray,
    windows: tuple[np.ndarray | None, np.ndarray | None],
    history: list[np.ndarray],
    steady: Sequence[np.ndarray] = (),
) -> Spread | str:
    """Where the interval's spread comes from (see the module docstring), or why there is none.

    With history (≥ 3 earlier comparable runs, each an array of its per-run values on the judged
    scale) the model has two levels: a run varies around its stored run's mean (within, pooled
    from A, B and the history), and stored runs' means vary around the device's (between, from
    the spread of the means of the history and of A, the reference, beyond what within
    explains). The difference of two sides' means then has variance
    2·between + within·(1/nA + 1/nB).
    """
    na, nb = sa.size, sb.size
    runs = f"{na} run{'s' if na > 1 else ''} each" if na == nb else f"{na} vs {nb} runs"
    own_ss, own_df = _ss([sa, sb]) if na >= 2 and nb >= 2 else (0.0, 0)
    if len(history) >= MIN_HISTORY_RUNS:
        # A, the reference, is a run of the unchanged device too, so its mean joins the sample
        # that shows the drift: a reference outside a short history then widens the interval
        # rather than reading as B's change (6 runs within 2 %, then an A 23 % faster: CI failed).
        sample = [*history, sa]
        ss, df = _ss([*sample, sb])
        means = np.array([h.mean() for h in sample])
        spread_of_means = float(np.var(means, ddof=1))
        within: float | None = None
        if df:
            within = ss / df
            expected = float(np.mean([within / h.size for h in sample]))
            between = max(0.0, spread_of_means - expected)
            se = math.sqrt(2 * between + within * (1 / na + 1 / nb))
        else:  # single runs everywhere: drift and run-to-run noise cannot be told apart
            between = spread_of_means
            se = math.sqrt(2 * between)
        dof = len(sample) - 1 if between > 0 or not df else df
        evidence = f"{runs}; history: {len(history)} runs"
        test = "t(runs+history)" if own_df else "t(history)"
        return Spread(se, dof, test, evidence, within, between)
    if own_df:
        within = own_ss / own_df
        se = math.sqrt(within * (1 / na + 1 / nb))
        return Spread(se, own_df, "t(runs)", runs, within)
    if na == 1 and nb == 1 and windows[0] is not None and windows[1] is not None:
        return window_spread(metric, windows[0], windows[1], steady)
    if na == 1 and nb == 1:
        return "1 run each, no timeline and no history: nothing shows the noise"
    return f"{min(na, nb)} run on a side and no history: nothing shows its noise"


def judge(change: float, low: float, high: float, threshold: float, higher_is_better: bool) -> str:
    """The verdict of a change and its interval (module docstring)."""
    if (low > 0 or high < 0) and abs(change) >= threshold:
        worse = change < 0 if higher_is_better else change > 0
        return REGRESSION if worse else IMPROVEMENT
    return STABLE if -threshold <= low and high <= threshold else INCONCLUSIVE


def _runs_needed(
    n: int, half: float, change: float, threshold: float, spread: Spread
) -> tuple[int | None, str]:
    """How many runs per side would let the interval either exclude zero at this change or fit
    inside ±threshold: the half-width shrinks with the within-run part only (∝ 1/√n); drift
    between runs does not average away."""
    margin = max(abs(change), threshold - abs(change))
    if spread.within is None or half <= 0 or margin <= 0:
        return None, ""
    total = 2 * spread.between + 2 * spread.within / n
    room = (margin / half) ** 2 * total - 2 * spread.between
    if spread.within <= 0 or room <= 0:
        return None, "more runs will not tell: the device drifts between runs more than this"
    needed = max(n + 1, math.ceil(2 * spread.within / room))
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
    else:
        row.a, row.b = float(sa.mean()), float(sb.mean())
        factor = 1.0 if metric.points else 100.0 / max(abs(row.a), metric.floor or 1e-12)

        def to_change(d: float) -> float:
            return d * factor

    row.change = to_change(diff)
    seen = [sa, sb, *history, *(_scale(metric, w) for w in windows if w is not None)]
    row.varied = bool(np.ptp(np.concatenate(seen)) > 0)
    spread = _spread(metric, sa, sb, windows, history, steady)
    if isinstance(spread, str):
        row.verdict, row.test, row.note = INCONCLUSIVE, "insufficient data", spread
        row.evidence = "not enough data"
        return row
    se = spread.se
    half = quantile(1 - alpha / 2, spread.df) * se
    row.low, row.high = to_change(diff - half), to_change(diff + half)
    row.test, row.evidence = spread.test, spread.evidence
    row.p_value = 2 * _upper_tail(abs(diff) / se, spread.df) if se > 0 else float(diff == 0)
    row.verdict = judge(row.change, row.low, row.high, threshold, metric.higher_is_better)
    if row.verdict == STABLE and (row.low > 0 or row.high < 0):
        row.note = "a real change, within the threshold"
    if row.verdict == INCONCLUSIVE:
        if spread.test == "block-bootstrap":
            row.note = "the windows of one run cannot resolve this change; repeat the runs"
        else:
            half_pct = (row.high - row.low) / 2
            n = min(len(va), len(vb))
            row.runs_needed, row.note = _runs_needed(n, half_pct, row.change, threshold, spread)
    if "history" in spread.test:
        run_sd = math.sqrt(spread.between + (spread.within or 0.0))
        noise = f"noise from {len(history)} earlier runs: ±{_noise_pct(metric, run_sd)}"
        row.note = "; ".join(filter(None, [noise, row.note]))
    return row


def control_fdr(rows: list[Row], alpha: float) -> None:
    """Benjamini–Hochberg in two families: the primary rows, which gate CI, and the others. With
    no change at all, any call is a false one, so the primary family bounds the chance that the
    gate fails on noise by alpha (BH's condition: the rows' tests independent or positively
    correlated, as a phase's latency and rps rows are); a dozen rows tested one by one would fail
    CI on an unchanged device several times as often. A row with no variation at all (0 errors
    everywhere) cannot reach significance, so it is left out of its family rather than diluting
    it (Tarone's rule for untestable hypotheses). The control can only take calls back, so with
    no call in a family there is nothing to adjust (and scipy.stats is not loaded)."""
    for primary in (True, False):
        tested = [r for r in rows if r.primary is primary and r.p_value is not None and r.varied]
        if not any(r.verdict in (REGRESSION, IMPROVEMENT) for r in tested):
            continue
        from scipy import stats  # imported on use: the heaviest import of a `compare`

        adjusted = stats.false_discovery_control([r.p_value for r in tested], method="bh")
        family = "primary rows" if primary else "rows"
        for row, p in zip(tested, adjusted, strict=True):
            row.p_adjusted = float(p)
            if row.verdict in (REGRESSION, IMPROVEMENT) and p >= alpha:
                row.verdict = INCONCLUSIVE
                control = f"not significant after FDR control over {len(tested)} {family}"
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
        history = [_scale(metric, v) for v in _series(noise_reports, key, metric, path)]
        alpha = thresholds.alpha
        rows.append(
            _row(key, path, metric, t[metric.name], alpha, values, windows, history, steady)
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
    )
    if not comparison.has_noise_model and not comparison.mismatches:  # else: the mismatch
        comparison.notes.append(
            f"no noise model yet ({len(noise)} of {MIN_HISTORY_RUNS} earlier runs): drift "
            "between runs is unseen and can read as a change"
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
