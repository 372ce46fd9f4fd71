"""Verdicts from intervals, on synthetic runs whose truth is known: pure noise is called a change
at about the nominal rate (so an "always significant" interval fails here), a real shift is
found, too little data is INCONCLUSIVE, secondary rows are FDR-controlled and only primary rows
gate."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from perftui.analysis.compare import compare_runs
from perftui.analysis.comparison import Row
from perftui.analysis.judge import control_fdr, judge
from perftui.analysis.metrics import METRICS
from perftui.analysis.spread import window_spread
from perftui.analysis.stats import block_bootstrap_sd, quantile
from perftui.analysis.thresholds import ConfigError, RegressionThresholds
from perftui.analysis.verdict import IMPROVEMENT, INCONCLUSIVE, REGRESSION, STABLE
from perftui.config import load_thresholds
from perftui.history.legacy import read_legacy
from perftui.like import setting_differences
from tests.history_factory import make_record

FIXTURES = Path(__file__).parent / "fixtures" / "legacy"
SMALL = {"profiles": ("python_light",), "phases": ("burst",), "max_samples": 300}
SEEDS = 30


def _runs(seed: int, n: int, scale: float = 1.0, sd: float = 0.25, **kw: object) -> dict:
    """A record of `n` runs whose per-run p95 is 20 ms × scale × a run-to-run factor (log sd
    `sd`): the noise the interval must see."""
    rng = np.random.default_rng(seed)
    p95 = list(20.0 * scale * np.exp(rng.normal(0.0, sd, n)))
    return make_record(p95, seed=seed, **{**SMALL, **kw})


def _row(comparison, metric: str = "p95_ms") -> Row:
    return next(r for r in comparison.rows if r.metric == metric and r.path is None)


def _called(row: Row) -> bool:
    return row.verdict in (REGRESSION, IMPROVEMENT)


# ----- the verdict rule --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change,low,high,verdict",
    [
        (30.0, 10.0, 50.0, REGRESSION),  # wholly above zero, past the 20 % threshold
        (-30.0, -50.0, -10.0, IMPROVEMENT),
        (10.0, 2.0, 18.0, STABLE),  # real but within ±threshold
        (15.0, 2.0, 28.0, INCONCLUSIVE),  # real, below the threshold, may be beyond it
        (30.0, -5.0, 65.0, INCONCLUSIVE),  # big but could be nothing
        (1.0, -5.0, 7.0, STABLE),
    ],
)
def test_judge(change: float, low: float, high: float, verdict: str) -> None:
    assert judge(change, low, high, 20.0, higher_is_better=False) == verdict


def test_higher_is_better_flips_the_direction() -> None:
    assert judge(-30.0, -50.0, -10.0, 10.0, higher_is_better=True) == REGRESSION


# ----- A/A: the noise reaches the interval --------------------------------------------------


def test_aa_runs_false_alarms_near_nominal() -> None:
    """3 runs a side, run-to-run noise large enough that a threshold-only or always-significant
    verdict would call a change in about a third of the pairs."""
    excluded = called = 0
    for seed in range(SEEDS):
        comparison = compare_runs(_runs(seed, 3), _runs(1000 + seed, 3))
        row = _row(comparison)
        assert row.evidence == "3 runs each" and row.test == "t(runs)"
        # With no history the runs stand alone, and the report says what that leaves out.
        assert any("cover only the runs compared" in n for n in comparison.notes)
        excluded += row.low > 0 or row.high < 0
        called += _called(row)
    assert excluded <= 0.12 * SEEDS
    assert called <= 0.1 * SEEDS
    # The noise really is that large: the changes often pass the threshold.
    beyond = sum(
        abs(_row(compare_runs(_runs(s, 3), _runs(1000 + s, 3))).change) >= 20 for s in range(10)
    )
    assert beyond >= 2


def test_forty_percent_slower_is_found_with_five_runs() -> None:
    found = 0
    for seed in range(20):
        c = compare_runs(_runs(seed, 5, sd=0.1), _runs(500 + seed, 5, scale=1.4, sd=0.1))
        row = _row(c)
        found += row.verdict == REGRESSION
        assert row.low <= row.change <= row.high
    assert found >= 18


def test_direction_agreement() -> None:
    """Estimate and interval agree: the estimate lies inside its interval, and a called change
    has an interval of its own sign."""
    for seed in range(8):
        scale = (0.6, 1.4)[seed % 2]
        c = compare_runs(_runs(seed, 4, sd=0.1), _runs(70 + seed, 4, scale=scale, sd=0.1))
        for row in c.rows:
            if row.low is None:
                continue
            assert row.low <= row.change <= row.high, row
            if _called(row):
                assert np.sign(row.low) == np.sign(row.high) == np.sign(row.change)
        assert _row(c).verdict == (IMPROVEMENT if scale < 1 else REGRESSION)


# ----- one run a side ----------------------------------------------------------------------------


def test_single_runs_without_timeline_or_history_are_inconclusive() -> None:
    """The old rule read a −50 % rps with one run a side as STABLE: it is INCONCLUSIVE."""
    a = make_record(20.0, runs=1, **SMALL)
    b = make_record(20.0, runs=1, seed=4, **SMALL)
    b["raw_runs"][0]["results"][0]["report"]["rps_ok"] /= 2
    c = compare_runs(a, b)
    row = _row(c, "rps_ok")
    assert row.change == pytest.approx(-50, abs=1)
    assert row.verdict == INCONCLUSIVE and row.low is None
    assert "nothing shows the noise" in row.note
    assert all(r.verdict != STABLE for r in c.rows), "no data is never STABLE"
    assert c.verdict == INCONCLUSIVE and not c.regressions


def test_single_runs_use_timeline_windows() -> None:
    excluded = 0
    for seed in range(SEEDS):
        a = make_record(20.0, runs=1, seed=seed, windows=20, **SMALL)
        b = make_record(20.0, runs=1, seed=900 + seed, windows=20, **SMALL)
        row = _row(compare_runs(a, b))
        assert row.test == "block-bootstrap" and row.evidence == "1 run each: 20 windows"
        excluded += row.low > 0 or row.high < 0
    assert excluded <= 0.15 * SEEDS
    slow = make_record(30.0, runs=1, seed=5, windows=20, **SMALL)
    row = _row(compare_runs(make_record(20.0, runs=1, windows=20, **SMALL), slow))
    assert row.verdict == REGRESSION and row.low > 20


def test_too_few_windows_say_so() -> None:
    a = make_record(20.0, runs=1, windows=3, **SMALL)
    b = make_record(30.0, runs=1, seed=2, windows=3, **SMALL)
    row = _row(compare_runs(a, b))
    assert row.verdict == INCONCLUSIVE and "too few to resolve" in row.note


def test_history_is_the_noise_model() -> None:
    """One run a side; earlier comparable runs give the run-to-run spread, named in the row."""
    called = 0
    for seed in range(SEEDS):
        noise = [_runs(5000 + 20 * seed + i, 1) for i in range(12)]
        row = _row(compare_runs(_runs(seed, 1), _runs(3000 + seed, 1), noise=noise))
        assert row.evidence == "1 run each; history: 12 runs"
        assert row.note.startswith("noise from 12 earlier runs: ±")
        called += _called(row)
    assert called <= 0.1 * SEEDS
    noise = [_runs(7000 + i, 1, sd=0.05) for i in range(12)]
    slow = compare_runs(_runs(1, 1, sd=0.05), _runs(2, 1, scale=1.5, sd=0.05), noise=noise)
    assert _row(slow).verdict == REGRESSION
    assert not any("noise model" in n for n in slow.notes)
    few = compare_runs(_runs(1, 3), _runs(2, 3), noise=noise[:2])
    assert "no noise model yet (2 of 3 earlier runs)" in few.notes[-1]


def test_the_reference_joins_the_noise_sample() -> None:
    """Six earlier runs happened to lie within 1 %; then A came 30 % slower and B back at the
    usual level, all one unchanged device. Judged on the six alone, B read as a 23 % improvement
    with a narrow interval; A's own distance from them is noise the interval must carry."""
    noise = [_runs(7000 + i, 1, sd=0.01) for i in range(6)]
    row = _row(compare_runs(_runs(1, 1, scale=1.3, sd=0.0), _runs(2, 1, sd=0.0), noise=noise))
    assert row.change == pytest.approx(-23.1, abs=0.1)
    assert row.verdict == INCONCLUSIVE and row.low < -30 and row.high > 0


