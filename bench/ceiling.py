"""Ceiling: how many requests per second can perftui drive, next to hey, wrk and locust?

Against nginx (one worker, 127.0.0.1) serving a 1 KB file, 32 clients, 10 s per tool, one
tool at a time in this session. Targets of issue 2: perftui's rps >= locust's (FastHttpUser,
one process) and >= 0.3 × hey's. nginx and the load generator share the machine's cores, so
every row also records the tool's and nginx's CPU. Raw results go to
bench/results/ceiling_<stamp>.json.

    .venv/bin/python bench/ceiling.py
    .venv/bin/python bench/ceiling.py --repeat 3 --no-perftui
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import (
    LOCUST_VENV,
    add_run_options,
    apply_quiet_options,
    free_port,
    log,
    machine_info,
    measure,
    median_of,
    run_cmd,
    run_hey,
    run_httpx,
    run_perftui,
    run_wrk,
    table,
    write_results,
)
from nginx_run import FILE_NAME, Nginx

HERE = Path(__file__).resolve().parent


def run_locust(host: str, clients: int, duration: int) -> dict[str, Any]:
    """Locust headless, FastHttpUser, one process; figures from its stats CSV."""
    locust = str(LOCUST_VENV / "bin" / "locust")
    with tempfile.TemporaryDirectory(prefix="perftui-bench-locust-") as tmp:
        prefix = str(Path(tmp) / "ceiling")
        cmd = [
            locust,
            "-f",
            str(HERE / "locustfile.py"),
            "--headless",
            "-u",
            str(clients),
            "-r",
            str(clients),
            "-t",
            f"{duration}s",
            "--host",
            host,
            "--csv",
            prefix,
            "--only-summary",
            "--loglevel",
            "WARNING",
        ]
        cp, cpu = run_cmd(cmd, timeout=duration + 60)
        stats = Path(f"{prefix}_stats.csv")
        if not stats.exists():
            raise RuntimeError(f"locust wrote no stats (exit {cp.returncode}): {cp.stderr[-800:]}")
        with stats.open() as fh:
            agg = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    warn = [line for line in cp.stderr.splitlines() if "CPU usage" in line]
    return {
        "cmd": " ".join(cmd).replace(tmp, "<tmp>").replace(str(HERE.parent) + "/", ""),
        "rps": float(agg["Requests/s"]),
        "p50_ms": float(agg["50%"]),
        "p99_ms": float(agg["99%"]),
        "mean_ms": float(agg["Average Response Time"]),
        "requests": int(agg["Request Count"]),
        "errors": int(agg["Failure Count"]),
        "cpu_pct": round(100 * cpu.cpu_s / cpu.wall_s, 1),
        "warnings": warn[:3],
    }


def _measure(tool: str, ng: Nginx, clients: int, duration: int) -> dict[str, Any]:
    runners = {
        "hey": lambda: run_hey(ng.url, clients, duration),
        "wrk": lambda: run_wrk(ng.url, clients, duration),
        "locust": lambda: run_locust(f"http://127.0.0.1:{ng.port}", clients, duration),
        "perftui": lambda: run_perftui(ng.port, f"/{FILE_NAME}", clients, duration),
        "httpx": lambda: run_httpx(ng.url, clients, duration),
    }
    return measure(tool, clients, runners[tool], ng)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=32)
    add_run_options(ap)
    args = ap.parse_args(argv)
    apply_quiet_options(args)

    tools = ["hey", "wrk", "locust"]
    tools += [] if args.no_perftui else ["perftui"]
    tools += [] if args.no_httpx else ["httpx"]
    budget = int(args.repeat * len(tools) * (args.duration + 40 + args.quiet_wait) + 60)
    runs: list[dict[str, Any]] = []
    with Nginx(free_port(), budget) as ng:
        log(f"nginx {ng.url} (stops within {budget} s)")
        for _ in range(args.repeat):
            for tool in tools:
                try:
                    runs.append(_measure(tool, ng, args.clients, args.duration))
                except Exception as exc:  # record and go on: one tool failing is a finding
                    log(f"{tool} FAILED: {exc}")
                    runs.append({"tool": tool, "clients": args.clients, "error": str(exc)})

    med = {
        tool: {
            k: median_of([r for r in runs if r["tool"] == tool], k)
            for k in ("rps", "p50_ms", "p99_ms", "cpu_pct", "server_cpu_pct", "other_cpu_pct")
        }
        for tool in tools
    }
    hey_rps = med["hey"]["rps"]
    rows = [
        [
            tool,
            m["rps"],
            (m["rps"] / hey_rps) if m["rps"] and hey_rps else None,
            m["p50_ms"],
            m["p99_ms"],
            m["cpu_pct"],
            m["server_cpu_pct"],
            m["other_cpu_pct"],
        ]
        for tool, m in med.items()
    ]
    print(
        f"\nCeiling: nginx 1 KB file, {args.clients} clients, {args.duration} s per run, "
        f"median of {args.repeat}:\n"
    )
    print(
        table(
            [
                "tool",
                "rps",
                "rps/hey",
                "p50 ms",
                "p99 ms",
                "tool CPU %",
                "nginx CPU %",
                "other CPU %",
            ],
            rows,
        )
    )
    checks: list[dict[str, Any]] = []
    if "perftui" in tools:
        p = med["perftui"]["rps"] or 0.0
        loc = med["locust"]["rps"]
        checks = [
            {"check": "perftui rps >= locust rps", "perftui": p, "ref": loc,
             "pass": loc is not None and p >= loc},
            {"check": "perftui rps >= 0.3 × hey rps", "perftui": p,
             "ref": 0.3 * hey_rps if hey_rps else None,
             "pass": hey_rps is not None and p >= 0.3 * hey_rps},
        ]  # fmt: skip
        print("\nTargets:\n")
        print(
            table(
                ["check", "perftui rps", "needed", "verdict"],
                [
                    [c["check"], c["perftui"], c["ref"], "PASS" if c["pass"] else "FAIL"]
                    for c in checks
                ],
            )
        )
    path = write_results(
        "ceiling", {"machine": machine_info(), "args": vars(args), "runs": runs, "checks": checks}
    )
    print(f"\nraw results: {path}")
    return 0 if all(c["pass"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
