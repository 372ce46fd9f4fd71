"""Verdicts: no regression on A/A noise, a 30 % slowdown is always a regression, and every verdict
names the test that decided it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from perftui.analysis.compare import (
    DEGRADED,
    REGRESSION,
    STABLE,
    ConfigError,
    Thresholds,
    compare_runs,
    load_thresholds,
)
from perftui.history.legacy import read_legacy
from tests.history_factory import make_record

FIXTURES = Path(__file__).parent / "fixtures" / "legacy"
PROFILES = ("python_light",)


def _noisy(seed: int, runs: int, scale: float = 1.0, **kw: object) -> dict:
    """A run of `runs` repetitions whose per-run p95 wobbles 3 % around 20 ms × scale."""
    rng = np.random.default_rng(seed)
    p95 = list(20.0 * scale * rng.normal(1.0, 0.03, runs))
    return make_record(p95, seed=seed, profiles=PROFILES, max_samples=5000, **kw)


def _p95_rows(comparison):
    return [r for r in comparison.rows if r.metric == "p95_ms" and r.path is None]


@pytest.mark.parametrize("runs", [1, 5])
def test_aa_noise_is_not_a_regression(runs: int) -> None:
    flagged = sum(
        bool(compare_runs(_noisy(i, runs), _noisy(100 + i, runs)).regressions) for i in range(10)
    )
    assert flagged <= 1


@pytest.mark.parametrize(
    "runs,test", [(1, "distribution"), (3, "distribution"), (4, "mann-whitney(runs)")]
)
def test_thirty_percent_slower_is_a_regression_on_p95(runs: int, test: str) -> None:
    for seed in range(3):
        comparison = compare_runs(_noisy(seed, runs), _noisy(50 + seed, runs, scale=1.3))
        rows = _p95_rows(comparison)
        assert len(rows) == 2
        assert all(r.verdict == REGRESSION and r.test == test for r in rows), rows
        assert all(r.p_value is not None and r.p_value < 0.05 for r in rows)
        assert comparison.verdict == REGRESSION


def test_identical_records_are_stable() -> None:
    record = _noisy(1, 3)
    comparison = compare_runs(record, record)
    assert {r.verdict for r in comparison.rows} == {STABLE}
    assert {r.test for r in comparison.rows} == {"threshold"}


def test_keys_on_one_side_are_listed() -> None:
    a = make_record(20.0, runs=1, profiles=["api", "python_light"], max_samples=500)
    b = make_record(20.0, runs=1, profiles=["python_light", "c_static_only"], max_samples=500)
    comparison = compare_runs(a, b)
    assert comparison.only_in_a == ["api:burst", "api:long"]
    assert comparison.only_in_b == ["c_static_only:burst", "c_static_only:long"]
    assert {r.key for r in comparison.rows} == {"python_light:burst", "python_light:long"}


def test_paths_on_one_side_are_listed() -> None:
    a = make_record(20.0, runs=1, profiles=["python_light"], phases=["burst"], max_samples=500)
    b = make_record(20.0, runs=1, profiles=["python_light"], phases=["burst"], max_samples=500)
    for run in b["raw_runs"]:
        report = run["results"][0]["report"]
        report["path_metrics"]["/new"] = report["path_metrics"].pop("/deps")
    del b["aggregated"]["python_light:burst"]["path_metrics"]["/deps"]
    comparison = compare_runs(a, b)
    assert comparison.only_in_a == ["python_light:burst /deps"]
    assert comparison.only_in_b == ["python_light:burst /new"]


def test_error_rate_in_points_uses_counts() -> None:
    a = make_record(20.0, runs=1, profiles=PROFILES, phases=["burst"], max_samples=3000)
    b = make_record(
        20.0, runs=1, profiles=PROFILES, phases=["burst"], max_samples=3000, error_rate=3.0, seed=9
    )
    row = next(r for r in compare_runs(a, b).rows if r.metric == "error_rate" and not r.path)
    assert row.unit == "pp" and row.change == pytest.approx(3.0, abs=0.01)
    assert row.verdict == REGRESSION and row.test == "fisher(counts)"


def test_single_run_rps_drop_is_no_significant_change() -> None:
    a = make_record(20.0, runs=1, profiles=PROFILES, phases=["burst"], max_samples=500)
    b = make_record(20.0, runs=1, profiles=PROFILES, phases=["burst"], max_samples=500, seed=4)
    b["raw_runs"][0]["results"][0]["report"]["rps_ok"] /= 2
    row = next(r for r in compare_runs(a, b).rows if r.metric == "rps_ok" and not r.path)
    assert row.change == pytest.approx(-50, abs=1)
    assert row.verdict == STABLE and row.test == "insufficient data"
    assert "no significant change" in row.note


def test_thresholds_from_config_file_and_flags(tmp_path: Path) -> None:
    (tmp_path / "perftui.toml").write_text("[thresholds]\np95_ms = 60\nalpha = 0.01\n")
    thresholds = load_thresholds(tmp_path)
    assert thresholds.values["p95_ms"] == 60 and thresholds.alpha == 0.01
    assert thresholds.values["rps_ok"] == 10
    comparison = compare_runs(_noisy(1, 5), _noisy(2, 5, scale=1.4), thresholds)
    assert {r.verdict for r in _p95_rows(comparison)} == {DEGRADED}
    flags = load_thresholds(tmp_path, overrides={"p95_ms": 5})
    assert flags.values["p95_ms"] == 5
    other = tmp_path / "ci.toml"
    other.write_text("[thresholds]\nlatency = 3\n")
    with pytest.raises(ConfigError, match="unknown threshold 'latency'"):
        load_thresholds(tmp_path, other)
    with pytest.raises(ConfigError, match="alpha"):
        Thresholds().updated({"alpha": 2}, "flag")


def test_legacy_records_compare_without_histograms() -> None:
    a, _ = read_legacy(FIXTURES / "perf_20250301T101500Z_baseline_isolated_v1.json")
    b, _ = read_legacy(FIXTURES / "latest.partial.json")
    comparison = compare_runs(a, b)
    assert comparison.only_in_a == ["python_light:burst", "python_light:long"]
    assert "B is a stopped run: partial data" in comparison.notes
    metrics = {r.metric for r in comparison.rows}
    assert "p999_ms" not in metrics and {"p95_ms", "heap_internal_drop"} <= metrics
    assert all(r.test != "distribution" for r in comparison.rows)