def test_inconclusive_says_how_many_runs_would_tell() -> None:
    c = compare_runs(_runs(3, 2, sd=0.2), _runs(4, 2, scale=1.3, sd=0.2))
    row = _row(c)
    assert row.verdict == INCONCLUSIVE, row
    assert row.runs_needed is not None and row.runs_needed > 2
    assert (
        f"about {row.runs_needed} runs per side would tell" in row.note or "more than" in row.note
    )


# ----- what gates, and the false-discovery control ----------------------------------------------


def _secondary(p: float, verdict: str = REGRESSION) -> Row:
    row = Row("k:burst", "/x", "p95_ms", 1.0, 2.0, 100.0, "%", 20.0, verdict, "t(runs)")
    row.p_value, row.low, row.high = p, 10.0, 200.0
    return row


def test_benjamini_hochberg_across_rows() -> None:
    """p = 0.02 is significant alone, but not among 20 rows of noise; p = 1e-6 survives; a
    primary row is not part of the secondary rows' control (alone in its family, it stands)."""
    alone = _secondary(0.02)
    strong = _secondary(1e-6)
    primary = _secondary(0.02)
    primary.path, primary.primary = None, True
    noise = [_secondary(0.6, STABLE) for _ in range(20)]
    control_fdr([alone, strong, primary, *noise], 0.05)
    assert alone.verdict == INCONCLUSIVE and "FDR control over 22 rows" in alone.note
    assert alone.p_adjusted is not None and alone.p_adjusted > 0.05
    assert strong.verdict == REGRESSION and primary.verdict == REGRESSION
    single = _secondary(0.02)
    control_fdr([single], 0.05)
    assert single.verdict == REGRESSION


