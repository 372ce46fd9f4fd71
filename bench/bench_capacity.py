"""Capacity search vs hand-stepping, against the simulated device with its workers limited.

The sim serves /api/ping with 2 workers at 6 ms × slowdown 2.5 = 15 ms: at most ≈ 133 req/s.
1. Hand-step: one open-loop step (the confirm length) at each rate of a fine grid around that
   figure; the hand-stepped knee is the highest rate below which every step passes the gates.
2. `perftui capacity --json` twice (the real command, its own processes).
Targets of issue 10: each search within 10 % of the hand-stepped knee, and the two searches
within 10 % of each other. Raw results go to bench/results/capacity_<stamp>.json.

    .venv/bin/python bench/bench_capacity.py            # about 4 minutes
    .venv/bin/python bench/bench_capacity.py --fake     # the bench's own logic, no engine
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import ROOT, log, machine_info, table, write_results

sys.path.insert(0, str(ROOT))

from perftui.config import RunConfig
from perftui.engine.capacity import (
    CapacityGates,
    EngineMeasure,
    SearchPlan,
    StepAborted,
    StepResult,
    judge,
    search,
)
from perftui.profiles import adhoc_profile
from perftui.sim.device import SimOptions, SimProcess

WORKERS, SLOWDOWN, SERVICE_S = 2, 2.5, 0.006
THEORY_RPS = WORKERS / (SERVICE_S * SLOWDOWN)
PATH = "/api/ping"


def fake_measure(knee: float) -> Any:
    """A device model with a known knee, for checking this script without the engine."""

    def measure(rate: float, duration: float) -> StepResult:
        p95 = 15.0 + 10_000.0 * duration * max(0.0, rate - knee) / knee
        return StepResult(rate, duration, int(rate * duration), 8.0, p95, p95, 0.0, min(rate, knee))

    return measure


def hand_step(measure: Any, gates: CapacityGates, duration: float) -> tuple[float | None, list]:
    """Rates from 70 % to 130 % of the theoretical capacity in 2.5 % steps, each once."""
    rows, knee, failures = [], None, 0
    for i in range(25):
        rate = round(THEORY_RPS * (0.7 + 0.025 * i), 1)
        result = measure(rate, duration)
        reasons = judge(result, gates)
        rows.append({"rate": rate, "p95_ms": result.p95_ms, "pass": not reasons})
        log(f"hand step {rate:g} req/s: p95 {result.p95_ms} ms {'pass' if not reasons else 'FAIL'}")
        if reasons:
            failures += 1
            if failures == 2:  # past the knee the rest only fails more
                break
        elif failures == 0:
            knee = rate  # every step so far passed
    return knee, rows


def cli_search(port: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as history:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "perftui",
                "capacity",
                "127.0.0.1",
                "--port",
                str(port),
                "--paths",
                PATH,
                "--history-dir",
                history,
                "--max-p95-ms",
                str(args.max_p95_ms),
                "--start-rate",
                str(args.start_rate),
                "--step-s",
                str(args.step_s),
                "--confirm-s",
                str(args.confirm_s),
                "--json",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=600,
            check=False,
        )
    if out.returncode != 0:
        raise SystemExit(f"perftui capacity exited {out.returncode}: {out.stderr.strip()[-400:]}")
    return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-p95-ms", type=float, default=60.0)
    ap.add_argument("--start-rate", type=float, default=20.0)
    ap.add_argument("--step-s", type=float, default=2.0)
    ap.add_argument("--confirm-s", type=float, default=5.0)
    ap.add_argument("--fake", action="store_true", help="a model device instead of the engine")
    args = ap.parse_args()
    gates = CapacityGates(max_p95_ms=args.max_p95_ms)
    plan = SearchPlan(args.start_rate, args.step_s, args.confirm_s)
    options = SimOptions(workers=WORKERS, slowdown=SLOWDOWN, seed=11, max_lifetime_s=1800)
    with SimProcess(options, port=0) as sim, tempfile.TemporaryDirectory() as scratch:
        if args.fake:
            measure = fake_measure(THEORY_RPS * 0.93)
        else:
            config = RunConfig(
                host="127.0.0.1",
                port=sim.port,
                profiles=[adhoc_profile(PATH)],
                history_dir=Path(scratch),
                phase_overrides={"burst": {"clients": 16}},
            )
            measure = EngineMeasure(config)
        log(f"sim at {sim.base_url}: theoretical capacity {THEORY_RPS:.1f} req/s")
        try:
            knee, steps = hand_step(measure, gates, args.confirm_s)
        except StepAborted as exc:
            raise SystemExit(f"bench_capacity: a step could not run: {exc.reason}") from None
        searches = []
        for n in (1, 2):
            if args.fake:
                result = search(measure, gates, plan)
                answer = {"capacity_rps": result.capacity_rps, "steps": len(result.steps)}
            else:
                found = cli_search(sim.port, args)
                answer = {"capacity_rps": found["capacity_rps"], "steps": len(found["steps"])}
            log(f"search {n}: {answer}")
            searches.append(answer)
    caps = [s["capacity_rps"] for s in searches]
    ok_hand = knee is not None and all(c and abs(c - knee) / knee <= 0.10 for c in caps)
    ok_repeat = all(caps) and abs(caps[0] - caps[1]) / max(caps) <= 0.10
    rows = [
        ["hand-stepped knee", knee, "", ""],
        *[
            [f"search {i}", c, f"{(c - knee) / knee:+.1%}" if c and knee else "-", s["steps"]]
            for i, (c, s) in enumerate(zip(caps, searches, strict=True), start=1)
        ],
    ]
    print(table(["", "req/s", "vs hand", "steps"], rows))
    print(f"within 10 % of hand-stepping: {'PASS' if ok_hand else 'FAIL'}")
    print(f"two searches within 10 %: {'PASS' if ok_repeat else 'FAIL'}")
    if not args.fake:
        path = write_results(
            "capacity",
            {
                "machine": machine_info(),
                "theory_rps": THEORY_RPS,
                "gates": gates.as_dict(),
                "plan": vars(args),
                "hand_steps": steps,
                "hand_knee": knee,
                "searches": searches,
                "pass": ok_hand and ok_repeat,
            },
        )
        log(f"raw results: {path}")
    return 0 if ok_hand and ok_repeat else 1


if __name__ == "__main__":
    sys.exit(main())
