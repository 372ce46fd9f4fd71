"""Start-up: how long a fresh `perftui` process takes for the commands people type most.

Median of 5 cold processes each (one unmeasured run first warms the disk cache, not the
interpreter) for `--version`, `--help`, `history list` on a 5,000-run history (filled with
bench_history's generator) and `compare A B` of two stored runs. Prints a table, writes
bench/results/startup_<stamp>.json and exits 1 when a target is missed.

Targets (issue 8): --version and --help < 0.3 s; history list (5,000 runs) < 0.5 s;
cold compare < 1.0 s.
Run: `.venv/bin/python bench/bench_startup.py [--runs N] [--repeat N]`.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]

from bench_history import fill  # noqa: E402
from common import ROOT, machine_info, system_busy_s, table, write_results  # noqa: E402

from perftui.history.store import HistoryStore  # noqa: E402

TARGETS_S = {"--version": 0.3, "--help": 0.3, "history list": 0.5, "compare A B": 1.0}


def cold_runs(argv: list[str], env: dict[str, str], repeat: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + sys) seconds of `repeat` fresh `python -m perftui ARGV` processes,
    after one warm-up. CPU time is what the command costs; wall time adds waiting for a core."""
    times, cpu = [], []
    for i in range(repeat + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "perftui", *argv],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - began
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if i:
            times.append(wall)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return times, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000, help="runs in the history (5000)")
    parser.add_argument("--repeat", type=int, default=5, help="cold processes per command (5)")
    args = parser.parse_args()
    history = Path(tempfile.mkdtemp(prefix="perftui-startup-"))
    try:
        fill(history, args.runs)
        ids = [s["run_id"] for s in HistoryStore(history).list_runs(limit=4)]  # newest first
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PERFTUI_HISTORY_DIR": str(history)}
        commands = {
            "--version": ["--version"],
            "--help": ["--help"],
            "history list": ["history", "list"],
            "compare A B": ["compare", ids[3], ids[0]],
        }
        rows, out = [], {}
        busy0, t0 = system_busy_s(), time.monotonic()
        for name, argv in commands.items():
            times, cpu = cold_runs(argv, env, args.repeat)
            median, cpu_median = statistics.median(times), statistics.median(cpu)
            ok = median < TARGETS_S[name]
            out[name] = {
                "median_s": median,
                "runs_s": times,
                "cpu_median_s": cpu_median,
                "target_s": TARGETS_S[name],
                "ok": ok,
            }
            rows.append(
                [
                    name,
                    f"{median:.3f}",
                    f"{min(times):.3f}",
                    f"{cpu_median:.3f}",
                    TARGETS_S[name],
                    ok,
                ]
            )
        cores = os.cpu_count() or 1
        busy_pct = 100 * (system_busy_s() - busy0) / (time.monotonic() - t0) / cores
    finally:
        shutil.rmtree(history, ignore_errors=True)
    print(f"{args.runs} runs in the history; median of {args.repeat} cold processes each")
    print(table(["command", "median s", "min s", "CPU s (median)", "target s", "met"], rows))
    print(f"machine busy meanwhile: {busy_pct:.0f} % of all cores (this bench included)")
    path = write_results(
        "startup",
        {
            "machine": machine_info(),
            "history_runs": args.runs,
            "repeat": args.repeat,
            "busy_pct": round(busy_pct, 1),
            "commands": out,
        },
    )
    print(f"results: {path.relative_to(ROOT)}")
    return 0 if all(v["ok"] for v in out.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
