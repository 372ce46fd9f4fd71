"""Verdicts in the bench workflow (issue 19), on synthetic records whose truth is known: the noise
sample is A's build from before B (labelled or not), the two-level model's parts, count rows,
an empty comparison, the FDR-adjusted interval, and the window bootstrap of a percentile."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pytest

from perftui import verdicts
from perftui.analysis.compare import compare_runs
from perftui.analysis.metrics import METRICS
from perftui.analysis.spread import Spread, window_spread
from perftui.analysis.spread import runs_needed as _runs_needed
from perftui.analysis.stats import quantile
from perftui.analysis.thresholds import RegressionThresholds
from perftui.analysis.verdict import NOTHING_COMPARED, REGRESSION, STABLE
from perftui.cli.history import register
from perftui.engine.record import reported_build
from perftui.history.store import HistoryStore
from perftui.sim.device import SimServer
from perftui.sim.options import SimOptions
from perftui.verdicts import NoiseChoiceError, SameRun, compare, pick_noise
from tests.history_factory import histogram_b64, make_record, workflow_history, workflow_record

SMALL = {"profiles": ("python_light",), "phases": ("burst",), "max_samples": 300}


@pytest.mark.parametrize("labelled", [True, False], ids=["labelled", "unlabelled"])
def test_a_stored_regressed_build_never_enters_the_noise_sample(
    tmp_path: Path, labelled: bool
) -> None:
    store = HistoryStore(tmp_path)
    a, b, others = workflow_history(store, labelled)
    sample = pick_noise(store, a, b)
    assert sorted(sample.ids) == sorted(f"{r}" for r in _ids(store, a, 3))
    assert not set(sample.ids) & set(others)
    left = " ".join(sample.left_out)
    assert all(run_id in left for run_id in others if run_id != b["run_id"])
    comparison = compare(store, a, b, RegressionThresholds())
    row = next(r for r in comparison.rows if r.metric == "p95_ms" and r.path is None)
    assert row.verdict == REGRESSION and comparison.noise_ids == sample.ids


def _ids(store: HistoryStore, a: dict, n: int) -> list[str]:
    """The n stored runs started before A."""
    older = [s for s in store.list_runs() if s["started_at"] < a["started_at"].rstrip("Z") + "Z"]
    return [s["run_id"] for s in sorted(older, key=lambda s: s["started_at"])][-n:]


def test_runs_of_a_after_b_and_flagged_runs_are_left_out(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    a, b, _ = workflow_history(store, labelled=True)
    flagged = _ids(store, a, 3)[0]
    store.set_flag(flagged, "regressed against r0")
    late_a = workflow_record(20, 20.0, "A")  # A flashed again after B: not a sample of "before B"
    store.add_run(late_a)
    sample = pick_noise(store, a, b)
    assert flagged not in sample.ids and late_a["run_id"] not in sample.ids
    assert any("flagged" in why for why in sample.left_out)
    assert any(late_a["run_id"] in why and "after" in why for why in sample.left_out)
    assert pick_noise(store, a, b, "none").ids == []
    assert pick_noise(store, a, b, [flagged]).ids == [flagged]  # by hand: the user's word


def test_refused_by_hand_and_a_run_against_itself(tmp_path: Path) -> None:
    """By hand, a run of another device and an empty choice are refused in one line; a run
    compared with itself is no comparison (it read STABLE and passed a gate); a run of B's own
    build after B is said to be after B, not after "B's build first ran"."""
    store = HistoryStore(tmp_path)
    a, b, _ = workflow_history(store, labelled=True)
    elsewhere = workflow_record(30, 20.0, "A")
    elsewhere["target"] = elsewhere["device"] = "10.0.0.9:80"
    store.add_run(elsewhere)
    with pytest.raises(NoiseChoiceError, match=r"measured 10\.0\.0\.9:80, not B's device"):
        pick_noise(store, a, b, [elsewhere["run_id"]])
    with pytest.raises(NoiseChoiceError, match="give run ids, a tag, or none"):
        pick_noise(store, a, b, " ")
    with pytest.raises(SameRun, match="same run"):
        compare(store, b, b, RegressionThresholds())
    notes = " ".join(compare(store, a, b, RegressionThresholds(), noise="none").notes)
    assert "no noise model (none, by hand)" in notes and "record the device" not in notes
    first_a, second_a = _ids(store, a, 2)
    sample = pick_noise(store, store.get(first_a), store.get(second_a))  # A against A
    assert any(why.endswith("started after B") for why in sample.left_out), sample.left_out


@pytest.mark.parametrize("labelled", [True, False], ids=["labelled", "unlabelled"])
def test_a_client_bound_record_of_a_never_enters_the_noise_sample(
    tmp_path: Path, labelled: bool
) -> None:
    """A record of A's build whose runs were client-bound (perftui's host slowed, its p95 at
    2.5×) measured the host, not the device: left out of the sample with why, so a 2× slower B
    is caught. With it in, its level reads as the device's drift and the rows read
    INCONCLUSIVE (the bench workflow under load)."""
    store = HistoryStore(tmp_path)
    builds = [("A", 20.0), ("A", 20.0), ("A", 50.0), ("A", 20.0), ("A", 20.0)]
    builds += [("B", 40.0), ("B", 40.0)]
    records = [workflow_record(i, p95, b if labelled else "") for i, (b, p95) in enumerate(builds)]
    for run in records[2]["raw_runs"]:
        for result in run["results"]:
            result["report"]["client_bound"] = True
    for record in records:
        store.add_run(record)
    a, b, bound = records[4], records[-1], records[2]["run_id"]
    sample = pick_noise(store, a, b)
    assert bound not in sample.ids and len(sample.ids) == 3
    assert any(bound in why and "client-bound in 3 of 3" in why for why in sample.left_out)
    comparison = compare(store, a, b, RegressionThresholds())
    row = next(r for r in comparison.rows if r.metric == "p95_ms" and r.path is None)
    assert row.verdict == REGRESSION, row.note


def test_unlabelled_builds_interleaved_after_a_never_enter_the_noise_sample(
    tmp_path: Path,
) -> None:
    """Unlabelled: after 4 records of A (20 ms), builds 1.5× slower and 0.8× faster take turns
    (their median sits at A's level, so no single change point parts them from A), then B 2×.
    The sample is A's 3 earlier records; records of A drifting within the threshold stay."""
    store = HistoryStore(tmp_path)
    a_levels = [20.0, 22.0, 18.5, 20.0]
    levels = [*a_levels, 30.0, 16.0, 30.0, 16.0, 16.0, 30.0, 30.0, 16.0]
    records = [workflow_record(i, p95) for i, p95 in enumerate([*levels, 40.0, 40.0])]
    for record in records:
        store.add_run(record)
    a, b = records[3], records[-1]
    sample = pick_noise(store, a, b)
    assert sorted(sample.ids) == sorted(r["run_id"] for r in records[:3])
    assert sum("a change of level lies between it and A" in why for why in sample.left_out) == 9
    row = next(
        r
        for r in compare(store, a, b, RegressionThresholds()).rows
        if r.metric == "p95_ms" and r.path is None
    )
    assert row.verdict == REGRESSION, row.note


def test_unlabelled_a_keeps_its_earlier_records_whichever_b_is_compared(tmp_path: Path) -> None:
    """A A A, then three records of a build 2× slower: A (the third) keeps the first two as its
    sample against each of them. Cut where the medians differ most, A A | A B B won over the
    true cut once A's third record sat a little nearer B (B's median moves the right side as
    far), so A's own records left the sample with B2 as B (found by a trial on the sim)."""
    store = HistoryStore(tmp_path)
    levels = [19.0, 19.5, 21.0, 40.0, 40.2, 40.1]  # A drifts up a little: still A
    records = [workflow_record(i, p95) for i, p95 in enumerate(levels)]
    for record in records:
        store.add_run(record)
    for b in records[3:]:
        sample = pick_noise(store, records[2], b)
        assert sorted(sample.ids) == sorted(r["run_id"] for r in records[:2]), b["run_id"]


def test_a_long_history_is_read_only_near_a(tmp_path: Path, monkeypatch) -> None:
    """Thousands of stored runs must not all be read to pick a sample: labelled, reading stops
    at the newest `limit` of A's build; unlabelled, the split reads the SEGMENT_READ runs
    nearest A. Those left unread are said."""
    store = HistoryStore(tmp_path)
    a, b, _ = workflow_history(store, labelled=True)
    sample = pick_noise(store, a, b, limit=2)
    assert sample.ids == _ids(store, a, 3)[1:][::-1]
    assert any(why.endswith("beyond the 2 newest") for why in sample.left_out)
    monkeypatch.setattr(verdicts, "SEGMENT_READ", 4)
    plain = HistoryStore(tmp_path / "unlabelled")
    records = [workflow_record(i, 20.0) for i in range(10)]
    for record in records:
        plain.add_run(record)
    sample = pick_noise(plain, records[8], records[9])
    assert sorted(sample.ids) == [r["run_id"] for r in records[4:8]]
    assert "4 runs further from A: not read (the 4 nearest A are)" in sample.left_out


def test_no_between_record_effect_gives_within_record_degrees_of_freedom() -> None:
    """Record means that spread no more than their runs explain (F ≈ 1.2, p ≈ 0.35): the between
    part is not used, and the interval is t with the pooled within-record df (2 per record of 3
    runs: 4 in the sample, A and B → 12), not "records − 1"."""
    offsets = (-0.04, 0.0, 0.04, 0.02, -0.02)  # sample 4, then A
    within = (-0.05, 0.0, 0.05)

    def record(i: int, m: float) -> dict:
        return make_record([20.0 * math.exp(m + d) for d in within], seed=i, **SMALL)

    sample = [record(i, m) for i, m in enumerate(offsets[:4])]
    a, b = record(10, offsets[4]), record(11, 0.0)
    row = next(
        r for r in compare_runs(a, b, noise=sample).rows if r.metric == "p95_ms" and r.path is None
    )
    diff = 0.02  # B's mean minus A's on the log scale
    se = math.sqrt(0.0025 * (1 / 3 + 1 / 3))  # within variance of ±0.05 runs: 0.05² · 2/2
    half = quantile(0.975, 12) * se
    assert row.low == pytest.approx(math.expm1(diff - half) * 100, rel=1e-6)
    assert row.high == pytest.approx(math.expm1(diff + half) * 100, rel=1e-6)


def test_runs_advice_is_the_n_with_80_percent_power() -> None:
    spread = Spread(se=0.1, df=math.inf, test="t(runs)", evidence="", within=0.04, between=0.0)
    delta = math.log1p(0.2)
    z = quantile(0.975, math.inf) + quantile(0.8, math.inf)
    expected = math.ceil(2 * 0.04 / (delta / z) ** 2)
    assert _runs_needed(3, delta, 0.05, spread) == (
        expected,
        f"about {expected} runs per side would tell",
    )
    drifting = Spread(0.1, math.inf, "t(runs+history)", "", within=0.04, between=0.02)
    assert "more runs will not tell" in _runs_needed(3, delta, 0.05, drifting)[1]


def test_zero_errors_on_both_sides_are_bounded_by_their_counts() -> None:
    a, b = make_record(20.0, seed=1, **SMALL), make_record(20.0, seed=2, **SMALL)
    row = next(r for r in compare_runs(a, b).rows if r.metric == "error_rate" and r.path is None)
    requests = sum(
        res["report"]["requests_total"] for run in b["raw_runs"] for res in run["results"]
    )
    wilson_upper = 100 * 1.96**2 / (requests + 1.96**2)  # 0 of n: Wilson's upper bound
    assert 0 < row.high == pytest.approx(wilson_upper, rel=0.01) and row.low < 0
    assert row.verdict == STABLE and row.test == "counts"
    for run in b["raw_runs"]:  # no request at all on B: nothing to bound
        for res in run["results"]:
            res["report"].update(requests_total=0, err=0)
    row = next(r for r in compare_runs(a, b).rows if r.metric == "error_rate" and r.path is None)
    assert row.low is None and "0 requests" in row.note


def test_an_interval_shown_never_excludes_zero_on_a_row_called_not_significant() -> None:
    """Many primary rows with a modest change: BH takes some calls back, and each row's interval
    is redrawn at its adjusted level, so what is shown agrees with the verdict."""
    demoted = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        a = make_record(list(20 * np.exp(rng.normal(0, 0.1, 3))), seed=seed, **SMALL)
        b = make_record(list(26 * np.exp(rng.normal(0, 0.1, 3))), seed=seed + 99, **SMALL)
        for row in compare_runs(a, b).rows:
            if "not significant after FDR" in row.note:
                demoted += 1
                assert row.low is not None and row.low <= 0 <= row.high
    assert demoted  # the case happened


def test_an_empty_comparison_exits_2_when_gating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = HistoryStore(tmp_path)
    store.add_run(make_record(20.0, seed=1, tag="burst", **SMALL))
    store.add_run(make_record(20.0, seed=2, tag="long", **{**SMALL, "phases": ("long",)}))
    parser = argparse.ArgumentParser()
    parser.add_argument("--history-dir", type=Path)
    register(parser.add_subparsers(dest="cmd"))
    argv = ["--history-dir", str(tmp_path), "compare", "burst", "long", "--allow-mismatch"]
    args = parser.parse_args([*argv, "--fail-on-regression"])
    assert args.func(args) == 2
    out, err = capsys.readouterr()
    assert f"**{NOTHING_COMPARED}**: the phases do not overlap" in out
    assert "only in A: python_light:burst" in out
    assert err.count("\n") == 1 and "nothing compared" in err
    args = parser.parse_args(argv)
    assert args.func(args) == 0  # no gate asked: shown, not refused


def test_window_bootstrap_of_p99_matches_independent_runs() -> None:
    """Runs of a known process (20 windows × 300 log-normal latencies): the bootstrap's spread
    of one run's whole-run p99 is that of p99 over independent runs, within 20 %."""
    rng = np.random.default_rng(7)
    windows, per = 20, 300

    def run() -> list[np.ndarray]:
        return [rng.lognormal(math.log(20_000), 0.5, per) for _ in range(windows)]

    truth = np.std([np.log(np.percentile(np.concatenate(run()), 99)) for _ in range(300)], ddof=1)
    found = []
    for _ in range(8):
        # Each window's histogram, values in 16 µs steps (about HdrHistogram's own 3 digits here).
        sides = [[histogram_b64(np.round(w / 16) * 16 / 1000) for w in run()] for _side in "AB"]
        p99 = np.full(windows, 30.0)  # the per-window column: flat, so only histograms speak
        spread = window_spread(METRICS["p99_ms"], p99, p99, (), (sides[0], sides[1]))
        assert isinstance(spread, Spread)
        found.append(spread.se / math.sqrt(2))
    assert float(np.mean(found)) == pytest.approx(truth, rel=0.2)


def test_the_build_is_read_from_the_device() -> None:
    stats = SimServer(SimOptions(build="fw-2.1")).server_stats()
    assert stats["firmware"] == {"build": "fw-2.1"}
    raw = [{"results": [{"report": {"stats_after": stats}}]}]
    assert reported_build(raw) == "fw-2.1"
    assert "firmware" not in SimServer(SimOptions()).server_stats()


def test_the_build_is_shown_where_runs_are_named(tmp_path: Path, capsys) -> None:
    """A run's build is how a bench engineer tells A from B: `history list` has a BUILD column
    and the comparison names each side's build."""
    from perftui.analysis.reports import comparison_markdown
    from tests.test_cli_history import cli

    store = HistoryStore(tmp_path)
    a, b, _ = workflow_history(store, labelled=True)
    assert cli(tmp_path, "history", "list") == 0
    head, *rows = capsys.readouterr().out.splitlines()
    assert "BUILD" in head.split() and any(" B " in row for row in rows)
    text = comparison_markdown(compare(store, a, b, RegressionThresholds()))
    assert "build `A`" in text and "build `B`" in text
