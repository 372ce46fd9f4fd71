"""Does the client-bound warning hold? A slow device at low load (no warning) and at perftui's
ceiling (a warning), each with the TUI's live settings, plus low load on a machine whose two
cores are kept busy by other processes (the TUI, a simulator, other people's tests), which
makes the load loop wake late without perftui being the bottleneck.

Each case is one perftui phase driven by the engine (`EngineProcess`, the code both faces use)
against bench/delay_server.py on 127.0.0.1. The table gives the phase report's self-check
(load-thread busy %, loop lag p90, engine CPU) and what the rule decided; `old rule` is the
rule before issue 20 (lag p90 > 5 ms or busy > 90 %), recomputed from the same figures.

    .venv/bin/python bench/bench_selfcheck.py            # ≈ 1 min
    .venv/bin/python bench/bench_selfcheck.py --duration 20
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import DelayServer, free_port, log, machine_info, table, write_results

from perftui.config import PhaseSettings, RunConfig
from perftui.engine.runner import EngineProcess
from perftui.profiles import adhoc_profile
from perftui.tui.screens.setup import (
    LIVE_HEAP_POLL_S,
    LIVE_PATH_PERCENTILES_S,
    LIVE_SNAPSHOT_S,
)

OLD_LAG_MS, OLD_BUSY_PCT = 5.0, 90.0


def _spin(until: float) -> None:
    while time.monotonic() < until:
        pass


def phase(port: int, clients: int, duration: float) -> dict[str, Any]:
    """One closed-loop burst phase with the TUI's live settings; the report's figures."""
    with tempfile.TemporaryDirectory(prefix="perftui-bench-selfcheck-") as tmp:
        config = RunConfig(
            "127.0.0.1",
            port=port,
            profiles=[adhoc_profile("/delay")],
            runs=1,
            burst=PhaseSettings(clients, duration),
            long=PhaseSettings(1, 0.0),
            history_dir=Path(tmp),
            probe_path="/delay",
            between_runs_sleep_ms=0,
            post_phase_settle_ms=0,
            snapshot_interval_s=LIVE_SNAPSHOT_S,
            telemetry_interval_s=LIVE_HEAP_POLL_S,
            path_percentiles_s=LIVE_PATH_PERCENTILES_S,
        )
        engine = EngineProcess(config)
        engine.start()
        for _ in engine.events():
            pass
        payload = engine.finished.payload if engine.finished else None
    if not payload or not payload["raw_runs"]:
        raise RuntimeError(f"the phase did not run: {engine.finished}")
    rep = payload["raw_runs"][0]["results"][0]["report"]
    lag = (rep.get("loop_lag_ms") or {}).get("p90") or 0.0
    return {
        "rps": rep["rps_total"],
        "p50_ms": rep["p50_ms"],
        "busy_pct": rep["loop_busy_pct"],
        "lag_p90_ms": lag,
        "engine_cpu_pct": rep["engine_cpu_pct"],
        "client_bound": rep["client_bound"],
        "old_rule": lag > OLD_LAG_MS or rep["loop_busy_pct"] > OLD_BUSY_PCT,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    args = ap.parse_args(argv)
    cases = [
        # (name, delay ms, clients, CPU hogs, a warning expected)
        ("slow device, ~200 req/s", 40.0, 8, 0, False),
        ("slow device, ~200 req/s, both cores busy elsewhere", 40.0, 8, 2, False),
        ("ceiling: 2 ms device, 256 clients", 2.0, 256, 0, True),
    ]
    rows, raw, ok = [], [], True
    for name, delay_ms, clients, hogs, expected in cases:
        port = free_port()
        with DelayServer(port, delay_ms, args.duration + 60, workers=2):
            until = time.monotonic() + args.duration + 8
            burners = [mp.Process(target=_spin, args=(until,), daemon=True) for _ in range(hogs)]
            for b in burners:
                b.start()
            try:
                res = phase(port, clients, args.duration)
            finally:
                for b in burners:
                    b.terminate()
                    b.join()
        held = res["client_bound"] == expected
        ok &= held
        log(f"{name}: {res}")
        raw.append({"case": name, "delay_ms": delay_ms, "clients": clients, "hogs": hogs, **res})
        rows.append(
            [
                name,
                res["rps"],
                res["p50_ms"],
                res["busy_pct"],
                res["lag_p90_ms"],
                res["engine_cpu_pct"],
                "yes" if res["old_rule"] else "no",
                "yes" if res["client_bound"] else "no",
                "PASS" if held else "FAIL",
            ]
        )
    head = ["case", "rps", "p50 ms", "busy %", "lag p90 ms", "engine CPU %"]
    print(table([*head, "old rule", "client-bound", "expected"], rows))
    path = write_results("selfcheck", {"machine": machine_info(), "runs": raw})
    log(f"raw results: {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
