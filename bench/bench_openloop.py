"""Open loop, stalls and coordinated omission: perftui against known truth and wrk.

1. A server answering in 5 ms that freezes 1 s every 5 s (bench/delay_server.py --stall-every):
   - open loop at 100 req/s for 10 s: p50 < 20 ms, p90 > 300 ms, p99 > 800 ms, achieved rate
     within 3 % of the target;
   - closed loop, 8 clients, 10 s: >= 2 stalls of >= 0.7 s, and a CO-corrected p99 within 15 %
     of `wrk -t2 -c8 -d10s --latency` run against the same server just after.
2. A fixed 20 ms server at 200 req/s (half of what 8 connections carry): open-loop p50/p99
   within 3 % / 10 % of closed-loop perftui (8 clients) and of wrk (-c8).
3. Rate accuracy against nginx (1 KB file): rates stepped up until perftui cannot send the
   rate (achieved > 1 % short: its ceiling); the error stays < 1 % at every step that is not
   flagged client-bound, and the steps past the ceiling are flagged.

Every 10 s window of a server freezing 1 s every 5 s holds exactly 2 s of freeze, whatever its
offset, so perftui's and wrk's runs see the same share of it. Raw results go to
bench/results/openloop_<stamp>.json.

    PERFTUI=... .venv/bin/python bench/bench_openloop.py
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from common import (
    QUIET,
    DelayServer,
    add_quiet_options,
    apply_quiet_options,
    free_port,
    log,
    machine_info,
    perftui_cmd,
    run_wrk,
    section,
    table,
    wait_for_quiet,
    write_results,
)
from nginx_run import Nginx

STALL_LINE = re.compile(r"stall in \S+ at [\d.]+ s: no answer for (\d+) ms")


def perftui_report(
    port: int, path: str, clients: int, duration: int, *extra: str
) -> dict[str, Any]:
    """One perftui burst phase; its full phase report plus the command line."""
    busy = wait_for_quiet(QUIET["max_wait_s"], QUIET["busy_pct"])
    with tempfile.TemporaryDirectory(prefix="perftui-bench-openloop-") as tmp:
        cmd = perftui_cmd(port, path, clients, duration, Path(tmp), extra=list(extra))
        cmd += ["--max-p95-ms", "100000", "--max-p99-ms", "100000", "--max-tail-p95-ratio", "100"]
        cp = subprocess.run(
            cmd, capture_output=True, text=True, timeout=duration + 120, stdin=subprocess.DEVNULL
        )
        latest = Path(tmp) / "latest.json"
        if not latest.exists():
            raise RuntimeError(f"perftui exit {cp.returncode}: {cp.stderr[-1500:]}")
        rep = json.loads(latest.read_text())["raw_runs"][0]["results"][0]["report"]
    rep["stall_events_ms"] = [float(ms) for ms in STALL_LINE.findall(cp.stderr)]
    rep.pop("histogram", None)
    rep.pop("timeline", None)
    rep["cmd"] = " ".join(cmd).replace(tmp, "<tmp>")
    rep["machine_busy_pct_before"] = busy
    return rep


def wrk(url: str, clients: int, duration: int) -> dict[str, Any]:
    busy = wait_for_quiet(QUIET["max_wait_s"], QUIET["busy_pct"])
    return {**run_wrk(url, clients, duration), "machine_busy_pct_before": busy}


def within(value: float | None, ref: float | None, tolerance: float) -> bool:
    if value is None or not ref:
        return False
    return abs(value - ref) <= tolerance * ref


def three_runs(
    name: str, duration: int, rate: int, connections: int, **server: float
) -> dict[str, Any]:
    """perftui open loop at `rate`, perftui closed loop with 8 clients, then wrk -c8, one after
    the other against one delay server."""
    port = free_port()
    out: dict[str, Any] = {}
    with DelayServer(port, max_seconds=4 * duration + 120, **server) as ds:
        with section(f"{name}: open loop at {rate} req/s"):
            out["open"] = perftui_report(port, "/delay", connections, duration, "--rate", str(rate))
        with section(f"{name}: closed loop, 8 clients"):
            out["closed"] = perftui_report(port, "/delay", 8, duration)
        with section(f"{name}: wrk -t2 -c8"):
            out["wrk"] = wrk(ds.url, 8, duration)
    return out


def stalling(duration: int) -> dict[str, Any]:
    out = three_runs("stalling server", duration, 100, 16, delay_ms=5, stall_every=5, stall_ms=1000)
    o, c, w = out["open"], out["closed"], out["wrk"]
    co = c["co_corrected"] or {}
    long_stalls = [ms for ms in c["stall_events_ms"] if ms >= 700]
    out["checks"] = {
        "open p50 < 20 ms": o["p50_ms"] < 20,
        "open p90 > 300 ms": o["p90_ms"] > 300,
        "open p99 > 800 ms": o["p99_ms"] > 800,
        "open achieved within 3 % of 100 req/s": within(o["achieved_rps"], 100, 0.03),
        "closed >= 2 stalls of >= 0.7 s": len(long_stalls) >= 2,
        "closed corrected p99 within 15 % of wrk p99": within(co.get("p99_ms"), w["p99_ms"], 0.15),
    }
    log(
        "stalling server:\n"
        + table(
            ["run", "p50 ms", "p90 ms", "p99 ms", "corrected p99 ms", "rps", "stalls"],
            [
                [
                    "perftui open 100/s",
                    o["p50_ms"],
                    o["p90_ms"],
                    o["p99_ms"],
                    None,
                    o["achieved_rps"],
                    o["stalls"]["count"],
                ],
                [
                    "perftui closed c8",
                    c["p50_ms"],
                    c["p90_ms"],
                    c["p99_ms"],
                    co.get("p99_ms"),
                    c["rps_total"],
                    c["stalls"]["count"],
                ],
                [
                    "wrk -c8",
                    w.get("p50_ms"),
                    w.get("p90_ms"),
                    w["p99_ms"],
                    None,
                    w.get("rps"),
                    None,
                ],
            ],
        )
    )
    return out


def fixed(duration: int) -> dict[str, Any]:
    out = three_runs("20 ms server", duration, 200, 8, delay_ms=20)
    o, c, w = out["open"], out["closed"], out["wrk"]
    out["checks"] = {
        "open p50 within 3 % of closed": within(o["p50_ms"], c["p50_ms"], 0.03),
        "open p99 within 10 % of closed": within(o["p99_ms"], c["p99_ms"], 0.10),
        "open p50 within 3 % of wrk": within(o["p50_ms"], w.get("p50_ms"), 0.03),
        "open p99 within 10 % of wrk": within(o["p99_ms"], w["p99_ms"], 0.10),
    }
    log(
        "20 ms server:\n"
        + table(
            ["run", "p50 ms", "p99 ms", "rps"],
            [
                ["perftui open 200/s", o["p50_ms"], o["p99_ms"], o["achieved_rps"]],
                ["perftui closed c8", c["p50_ms"], c["p99_ms"], c["rps_total"]],
                ["wrk -c8", w.get("p50_ms"), w["p99_ms"], w.get("rps")],
            ],
        )
    )
    return out


def accuracy(step_s: int, rates: list[float]) -> dict[str, Any]:
    port = free_port()
    steps = []
    with Nginx(port, len(rates) * (step_s + 30) + 60) as ng:
        path = "/" + ng.url.rsplit("/", 1)[1]
        for rate in rates:
            with section(f"nginx: open loop at {rate:g} req/s"):
                rep = perftui_report(port, path, 32, step_s, "--rate", f"{rate:g}")
            steps.append(
                {
                    "target_rps": rate,
                    "achieved_rps": rep["achieved_rps"],
                    "error_pct": round(100 * (rep["achieved_rps"] - rate) / rate, 3),
                    "late": rep["late"],
                    "p50_ms": rep["p50_ms"],
                    "p99_ms": rep["p99_ms"],
                    "client_bound": rep["client_bound"],
                    "loop_lag_ms": rep["loop_lag_ms"],
                    "loop_busy_pct": rep["loop_busy_pct"],
                    "engine_cpu_pct": rep["engine_cpu_pct"],
                }
            )
            if steps[-1]["error_pct"] <= -1:  # perftui could not send the rate: its ceiling
                break
    below = [s for s in steps if not s["client_bound"]]
    saturated = [s for s in steps if s["error_pct"] <= -1]
    log(
        "rate accuracy (nginx):\n"
        + table(
            ["target", "achieved", "error %", "late", "p99 ms", "busy %", "lag p90", "bound"],
            [
                [
                    s["target_rps"],
                    s["achieved_rps"],
                    s["error_pct"],
                    s["late"],
                    s["p99_ms"],
                    s["loop_busy_pct"],
                    s["loop_lag_ms"]["p90"],
                    s["client_bound"],
                ]
                for s in steps
            ],
        )
    )
    return {
        "steps": steps,
        "checks": {
            "error < 1 % at every step below the ceiling": all(
                abs(s["error_pct"]) < 1 for s in below
            ),
            "a step that could not send its rate is flagged client-bound": bool(saturated)
            and all(s["client_bound"] for s in saturated),
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    ap.add_argument("--step-s", type=int, default=3, help="seconds per rate step (3)")
    ap.add_argument(
        "--rates", default="100,1000,3000,10000,30000,60000,100000", help="rate steps, req/s"
    )
    add_quiet_options(ap)
    args = ap.parse_args(argv)
    apply_quiet_options(args)
    data: dict[str, Any] = {"machine": machine_info()}
    data["stalling"] = stalling(args.duration)
    data["fixed"] = fixed(args.duration)
    data["accuracy"] = accuracy(args.step_s, [float(r) for r in args.rates.split(",")])
    checks = {
        k: v for part in ("stalling", "fixed", "accuracy") for k, v in data[part]["checks"].items()
    }
    data["checks"] = checks
    path = write_results("openloop", data)
    for name, ok in checks.items():
        log(f"{'PASS' if ok else 'FAIL'}  {name}")
    log(f"results: {path}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