def _primary(z: float) -> Row:
    """A primary row whose estimate lies z standard errors from no change (95 % interval)."""
    row = Row("k:burst", None, "p95_ms", 20.0, 20.0, 100 * z / 4, "%", 0.0, STABLE, "t(runs)")
    row.primary, row.p_value = True, math.erfc(abs(z) / math.sqrt(2))
    row.low, row.high = 100 * (z - 1.96) / 4, 100 * (z + 1.96) / 4
    row.verdict = judge(row.change, row.low, row.high, 0.0, higher_is_better=False)
    return row


def test_primary_rows_of_an_unchanged_device_fail_ci_at_most_at_alpha() -> None:
    """Ten primary rows of pure noise per comparison (five profile:phases): tested one by one,
    about a fifth of the comparisons would call a regression somewhere and fail CI; controlled as
    a family, about alpha of them. A real move on one row still stands."""
    rng = np.random.default_rng(7)
    trials, raw, gated = 400, 0, 0
    for _ in range(trials):
        rows = [_primary(z) for z in rng.normal(0.0, 1.0, 10)]
        raw += any(r.verdict == REGRESSION for r in rows)
        control_fdr(rows, 0.05)
        gated += any(r.verdict == REGRESSION for r in rows)
    assert raw >= 0.15 * trials  # the problem is real: the noise reaches every row's test
    assert gated <= 0.05 * trials
    rows = [_primary(5.0), *(_primary(z) for z in rng.normal(0.0, 1.0, 9))]
    control_fdr(rows, 0.05)
    assert rows[0].verdict == REGRESSION
    weak = [_primary(2.3), *(_primary(0.0) for _ in range(9))]
    control_fdr(weak, 0.05)
    assert weak[0].verdict == INCONCLUSIVE
    assert weak[0].note == "not significant after FDR control over 10 primary rows"


