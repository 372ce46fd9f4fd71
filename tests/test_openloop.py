"""Open-loop pacing, stalls, coordinated-omission correction and the generator's self-check."""

from __future__ import annotations

import asyncio
import itertools
import statistics
from pathlib import Path

import pytest

from perftui.cli.main import build_parser, main
from perftui.cli.run import config_from_args
from perftui.config import PHASES, GateLimits, PhaseSettings, RunConfig
from perftui.engine.events import Heartbeat, Stall
from perftui.engine.gates import evaluate
from perftui.engine.hdr import new_histogram
from perftui.engine.load import run_phase
from perftui.engine.metrics import OpenLoopStats, PhaseRecorder, SelfCheck, corrected_histogram
from perftui.engine.notes import CO_WHY, co_note
from perftui.engine.pacing import ArrivalSchedule, Pacer
from perftui.engine.runner import EngineProcess
from perftui.engine.stalls import StallDetector
from perftui.profiles import ProfileError, adhoc_profile, parse_profile
from tests.engine_helpers import (
    FastServer,
    StallServer,
    first_report,
    latest,
    phase_config,
    run_cli,
)


class FakeClock:
    """Time that moves only when the code under test sleeps or a fake request is served."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _drive(rate: float, service_s: float, duration: float) -> tuple[list[float], OpenLoopStats]:
    """One connection served in `service_s` on a fake clock: the latencies from intended time."""
    clock = FakeClock()
    stats = OpenLoopStats(rate, "constant")
    schedule = ArrivalSchedule(rate, "constant", clock.now)
    pacer = Pacer(schedule, clock.now + duration, stats, clock, clock.sleep)

    async def go() -> list[float]:
        out = []
        while (intended := await pacer.next()) is not None:
            clock.now += service_s  # the request is on the wire this long
            out.append(clock.now - intended)
        return out

    return asyncio.run(go()), stats


def test_constant_rate_sends_on_schedule_when_the_server_keeps_up() -> None:
    latencies, stats = _drive(rate=40, service_s=0.005, duration=2.0)
    assert stats.sent == 80 and stats.late == 0 and stats.max_lag_s == 0
    assert latencies == pytest.approx([0.005] * 80)


def test_latency_counts_from_the_intended_time_when_the_server_falls_behind() -> None:
    """50 ms answers on one connection at 40 req/s: each request waits 25 ms more than the
    last (k × 25 ms of queue + 50 ms of service), and only half the rate is achieved."""
    latencies, stats = _drive(rate=40, service_s=0.05, duration=1.99)
    assert stats.sent == 40 and stats.late == 39
    assert latencies == pytest.approx([0.05 + k * 0.025 for k in range(40)])
    assert stats.max_lag_s == pytest.approx(39 * 0.025)


def test_poisson_arrivals_have_the_rate_and_the_spread_of_an_exponential() -> None:
    schedule = ArrivalSchedule(200.0, "poisson", 0.0, seed=7)
    times = [schedule.take() for _ in range(20_001)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert statistics.fmean(gaps) == pytest.approx(1 / 200, rel=0.03)
    assert statistics.stdev(gaps) / statistics.fmean(gaps) == pytest.approx(1.0, rel=0.05)
    constant = ArrivalSchedule(200.0, "constant", 0.0)
    assert [constant.take() for _ in range(3)] == pytest.approx([0.0, 0.005, 0.01])


def test_open_loop_on_a_real_server_measures_the_queue() -> None:
    """The same 50 ms server over real HTTP: closed loop says 50 ms; open loop at twice the
    capacity shows the queue growing (latency from intended start), as wrk2 would."""
    profile = adhoc_profile("/delay")

    async def phase(rate: float | None) -> dict:
        out = await run_phase(
            f"http://127.0.0.1:{server.port}",
            profile,
            1,
            2.0,
            5.0,
            30.0,
            asyncio.Event(),
            lambda *_: None,
            0.25,
            rate,
        )
        return out.recorder.report(1, 2.0, out.elapsed)

    with StallServer(delay_ms=50) as server:
        closed = asyncio.run(phase(None))
        opened = asyncio.run(phase(40.0))
    assert closed["mode"] == "closed" and closed["p99_ms"] < 150
    assert opened["mode"] == "open" and opened["target_rps"] == 40.0
    assert 15 <= opened["achieved_rps"] <= 21  # one connection, 50 ms each: ≤ 20 req/s
    assert opened["late"] >= 25 and opened["max_lag_ms"] > 600
    assert opened["p50_ms"] > 300 and opened["max_ms"] > 800
    assert opened["co_corrected"] is None and closed["co_corrected"] is not None


def test_stall_detector_counts_quiet_spans_with_requests_outstanding() -> None:
    d = StallDetector(start=10.0)
    d.set_p50(5.0)  # 20 × 5 ms = 100 ms < the 200 ms floor
    d.sent(10.0)
    d.ended(10.005)
    d.sent(10.01)
    d.ended(10.9)  # 0.89 s with one outstanding and nothing completed
    d.ended(10.95)  # 50 ms: not a stall
    d.sent(20.0)  # idle (nothing outstanding) from 10.95 to 20: not a stall
    d.ended(20.1)
    assert d.count == 1 and d.at == [0.01]
    assert d.to_dict()["longest_ms"] == pytest.approx(890, abs=0.01)
    d.set_p50(50.0)  # a slow device: the bar rises to 1 s
    d.sent(30.0)
    d.ended(30.9)
    assert d.count == 1
    d.sent(31.0)
    d.finish(32.5)  # still unanswered when the phase ended
    assert d.count == 2 and d.to_dict()["total_ms"] == pytest.approx(2390, abs=0.01)
    assert [s.at_s for s in d.drain()] == [0.01, 21.0] and d.drain() == []


def test_co_correction_is_hdrh_record_corrected_value_with_the_phases_interval() -> None:
    """One client answered 99 times in 10 ms, then once after 1 s, over 1.99 s: its expected
    interval is 19.9 ms (as wrk 4 computes it), and the corrected percentiles are those of
    hdrh's own `record_corrected_value` with that interval."""
    values_us = [10_000] * 99 + [1_000_000]
    rec = PhaseRecorder(["/x"], tail_start_s=1.5, duration=1.99)
    for v in values_us:
        rec.paths["/x"].record(200, v, 1.0)
    rec.snapshot(1.99)
    ref = new_histogram()
    for v in values_us:
        ref.record_corrected_value(v, 19_900)
    # 1 s, 980.1 ms, …: one value per expected interval the client could not send in
    assert ref.get_total_count() == 99 + 51
    assert corrected_histogram(rec.overall, 19_900).get_total_count() == 150
    co = rec.report(clients=1, duration=1.99, elapsed=1.99)["co_corrected"]
    for key, pct in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99)):
        assert co[key] == pytest.approx(ref.get_value_at_percentile(pct) / 1000, rel=0.001)
    assert co["p50_ms"] == pytest.approx(10, rel=0.01) and co["p95_ms"] > 600


