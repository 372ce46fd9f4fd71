"""A stored `--stages` run read by `capacity --from` (the knee, judged as the live search judges
a step) and by `compare` (ramp windows matched by target rate), on synthetic ramps whose knee is
known; runs staged differently are a setup mismatch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perftui.analysis.compare import compare_runs
from perftui.analysis.reports import comparison_html, comparison_json, comparison_markdown
from perftui.analysis.stages import stage_rows
from perftui.cli.main import build_parser, main
from perftui.cli.run import config_from_args
from perftui.engine import record
from perftui.engine.capacity import CapacityGates, knee
from perftui.history.store import HistoryStore
from perftui.like import fingerprint
from tests.history_factory import make_record, ramp_record

UP_DOWN = ((10.0, 200.0), (10.0, 0.0))  # 1 s windows: targets 10, 30, …, 190, then 190 … 10
GATES = CapacityGates(max_p95_ms=50.0)


def _report(rec: dict) -> dict:
    return rec["raw_runs"][0]["results"][0]["report"]


def test_knee_is_the_highest_target_passing_before_the_first_failure() -> None:
    """Up to 120 req/s the device keeps up at 10 ms; above, p95 jumps to 400 ms and stays
    there while the ramp comes down (the queue drains): windows 10…110 pass, 130 fails, and
    the falling windows below 120 that fail too do not pull the answer down."""
    result = knee(_report(ramp_record(UP_DOWN, knee_rps=120)), GATES)
    assert (result.capacity_rps, result.status) == (110.0, "found")
    assert "falls behind at 130 req/s" in result.note and "p95 400.0 ms > 50 ms" in result.note
    assert [s.result.rate for s in result.steps][:3] == [10.0, 30.0, 50.0]


def test_knee_reads_the_achieved_rate_as_the_search_does() -> None:
    """No latency change at all, only a rate the device cannot reach: a window fails when it
    achieves less than 90 % of its target (the search's own `min_achieved_ratio`)."""
    result = knee(_report(ramp_record(UP_DOWN, knee_rps=95, over_p95_ms=10.0)), GATES)
    # 90 req/s: 90 achieved passes; 110: 95 < 99 fails.
    assert (result.capacity_rps, result.status) == (90.0, "found")
    assert "achieved 95.0 of 110 req/s" in result.note


def test_ceiling_none_and_light_windows() -> None:
    ceiling = knee(_report(ramp_record(UP_DOWN, knee_rps=1000)), GATES)
    assert (ceiling.capacity_rps, ceiling.status) == (190.0, "ceiling")
    none = knee(_report(ramp_record(UP_DOWN, knee_rps=5)), GATES)
    assert none.capacity_rps is None and none.status == "none"
    # 0 → 200 in 20 s: the first window's target (5 req/s) cannot tell 10 % in one second.
    light = knee(_report(ramp_record(((20.0, 200.0),), knee_rps=120)), GATES)
    assert light.capacity_rps == 115.0 and "1 window(s) too light to judge" in light.note


def _store(tmp_path: Path, *records: dict) -> list[str]:
    store = HistoryStore(tmp_path)
    return [store.add_run(r) for r in records]


def test_capacity_from_a_stored_run(tmp_path: Path, capsys) -> None:
    good, bad = ramp_record(UP_DOWN, knee_rps=120), ramp_record(UP_DOWN, knee_rps=5, seed=1)
    plain = make_record(runs=1, profiles=("python_light",), phases=("long",), seed=2)
    ids = _store(tmp_path, good, bad, plain)
    base = ["capacity", "--max-p95-ms", "50", "--history-dir", str(tmp_path), "--from"]
    assert main([*base, ids[0], "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["capacity_rps"] == 110.0 and (out["from"], out["profile"]) == (
        ids[0],
        "python_light",
    )
    assert out["phases"][0]["status"] == "found" and out["gates"]["max_p95_ms"] == 50.0
    assert main([*base, ids[0]]) == 0
    assert capsys.readouterr().out.startswith("capacity_rps: 110")
    assert main([*base, ids[1]]) == 1
    assert "no capacity: the first window at 10 req/s fails" in capsys.readouterr().err
    assert main([*base, ids[2]]) == 2
    assert "has no --stages ramp" in capsys.readouterr().err
    assert main([*base, "nosuchrun"]) == 2
    assert main([*base, ids[0], "--profiles", "api"]) == 2  # one profile at a time, as the search
    assert "no ramp of profile 'api' (it has python_light)" in capsys.readouterr().err
    assert main([*base, ids[0], "127.0.0.1"]) == 2
    assert "give no HOST" in capsys.readouterr().err


def test_compare_matches_ramp_windows_by_target_rate() -> None:
    """A keeps up to 120 req/s, B only to 80: at the 90 req/s window (level 100 of a 20 req/s
    grid) A achieves 90 at 10 ms, B 80 at 400 ms; levels come in the order the ramp meets them,
    rising then falling."""
    a, b = ramp_record(UP_DOWN, knee_rps=120), ramp_record(UP_DOWN, knee_rps=80, seed=1)
    rows = stage_rows(a, b)
    by = {(r["direction"], r["level_rps"]): r for r in rows}
    up = by[("up", 100.0)]
    assert (up["a"]["achieved_rps"], up["b"]["achieved_rps"]) == (90.0, 80.0)
    assert up["a"]["p95_ms"] == pytest.approx(10.0, rel=0.05)
    assert up["b"]["p95_ms"] == pytest.approx(400.0, rel=0.05)
    assert (up["a"]["target_rps"], up["a"]["windows"], up["b"]["windows"]) == (90.0, 1, 1)
    assert [r["level_rps"] for r in rows[:3]] == [20.0, 40.0, 60.0]
    assert [r["direction"] for r in rows] == ["up"] * 10 + ["down"] * 10
    assert by[("down", 100.0)]["a"]["p95_ms"] == pytest.approx(400.0, rel=0.05)  # draining
    comparison = compare_runs(a, b)
    assert comparison.stages == rows and not comparison.mismatches
    assert json.loads(comparison_json(comparison))["stages"] == rows
    text = comparison_markdown(comparison)
    assert "### python_light:long: ramp windows by target rate" in text
    assert "| 90 | ↑ | 90 | 80 | 10" in text
    page = comparison_html(comparison)
    assert "ramp windows by target rate" in page and "<td>90</td><td>↑</td><td>90</td>" in page


def test_staged_and_unstaged_or_other_stages_are_set_up_differently(tmp_path: Path, capsys):
    """The stages are in the settings fingerprint: a run with a ramp, one without and one with
    other stages are three setups; compare lists the difference, --fail-on-regression refuses."""
    parser = build_parser()
    configs = [
        config_from_args(parser.parse_args(["run", "dev.local", "--paths", "/a", *extra]))
        for extra in ([], ["--stages", "10s:100"], ["--stages", "10s:200"])
    ]
    prints = {fingerprint(record.measurement(c)) for c in configs}
    assert len(prints) == 3
    staged, other = ramp_record(UP_DOWN, knee_rps=120), ramp_record(((20.0, 200.0),), 120)
    plain = make_record(runs=1, profiles=("python_light",), phases=("long",), seed=2)
    assert not stage_rows(staged, plain)
    for b in (plain, other):
        assert any(
            m.startswith("phases.python_light:long.stages: A [[10.0, 200.0]")
            for m in compare_runs(staged, b).mismatches
        )
    ids = _store(tmp_path, staged, other, plain)
    for a, b in ((ids[0], ids[2]), (ids[0], ids[1])):
        argv = ["compare", a, b, "--fail-on-regression", "--history-dir", str(tmp_path)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "runs set up differently" in err, err