def test_rows_without_variation_do_not_dilute_the_family() -> None:
    """0 errors and 0 heap drop on both sides cannot call anything: they are not part of the
    family. Counted in, seven of them would take back a z = 2.6 call among three rows."""
    rows = [_primary(2.6), _primary(0.3), _primary(-0.5)]
    for _ in range(7):
        flat = _primary(0.0)
        flat.low = flat.high = flat.change = 0.0
        flat.p_value, flat.varied = 1.0, False
        rows.append(flat)
    control_fdr(rows, 0.05)
    assert rows[0].verdict == REGRESSION and rows[0].p_adjusted == pytest.approx(
        3 * math.erfc(2.6 / math.sqrt(2))
    )


def test_only_primary_rows_gate_unless_asked() -> None:
    a, b = _runs(1, 4, sd=0.05), _runs(2, 4, sd=0.05)
    for record in (a, b):  # one path of B gets 3× slower; the phase as a whole does not move
        for run in record["raw_runs"]:
            run["results"][0]["report"]["path_metrics"]["/deps"]["p50_ms"] *= (
                3.0 if record is b else 1.0
            )
    c = compare_runs(a, b)
    deps = next(r for r in c.rows if r.path == "/deps" and r.metric == "p50_ms")
    assert deps.verdict == REGRESSION and deps.place == "per-path"
    assert not c.regressions and "1 regression in per-path rows" in c.where()
    assert compare_runs(a, b, gate_paths=True).regressions
    errors = _row(c, "error_rate")  # 0 errors on every run of both sides
    assert errors.verdict == STABLE and not errors.varied
    three, one, *noise = (
        _runs(seed, runs) for seed, runs in ((3, 3), (4, 1), (5, 3), (6, 3), (7, 3))
    )
    for record in (three, one, *noise):  # 0.1 % everywhere: flat, though 3 × 0.1 / 3 is not 0.1
        for run in record["raw_runs"]:
            run["results"][0]["report"]["error_rate"] = 0.1
    flat = _row(compare_runs(three, one, noise=noise), "error_rate")
    assert flat.change != 0 and not flat.varied
    assert c.tested == sum(1 for r in c.rows if r.low is not None and r.varied) > 20


def test_failures_included_and_capacity_rows() -> None:
    a, b = _runs(1, 3, sd=0.05), _runs(2, 3, sd=0.05)
    for record, factor in ((a, 1.0), (b, 2.0)):
        for run in record["raw_runs"]:
            report = run["results"][0]["report"]
            report["with_failures"] = {
                f"{q}_ms": report[f"{q}_ms"] * factor for q in ("p50", "p95", "p99", "p999")
            }
        record["capacity"] = {"capacity_rps": 100.0 / factor}
    c = compare_runs(a, b)
    wf = _row(c, "p95_with_failures_ms")
    assert not wf.primary and wf.change == pytest.approx(100, rel=0.1)
    cap = _row(c, "capacity_rps")
    assert cap.key == "capacity" and cap.change == pytest.approx(-50)
    assert cap.verdict == INCONCLUSIVE  # one value a side, no history


# ----- like with like ----------------------------------------------------------------------------


def test_setting_differences_are_named() -> None:
    a = make_record(20.0, runs=1, **SMALL)
    b = make_record(20.0, runs=1, settings={"timeout": 2.0}, **SMALL)
    assert setting_differences(a, b) == ["timeout: A 6.0, B 2.0"]
    assert compare_runs(a, b).mismatches == ["timeout: A 6.0, B 2.0"]
    legacy = dict(a)
    del legacy["measurement"]
    assert setting_differences(legacy, b) == [
        "settings unknown for A (recorded before they were kept)"
    ]
    sim_a = make_record(20.0, runs=1, target="127.0.0.1:4001", device="sim", **SMALL)
    sim_b = make_record(20.0, runs=1, target="127.0.0.1:4377", device="sim", **SMALL)
    assert setting_differences(sim_a, sim_b) == []
    both = make_record(20.0, runs=1, profiles=["api", "python_light"], phases=["burst"])
    one = make_record(20.0, runs=1, profiles=["api"], phases=["burst"])
    assert setting_differences(both, one) == ["phases.python_light:burst: only in A"]  # no dict