def test_without_a_stall_the_corrected_percentiles_are_the_plain_ones() -> None:
    """8 clients, answers spread evenly over 30–60 ms, no stall: the expected interval is the
    mean (45 ms), and correcting every answer above it (as wrk does) would add samples of
    0–15 ms and pull p50 from ~45 to ~37 ms. Nothing was omitted, so nothing is corrected: no
    note, and the corrected row is not compared."""
    rec = PhaseRecorder(["/x"], tail_start_s=7.5, duration=10.0)
    for i in range(1800):
        rec.paths["/x"].record(200, 30_000 + (i % 301) * 100, 1.0)
    rec.snapshot(10.0)
    report = rec.report(clients=8, duration=10.0, elapsed=10.0)
    co = report["co_corrected"]
    assert [co[k] for k in ("p50_ms", "p95_ms", "p99_ms")] == [
        report[k] for k in ("p50_ms", "p95_ms", "p99_ms")
    ]
    assert co_note(report) is None
    wrk_like = corrected_histogram(rec.overall, 45_000)  # every answer above the interval
    assert wrk_like.get_value_at_percentile(50) / 1000 < 0.9 * report["p50_ms"]


def test_the_co_note_says_which_way_the_correction_moved() -> None:
    base = {"p50_ms": 6.5, "p95_ms": 7.5, "p99_ms": 9.3}
    up = co_note({**base, "co_corrected": {"p50_ms": 6.6, "p95_ms": 500.0, "p99_ms": 944.0}})
    assert up == f"CO-corrected p95 7.5→500, p99 9.3→944 ms (higher): {CO_WHY}"
    down = co_note({**base, "co_corrected": {"p50_ms": 5.0, "p95_ms": 7.5, "p99_ms": 9.3}})
    assert down is not None and down.startswith("CO-corrected p50 6.5→5 ms (lower)")


@pytest.mark.parametrize(
    "busy_s,lag_ms,bound",
    [
        (0.17, 6.8, False),  # issue 20: late wake-ups on a machine busy elsewhere, loop idle
        (0.60, 6.8, True),  # late because of its own queued work
        (0.95, 0.5, True),  # saturated: running or waiting for a core all the time
        (0.60, 2.0, False),
    ],
)
def test_client_bound_means_the_load_thread_was_the_bottleneck(
    busy_s: float, lag_ms: float, bound: bool
) -> None:
    """Over 1 s of fake time: the load thread busy `busy_s`, the loop's wake-ups late by
    `lag_ms` at every probe."""
    busy = iter([0.0, busy_s])
    check = SelfCheck(0.0, cpu_clock=lambda: 0.0, busy_clock=lambda: next(busy))
    for _ in range(50):
        check.note_lag(lag_ms / 1000)
    check.stop(1.0)
    assert check.client_bound(1.0) is bound


def test_stall_gate_is_off_by_default_and_names_the_stall() -> None:
    report = {"stalls": {"count": 1, "longest_ms": 1003.2, "total_ms": 1003.2, "at": [2.0]}}
    assert evaluate(report, GateLimits()) == []
    assert evaluate(report, GateLimits(), max_stall_ms=500) == ["stall 1003ms > 500ms"]
    assert evaluate(report, GateLimits(), max_stall_ms=2000) == []


