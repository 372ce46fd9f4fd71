"""Fidelity: does perftui report the latency wrk reports, against a server of known latency?

Against bench/delay_server.py (every answer after exactly 20 ms) at 8 and 64 clients, it runs
wrk, perftui (headless, one burst phase) and a plain shared httpx.AsyncClient, one after the
other in this session, and checks perftui/wrk against the targets of issue 2: p50 within 5 %,
p99 within 15 %, rps within 10 %. Raw results go to bench/results/fidelity_<stamp>.json.

    .venv/bin/python bench/fidelity.py                  # 8 and 64 clients, 10 s each
    .venv/bin/python bench/fidelity.py --repeat 3       # medians of 3 runs per tool
    .venv/bin/python bench/fidelity.py --no-perftui     # reference tools only
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from common import (
    DelayServer,
    add_run_options,
    apply_quiet_options,
    free_port,
    log,
    machine_info,
    measure,
    median_of,
    run_httpx,
    run_perftui,
    run_wrk,
    table,
    write_results,
)

TARGETS = {"p50_ms": 0.05, "p99_ms": 0.15, "rps": 0.10}


def _measure(tool: str, srv: DelayServer, clients: int, duration: int) -> dict[str, Any]:
    runners = {
        "wrk": lambda: run_wrk(srv.url, clients, duration),
        "perftui": lambda: run_perftui(srv.port, "/delay", clients, duration),
        "httpx": lambda: run_httpx(srv.url, clients, duration),
    }
    return measure(tool, clients, runners[tool], srv)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="8,64", help="comma list (default 8,64)")
    ap.add_argument("--delay-ms", type=float, default=20.0)
    ap.add_argument("--server-workers", type=int, default=2)
    add_run_options(ap)
    args = ap.parse_args(argv)
    apply_quiet_options(args)

    counts = [int(c) for c in args.clients.split(",")]
    tools = (
        ["wrk"] + ([] if args.no_perftui else ["perftui"]) + ([] if args.no_httpx else ["httpx"])
    )
    budget = int(
        len(counts) * args.repeat * len(tools) * (args.duration + 30 + args.quiet_wait) + 60
    )
    port = free_port()
    runs: list[dict[str, Any]] = []
    with DelayServer(port, args.delay_ms, budget, args.server_workers) as srv:
        log(f"delay server {srv.url} ({args.delay_ms:g} ms, stops within {budget} s)")
        for clients in counts:
            for _ in range(args.repeat):
                for tool in tools:
                    try:
                        runs.append(_measure(tool, srv, clients, args.duration))
                    except Exception as exc:  # record and go on: one tool failing is a finding
                        log(f"{tool} c={clients} FAILED: {exc}")
                        runs.append({"tool": tool, "clients": clients, "error": str(exc)})

    rows, checks, summary = [], [], []
    all_pass = True
    for clients in counts:
        med: dict[str, dict[str, float | None]] = {}
        for tool in tools:
            sel = [r for r in runs if r["tool"] == tool and r["clients"] == clients]
            med[tool] = {
                k: median_of(sel, k)
                for k in ("p50_ms", "p99_ms", "rps", "cpu_pct", "server_cpu_pct", "other_cpu_pct")
            }
        ref = med["wrk"]
        for tool in tools:
            m = med[tool]
            ratios = [(m[k] / ref[k]) if m[k] is not None and ref[k] else None for k in TARGETS]
            rows.append(
                [
                    clients,
                    tool,
                    m["p50_ms"],
                    m["p99_ms"],
                    m["rps"],
                    *ratios,
                    m["cpu_pct"],
                    m["server_cpu_pct"],
                    m["other_cpu_pct"],
                ]
            )
        if "perftui" in tools:
            for key, tol in TARGETS.items():
                got, want = med["perftui"][key], ref[key]
                ratio = got / want if got is not None and want else None
                ok = ratio is not None and abs(ratio - 1) <= tol
                all_pass &= ok
                checks.append(
                    [clients, key, got, want, ratio, f"±{tol:.0%}", "PASS" if ok else "FAIL"]
                )
                summary.append(
                    {
                        "clients": clients,
                        "metric": key,
                        "perftui": got,
                        "wrk": want,
                        "ratio": ratio,
                        "tolerance": tol,
                        "pass": ok,
                    }
                )

    print(
        f"\nFidelity vs wrk, delay server {args.delay_ms:g} ms, {args.duration} s per run, "
        f"median of {args.repeat}:\n"
    )
    print(
        table(
            [
                "clients",
                "tool",
                "p50 ms",
                "p99 ms",
                "rps",
                "p50/wrk",
                "p99/wrk",
                "rps/wrk",
                "tool CPU %",
                "server CPU %",
                "other CPU %",
            ],
            rows,
        )
    )
    if checks:
        print("\nTargets (perftui / wrk):\n")
        print(table(["clients", "metric", "perftui", "wrk", "ratio", "target", "verdict"], checks))
    path = write_results(
        "fidelity", {"machine": machine_info(), "args": vars(args), "runs": runs, "checks": summary}
    )
    print(f"\nraw results: {path}")
    return 0 if all_pass or not checks else 1


if __name__ == "__main__":
    sys.exit(main())