# ----- thresholds and old records ----------------------------------------------------------------


def test_thresholds_from_config_file_and_flags(tmp_path: Path) -> None:
    (tmp_path / "perftui.toml").write_text("[thresholds]\np95_ms = 60\nalpha = 0.01\n")
    thresholds = load_thresholds(tmp_path)
    assert thresholds.values["p95_ms"] == 60 and thresholds.alpha == 0.01
    assert thresholds.values["rps_ok"] == 10
    c = compare_runs(_runs(1, 5, sd=0.05), _runs(2, 5, scale=1.4, sd=0.05), thresholds)
    row = _row(c)
    assert row.low > 0 and row.high < 60  # real, and within the 60 % threshold
    # The FDR control ran (the rps row was called), so the row shows its adjusted interval.
    assert row.verdict == STABLE and row.note.startswith("a real change, within the threshold")
    assert "% interval (FDR over 3 primary rows)" in row.note
    assert load_thresholds(tmp_path, overrides={"p95_ms": 5}).values["p95_ms"] == 5
    other = tmp_path / "ci.toml"
    other.write_text("[thresholds]\nlatency = 3\n")
    with pytest.raises(ConfigError, match="unknown threshold 'latency'"):
        load_thresholds(tmp_path, other)
    with pytest.raises(ConfigError, match="alpha"):
        RegressionThresholds().updated({"alpha": 2}, "flag")


def test_identical_records_are_stable_only_if_quiet() -> None:
    quiet = _runs(1, 3, sd=0.01)
    assert {r.verdict for r in compare_runs(quiet, quiet).rows if r.primary} == {STABLE}
    noisy = _runs(1, 3, sd=0.5)
    row = _row(compare_runs(noisy, noisy))
    assert row.change == 0 and row.high > 20 and row.verdict == INCONCLUSIVE


def test_keys_on_one_side_are_listed() -> None:
    a = make_record(20.0, runs=1, profiles=["api", "python_light"], max_samples=300)
    b = make_record(20.0, runs=1, profiles=["python_light", "c_static_only"], max_samples=300)
    c = compare_runs(a, b)
    assert c.only_in_a == ["api:burst", "api:long"]
    assert c.only_in_b == ["c_static_only:burst", "c_static_only:long"]
    assert {r.key for r in c.rows} == {"python_light:burst", "python_light:long"}


def test_paths_on_one_side_are_listed() -> None:
    a = make_record(20.0, runs=1, **SMALL)
    b = make_record(20.0, runs=1, **SMALL)
    for run in b["raw_runs"]:
        report = run["results"][0]["report"]
        report["path_metrics"]["/new"] = report["path_metrics"].pop("/deps")
    del b["aggregated"]["python_light:burst"]["path_metrics"]["/deps"]
    c = compare_runs(a, b)
    assert c.only_in_a == ["python_light:burst /deps"]
    assert c.only_in_b == ["python_light:burst /new"]


def test_legacy_records_compare_without_histograms() -> None:
    a, _ = read_legacy(FIXTURES / "perf_20250301T101500Z_baseline_isolated_v1.json")
    b, _ = read_legacy(FIXTURES / "latest.partial.json")
    c = compare_runs(a, b)
    assert c.only_in_a == ["python_light:burst", "python_light:long"]
    assert "B is a stopped run: partial data" in c.notes
    assert any("settings unknown" in m for m in c.mismatches)
    metrics = {r.metric for r in c.rows}
    assert "p999_ms" not in metrics and {"p95_ms", "heap_internal_drop"} <= metrics


def _drifting(seed: int, n: int, between: float = 0.25, within: float = 0.03) -> dict:
    """A record of `n` runs taken back to back on a device that drifts between records: all its
    runs share one factor (log sd `between`) and wobble a little around it (`within`)."""
    rng = np.random.default_rng(seed)
    level = rng.normal(0.0, between)
    p95 = list(20.0 * np.exp(level + rng.normal(0.0, within, n)))
    return make_record(p95, seed=seed, **SMALL)