def test_a_frozen_server_shows_as_a_stall_and_in_the_corrected_tail(tmp_path: Path) -> None:
    """5 ms answers, one 0.8 s freeze 1 s in: the closed loop's percentiles barely move, but
    the stall is counted, emitted live, gated, and the corrected p99 shows the freeze."""
    with StallServer(delay_ms=5, stall_at_s=1.0, stall_s=0.8) as server:
        config = phase_config(
            server.port, tmp_path, "/delay", (4, 2.5), write_history_db=False, max_stall_ms=500
        )
        engine = EngineProcess(config)
        engine.start()
        events = list(engine.events())
    stalls = [e for e in events if isinstance(e, Stall)]
    assert len(stalls) == 1 and 0.7 <= stalls[0].duration_ms / 1000 <= 1.0
    assert 0.8 <= stalls[0].at_s <= 1.3
    assert any(e.stalls == 1 for e in events if isinstance(e, Heartbeat))
    rep = engine.finished.payload["raw_runs"][0]["results"][0]
    assert rep["report"]["stalls"]["count"] == 1
    assert rep["fail_reasons"] == [f"stall {rep['report']['stalls']['longest_ms']:.0f}ms > 500ms"]
    assert engine.finished.exit_code == 1
    co = rep["report"]["co_corrected"]
    assert rep["report"]["p95_ms"] < 100 < 300 < co["p95_ms"]  # the freeze, as wrk would see it


def test_open_loop_flags_and_profile_rate(tmp_path: Path) -> None:
    """`--rate` makes both phases open loop at that rate; the report says so."""
    with StallServer(delay_ms=5) as server:
        code = run_cli(server.port, tmp_path, "--paths", "/delay", "--rate", "50")
    assert code == 0
    rep = first_report(latest(tmp_path))
    assert rep["mode"] == "open" and rep["target_rps"] == 50.0
    assert rep["achieved_rps"] == pytest.approx(50, rel=0.05)
    assert rep["stalls"]["count"] == 0 and rep["p50_ms"] < 50


def test_a_saturated_generator_is_flagged_client_bound(tmp_path: Path, capsys) -> None:
    """A rate far above what one core can send, at a server that answers faster than perftui
    asks: the numbers describe perftui, and the report and the log say so."""
    with FastServer() as server:
        args = ["--paths", "/x", "--rate", "1000000", "--burst-clients", "64"]
        code = run_cli(server.port, tmp_path, *args, "--burst-duration", "2")
    assert code == 0
    rep = first_report(latest(tmp_path))
    assert rep["client_bound"] is True
    assert rep["achieved_rps"] < 0.5 * rep["target_rps"] and rep["late"] > 1000
    assert "client-bound: these numbers describe perftui, not the device" in capsys.readouterr().err


def test_a_gentle_phase_is_not_client_bound(tmp_path: Path) -> None:
    with StallServer(delay_ms=5) as server:
        code = run_cli(server.port, tmp_path, "--paths", "/delay", "--rate", "50")
    assert code == 0
    rep = first_report(latest(tmp_path))
    assert rep["client_bound"] is False and rep["loop_busy_pct"] < 50


def test_printer_and_markdown_show_the_stall_and_the_corrected_tail(tmp_path: Path, capsys):
    with StallServer(delay_ms=5, stall_at_s=1.0, stall_s=0.8) as server:
        code = run_cli(server.port, tmp_path, "--paths", "/delay", "--burst-duration", "2.5")
    assert code == 0  # the stall gate is off by default
    err = capsys.readouterr().err
    assert "stall in adhoc/burst at 1." in err
    assert "CO-corrected p" in err and "(higher)" in err and CO_WHY in err
    md = next(tmp_path.glob("perf_*.md")).read_text()
    assert "1 stall(s), longest" in md and CO_WHY in md


def test_rate_comes_from_the_flag_then_the_profile_then_closed_loop(capsys) -> None:
    text = '[phases.burst]\nrate = 200\nclients = 6\n[[requests]]\npath = "/a"\n'
    profile = parse_profile(text, "r", "r.toml")
    assert RunConfig(host="h").phase_settings(profile, "burst") == PhaseSettings(6, 20.0, 200.0)
    assert RunConfig(host="h").phase_settings(profile, "long").rate is None
    args = build_parser().parse_args(
        ["run", "h", "--paths", "/a", "--rate", "50", "--long-rate", "9"]
    )
    config = config_from_args(args)
    assert [config.phase_settings(config.profiles[0], p).rate for p in PHASES] == [50.0, 9.0]
    with pytest.raises(ProfileError, match=r"phases\.burst\.rate must be a number > 0"):
        parse_profile(text.replace("200", "0"), "r", "r.toml")
    for bad in (["--rate", "0"], ["--arrivals", "bursty"], ["--max-stall-ms", "-1"]):
        with pytest.raises(SystemExit) as exit_:
            main(["run", "h", *bad])
        assert exit_.value.code == 2
        assert bad[0] in capsys.readouterr().err
