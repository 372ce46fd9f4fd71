"""The simulated device's noise (drift and spikes): the generator with a fake clock, then a sim."""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import time
from collections.abc import Callable

import httpx
import numpy as np
import pytest

from perftui.cli.main import build_parser, main
from perftui.cli.run import sim_options
from perftui.sim import model as simmod
from perftui.sim import options as simopts
from perftui.sim.device import SimOptions, SimServer
from perftui.sim.model import SPIKE_MAX_S, SPIKE_MIN_S, Noise

MakeSim = Callable[..., SimServer]


def log_factors(noise: Noise, times: np.ndarray) -> np.ndarray:
    return np.log([noise.factor(float(t)) for t in times])


def autocorrelation(x: np.ndarray, lag: int) -> float:
    return float(np.corrcoef(x[:-lag], x[lag:])[0, 1])


@pytest.mark.parametrize("sd", [0.1, 0.3])
def test_drift_has_the_asked_sd_and_changes_over_seconds(sd: float) -> None:
    """Fake clock, 0.1 s steps over 4000 s (≈ 400 independent stretches at tau = 5 s)."""
    noise = Noise(sd, tau_s=5.0, spikes=0.0, rng=random.Random(11))
    x = log_factors(noise, np.arange(0, 4000, 0.1))
    assert abs(float(np.mean(x))) < 4 * sd * math.sqrt(2 * 5.0 / 4000)  # 4 standard errors
    assert float(np.std(x)) == pytest.approx(sd, rel=0.1)
    assert autocorrelation(x, 10) == pytest.approx(math.exp(-1 / 5), abs=0.05)  # 1 s: 0.82
    assert autocorrelation(x, 300) < 0.2  # 30 s: it has wandered off


def test_drift_is_exact_for_irregular_steps() -> None:
    """Requests come at any times (bursts at one instant, then gaps): the law does not care."""
    rng = random.Random(5)
    times = np.cumsum([0.0 if rng.random() < 0.3 else rng.expovariate(10) for _ in range(60_000)])
    x = log_factors(Noise(0.2, tau_s=2.0, spikes=0.0, rng=random.Random(12)), times)
    assert float(np.std(x)) == pytest.approx(0.2, rel=0.1)


def test_spikes_come_at_the_asked_rate_and_last_80_to_300_ms() -> None:
    n, share = 20_000, 0.05
    noise = Noise(0.0, tau_s=5.0, spikes=share, rng=random.Random(11))
    delays = [d for d in (noise.spike_s() for _ in range(n)) if d]
    assert abs(len(delays) - n * share) <= 4 * math.sqrt(n * share * (1 - share))  # binomial
    assert SPIKE_MIN_S <= min(delays) < SPIKE_MIN_S + 0.01
    assert SPIKE_MAX_S - 0.01 < max(delays) <= SPIKE_MAX_S
    assert statistics.fmean(delays) == pytest.approx((SPIKE_MIN_S + SPIKE_MAX_S) / 2, abs=0.01)


def test_no_noise_draws_nothing_and_the_same_seed_repeats() -> None:
    rng = random.Random(1)
    state = rng.getstate()
    quiet = Noise(0.0, tau_s=5.0, spikes=0.0, rng=rng)
    assert [quiet.factor(t) for t in (0.0, 1.0, 2.0)] == [1.0] * 3 and quiet.spike_s() == 0.0
    assert rng.getstate() == state  # a seeded sim without noise keeps its old jitter draws
    twins = [Noise(0.3, 5.0, 0.1, random.Random(9)) for _ in range(2)]
    runs = [[(n.factor(t / 10), n.spike_s()) for t in range(100)] for n in twins]
    assert runs[0] == runs[1]


async def _latencies(sim: SimServer, path: str, clients: int, each: int) -> list[float]:
    async def one(http: httpx.AsyncClient) -> list[float]:
        out = []
        for _ in range(each):
            started = time.perf_counter()
            assert (await http.get(path)).status_code == 200
            out.append(time.perf_counter() - started)
        return out

    async with httpx.AsyncClient(base_url=sim.base_url, trust_env=False) as http:
        done = await asyncio.gather(*(one(http) for _ in range(clients)))
    return [x for part in done for x in part]


def test_a_noisy_sim_spikes_and_drifts(make_sim: MakeSim) -> None:
    """200 answers of /file (0.6 ms of service): about 20 % arrive 80–300 ms late."""
    sim = make_sim(spikes=0.2, seed=4, workers=8)
    latencies = asyncio.run(_latencies(sim, "/file", clients=8, each=25))
    late = sum(1 for x in latencies if x >= SPIKE_MIN_S)
    assert abs(late - 40) <= 4 * math.sqrt(200 * 0.2 * 0.8)
    assert max(latencies) < SPIKE_MAX_S + 0.15
    # seed 3 starts the drift at a factor of 4.7 (log 1.55 at sd 1), and at tau = 60 s it stays
    # near there for the next second: /template's 20 ms of service takes ~94 ms
    slow = make_sim(drift=1.0, drift_tau_s=60.0, seed=3)
    template = asyncio.run(_latencies(slow, "/template", clients=1, each=5))
    assert statistics.median(template) >= 3 * simmod.PY_TEMPLATE_S


def test_noise_flags_for_perftui_sim_and_run_sim(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    simopts.add_arguments(parser)
    args = parser.parse_args(["--drift", "0.2", "--drift-tau-s", "8", "--spikes", "0.01"])
    assert simopts.options_from_args(args) == SimOptions(drift=0.2, drift_tau_s=8.0, spikes=0.01)
    run = build_parser().parse_args(["run", "--sim", "--sim-drift", "0.3", "--sim-seed", "7"])
    assert sim_options(run) == SimOptions(drift=0.3, seed=7)
    assert main(["run", "127.0.0.1", "--sim-spikes", "0.1"]) == 2
    assert capsys.readouterr().err == "perftui: error: --sim-spikes needs --sim\n"
    slower = build_parser().parse_args(["run", "--sim", "--sim-slowdown", "1.5"])
    assert sim_options(slower) == SimOptions(slowdown=1.5)  # a slower build of the same device
    assert main(["run", "--sim", "--sim-slowdown", "0"]) == 2
    assert capsys.readouterr().err.startswith("perftui: error: --sim-slowdown must be a factor > 0")