def test_history_sees_drift_that_runs_of_one_record_cannot() -> None:
    """Runs taken back to back agree with each other; the device moves between records. Their
    own runs make every pair look different; the history's spread of record means does not."""
    alone = with_history = 0
    for seed in range(20):
        a, b = _drifting(seed, 3), _drifting(400 + seed, 3)
        alone += _called(_row(compare_runs(a, b)))
        noise = [_drifting(800 + 20 * seed + i, 3) for i in range(10)]
        row = _row(compare_runs(a, b, noise=noise))
        assert row.evidence == "3 runs each; history: 10 runs" and row.test == "t(runs+history)"
        with_history += _called(row)
        if row.verdict == INCONCLUSIVE and row.runs_needed is None:
            assert "more runs will not tell" in row.note
    assert alone >= 6  # the problem is real: runs of one record hide the drift
    assert with_history <= 2


def test_block_bootstrap_sees_serial_correlation() -> None:
    """Independent windows: the standard error of the mean is σ/√n. Windows that drift together
    (AR(1), ρ = 0.8): the block bootstrap's error is well above that naive σ/√n."""
    rng = np.random.default_rng(3)
    iid = rng.normal(0.0, 1.0, 200)
    assert block_bootstrap_sd(iid, 4, 2000) == pytest.approx(1 / np.sqrt(200), rel=0.25)
    ar = np.zeros(200)
    for i in range(1, 200):
        ar[i] = 0.8 * ar[i - 1] + rng.normal(0.0, 0.6)
    naive = ar.std(ddof=1) / np.sqrt(200)
    assert block_bootstrap_sd(ar, 6, 2000) > 1.8 * naive


def _windows(rng: np.random.Generator, n: int, rho: float) -> np.ndarray:
    """n windows of a p95 around 20 ms whose log wanders as AR(1), correlation `rho`, sd 0.2."""
    x = np.empty(n)
    x[0] = rng.normal()
    for i in range(1, n):
        x[i] = rho * x[i - 1] + math.sqrt(1 - rho * rho) * rng.normal()
    return np.exp(3.0 + 0.2 * x)


def _window_calls(windows: int, rho: float, trials: int) -> tuple[int, int]:
    """Of `trials` A/A pairs of single runs, how many intervals exclude no change, and how many
    say the run cannot show its noise (p95 and the phase's p50 windows alike)."""
    rng, metric = np.random.default_rng(windows), METRICS["p95_ms"]
    excluded = unresolved = 0
    for _ in range(trials):
        wa, wb = _windows(rng, windows, rho), _windows(rng, windows, rho)
        steady = [_windows(rng, windows, rho) for _ in range(2)]
        spread = window_spread(metric, wa, wb, steady)
        if isinstance(spread, str):
            unresolved += 1
            continue
        diff = float(np.log(wb).mean() - np.log(wa).mean())
        excluded += abs(diff) > quantile(0.975, spread.df) * spread.se
    return excluded, unresolved


@pytest.mark.parametrize("windows", [10, 20, 60])
def test_independent_windows_cover_at_their_level(windows: int) -> None:
    """Independent windows of an unchanged device: the 95 % interval excludes no change in about
    5 % of pairs, even from 10 windows a side. Read as normal, the bootstrap's error (from a
    handful of blocks, and short by the b/n its overlapping blocks lose) excluded it in 8–17 %."""
    excluded, unresolved = _window_calls(windows, 0.0, 400)
    assert 4 <= excluded <= 28 and unresolved <= 40


def test_windows_that_drift_together_do_not_resolve_a_change() -> None:
    """A link that wanders over seconds (window-to-window correlation 0.8, as a 5 s time
    constant gives 1 s windows): short blocks would read the drift as noise that averages away
    and call a change in about a third of A/A pairs; the run says it cannot show its noise."""
    excluded, unresolved = _window_calls(60, 0.8, 200)
    assert excluded <= 10 and unresolved >= 180
    a, b = (make_record(20.0, runs=1, seed=s, windows=60, **SMALL) for s in (1, 2))
    for record, seed in ((a, 3), (b, 4)):
        timeline = record["raw_runs"][0]["results"][0]["report"]["timeline"]
        timeline["p95_ms"] = list(_windows(np.random.default_rng(seed), 60, 0.95))
    row = _row(compare_runs(a, b))
    assert row.verdict == INCONCLUSIVE and "windows drift together" in row.note


