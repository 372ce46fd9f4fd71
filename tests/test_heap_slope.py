"""The heap-slope gate: the fit on samples whose slope is known, and a leaking device failing it."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import latest, run_cli

from perftui.config import GateLimits
from perftui.engine.gates import RunningSlope, evaluate
from perftui.engine.gates import heap_slope_per_hour as slope_of_fit


def heap_slope_per_hour(samples: list[tuple[float, int]]) -> float | None:
    fit = RunningSlope()
    for t, heap in samples:
        fit.add(t, heap)
    return slope_of_fit(fit)


def test_slope_of_a_known_line_with_noise_is_recovered() -> None:
    # 200 000 B falling by 10 B/s with ±50 B of alternating noise: -36 000 B/h.
    samples = [(t * 0.5, 200_000 - int(10 * t * 0.5) + (50 if t % 2 else -50)) for t in range(120)]
    slope = heap_slope_per_hour(samples)
    assert slope == pytest.approx(-36_000, rel=0.02)


def test_too_few_samples_or_no_time_spread_give_no_slope() -> None:
    assert heap_slope_per_hour([]) is None
    assert heap_slope_per_hour([(0.0, 10), (1.0, 5)]) is None
    assert heap_slope_per_hour([(1.0, 10), (1.0, 5), (1.0, 1)]) is None


def test_gate_fails_a_faster_fall_and_passes_a_slower_one() -> None:
    t = GateLimits(max_heap_slope=50_000)
    assert evaluate({"heap_slope_b_per_h": -120_000.0}, t) == [
        "heap slope -120000 B/h < -50000 B/h"
    ]
    assert evaluate({"heap_slope_b_per_h": -49_000.0}, t) == []
    assert evaluate({"heap_slope_b_per_h": 80_000.0}, t) == []  # heap growing is no leak
    assert evaluate({"heap_slope_b_per_h": None}, t) == []  # skipped (logged by the suite)
    assert evaluate({"heap_slope_b_per_h": -1e9}, GateLimits()) == []  # off by default


# The slope gate alone: the drop gate is set out of reach.
GATE = ["--paths", "/hello", "--max-heap-slope", "50000", "--max-internal-free-drop", "100000000"]


def test_a_leaking_device_fails_the_slope_gate(make_sim, tmp_path: Path) -> None:
    # 50 B per request at hundreds of req/s is megabytes an hour: far past 50 000 B/h.
    leaky = make_sim(leak_bytes=50)
    code = run_cli(leaky.port, tmp_path, *GATE, "--burst-duration", "2.5", "--heap-poll-s", "0.2")
    assert code == 1
    result = latest(tmp_path)["raw_runs"][0]["results"][0]
    slope = result["report"]["heap_slope_b_per_h"]
    # The known truth: 50 B for every request, at the phase's request rate.
    assert slope == pytest.approx(-50 * 3600 * result["report"]["rps_total"], rel=0.2)
    assert [r for r in result["fail_reasons"] if r.startswith("heap slope ")] == [
        f"heap slope {slope:.0f} B/h < -50000 B/h"
    ]


def test_without_polling_the_gate_is_skipped_with_a_log_line(make_sim, tmp_path: Path, capsys):
    leaky = make_sim(leak_bytes=50)
    assert run_cli(leaky.port, tmp_path, *GATE) == 0
    assert latest(tmp_path)["raw_runs"][0]["results"][0]["report"]["heap_slope_b_per_h"] is None
    out = capsys.readouterr()
    assert "heap slope gate skipped for adhoc burst: heap polling is off" in out.out + out.err
