"""`--stages`: a ramp's achieved rate follows its targets per window; a client ramp opens its
clients in turn; the record keeps the per-window targets beside the achieved rate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from perftui.cli.main import build_parser, main
from perftui.cli.run import config_from_args
from perftui.config import PhaseSettings
from perftui.engine.load import ramp_report, run_phase
from perftui.engine.pacing import ClientRamp, Ramp
from perftui.profiles import adhoc_profile, parse_profile
from tests.engine_helpers import FAST, NO_LATENCY_GATES, FastServer, latest

STAGES = ((1.0, 400.0), (2.0, 800.0))  # 0 → 400 req/s in 1 s, then to 800 in 2 s


def test_ramp_targets_and_their_integral() -> None:
    ramp = Ramp(((30.0, 50.0), (60.0, 200.0), (30.0, 0.0)))
    assert (ramp.at(15), ramp.at(60), ramp.at(200)) == (25.0, 125.0, 0.0)
    assert ramp.integral(30) == 750.0 and ramp.total == 11250.0
    assert ramp.time_of(750.0) == pytest.approx(30.0)
    assert ramp.mean(30, 90) == pytest.approx(125.0)


def test_client_ramp_opens_clients_in_turn() -> None:
    gate = ClientRamp(Ramp(((2.0, 4.0),)), start=0.0, deadline=2.0)
    assert gate.wait_s(0, 0.3) == 0.0  # target 0.6 > client 0
    assert gate.wait_s(3, 0.3) == pytest.approx(1.2, abs=0.06)  # client 3 starts at 1.5 s
    assert gate.wait_s(3, 1.6) == 0.0


def test_open_loop_ramp_follows_its_targets_per_window() -> None:
    """Far below the ceiling (800 req/s against a canned server), each 1 s window's achieved
    rate is within 5 % of the ramp's mean target over that window."""
    with FastServer(lifetime_s=30) as server:
        outcome = asyncio.run(
            run_phase(
                f"http://127.0.0.1:{server.port}",
                adhoc_profile("/x"),
                clients=32,
                duration=3.0,
                timeout=2.0,
                budget_s=20.0,
                stop=asyncio.Event(),
                on_snapshot=lambda *_: None,
                rate=Ramp(STAGES).total / 3.0,
                stages=STAGES,
            )
        )
    report = outcome.recorder.report(32, 3.0, outcome.elapsed)
    timeline = report["timeline"]
    targets = ramp_report(PhaseSettings(32, 3.0, 1.0, STAGES, "rps"), timeline)["ramp"]["target"]
    pairs = [
        (rps, target) for rps, target in zip(timeline["rps"], targets, strict=True) if target > 0
    ]
    assert len(pairs) == 3, timeline
    for rps, target in pairs:
        assert abs(rps - target) <= 0.05 * target, (pairs, timeline)
    assert pairs[0][1] == pytest.approx(200, rel=0.01) and pairs[0][1] < pairs[1][1] < pairs[2][1]


def test_stages_flag_and_toml_make_one_ramp_phase(tmp_path: Path) -> None:
    args = build_parser().parse_args(["run", "dev.local", "--stages", "30s:50,1m:200,30s:0"])
    config = config_from_args(args)
    profile = config.profiles[0]
    assert config.phase_settings(profile, "burst").duration == 0
    long = config.phase_settings(profile, "long")
    assert (long.duration, long.stages_unit, long.rate) == (120.0, "rps", 93.75)
    text = '[[stages]]\nduration = 2\ntarget = 3\n[[requests]]\npath = "/a"\n'
    toml_profile = parse_profile(text, "p", "p.toml")
    assert toml_profile.settings["stages"] == ((2.0, 3.0),)


def test_bad_stages_are_one_line(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as parse_error:  # argparse's own one-line error
        main(["run", "dev.local", "--stages", "30s", "--history-dir", str(tmp_path)])
    assert parse_error.value.code == 2 and "DURATION:TARGET" in capsys.readouterr().err
    assert main(["run", "dev.local", "--stages", "5s:0", "--history-dir", str(tmp_path)]) == 2
    assert "every target is 0" in capsys.readouterr().err


def test_a_client_ramp_run_keeps_its_targets_in_the_record(device, tmp_path: Path) -> None:
    argv = ["run", "127.0.0.1", "--port", str(device.port), "--history-dir", str(tmp_path)]
    argv += [
        *FAST,
        *NO_LATENCY_GATES,
        "--paths",
        "/hello",
        "--stages",
        "1s:4,1s:4",
        "--stages-unit",
        "clients",
    ]
    assert main(argv) == 0
    record = latest(tmp_path)
    (phase,) = record["raw_runs"][0]["results"]
    assert phase["phase"] == "long"
    ramp = phase["report"]["ramp"]
    assert ramp["unit"] == "clients" and ramp["stages"] == [[1.0, 4.0], [1.0, 4.0]]
    assert len(ramp["target"]) == len(phase["report"]["timeline"]["t_s"])
    assert record["measurement"]["phases"]["adhoc:long"]["stages"] == [[1.0, 4.0], [1.0, 4.0]]