def test_a_phase_drifts_as_one() -> None:
    """B's run sat in a slow stretch of the link: its p50 windows climb and fall together, while
    the p95 windows, each from a handful of tail samples, look independent. The p95 row alone
    would call +30 % a regression; the phase's p50 says that one run cannot show this noise."""
    a, b = (make_record(p95, runs=1, seed=s, windows=12, **SMALL) for p95, s in ((20, 1), (26, 2)))
    rng = np.random.default_rng(7)
    for record, level in ((a, 20.0), (b, 26.0)):
        timeline = record["raw_runs"][0]["results"][0]["report"]["timeline"]
        timeline["p95_ms"] = list(level * rng.lognormal(0.0, 0.05, 12))
        timeline["p50_ms"] = list(level / 2 * np.exp(0.2 * np.sin(np.arange(12) / 3)))
    row = _row(compare_runs(a, b))
    assert row.verdict == INCONCLUSIVE, row
    assert "the phase's windows drift together (p50_ms lag-1" in row.note


# ----- what a reader must know before trusting a row ---------------------------------------------


def test_stalls_and_client_bound_phases_are_shown_in_the_comparison() -> None:
    a, b = _runs(1, 3), _runs(2, 3)
    for run in b["raw_runs"]:
        report = run["results"][0]["report"]
        report["stalls"] = {"count": 2, "longest_ms": 1002.5, "total_ms": 2004.0, "at": [1.0, 6.0]}
        report["client_bound"] = run["run_index"] == 1
    for run in a["raw_runs"]:
        run["results"][0]["report"]["stalls"] = {"count": 0, "longest_ms": 0.0, "total_ms": 0.0}
    c = compare_runs(a, b)
    assert "B python_light:burst: 6 stall(s), longest 1002.5 ms" in c.notes
    assert any(n.startswith("B python_light:burst: client-bound in 1 of 3 run(s)") for n in c.notes)
    assert not any(n.startswith("A ") for n in c.notes)
    row = _row(c, "stall_longest_ms")
    assert row.a == 0.0 and row.b == 1002.5 and not row.primary


def test_capacity_fell_18_percent_is_a_regression_with_earlier_searches_as_noise() -> None:
    """Eight earlier searches of the device found 130 req/s ± ~2 %: a fall to 106.6 is far outside
    that noise, and past the 10 % threshold; a fall to 127 is not."""
    rng = np.random.default_rng(7)

    def search(rps: float) -> dict:
        record = _runs(int(rng.integers(1000)), 1, sd=0.02)
        record["capacity"] = {"capacity_rps": rps}
        return record

    noise = [search(130.0 * float(np.exp(rng.normal(0.0, 0.02)))) for _ in range(8)]
    fell = _row(compare_runs(search(130.0), search(106.6), noise=noise), "capacity_rps")
    assert fell.change == pytest.approx(-18, abs=0.1) and fell.primary
    assert fell.verdict == REGRESSION and fell.high is not None and fell.high < 0
    same = _row(compare_runs(search(130.0), search(127.0), noise=noise), "capacity_rps")
    assert same.verdict in (STABLE, INCONCLUSIVE)


def test_the_corrected_p99_row_appears_only_where_a_correction_changed_it() -> None:
    a, b = _runs(1, 3), _runs(2, 3)
    for record in (a, b):
        for run in record["raw_runs"]:
            report = run["results"][0]["report"]
            report["co_corrected"] = {"p99_ms": report["p99_ms"]}  # no stall: nothing corrected
    assert not any(r.metric == "co_p99_ms" for r in compare_runs(a, b).rows)
    b["raw_runs"][0]["results"][0]["report"]["co_corrected"]["p99_ms"] = 900.0  # a stall in B
    row = _row(compare_runs(a, b), "co_p99_ms")
    assert row.b is not None and row.b > row.a
