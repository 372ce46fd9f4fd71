"""Start-up: how long a fresh `perftui` process takes for the commands people type most.

Median of 5 cold processes each (one unmeasured round first warms the disk cache, not the
interpreter) for `--version`, `--help`, `history list` on a 5,000-run history (filled with
bench_history's generator) and `compare A B` of two stored runs, next to `python -c pass` (the
interpreter's own start, the floor no command can go below). The commands take turns round by
round, so a busy minute hits all of them alike; `--baseline DIR` adds `--version` and `--help`
of another tree (`git archive REV perftui | tar -x -C DIR`) to the same rounds, the ratio that
says whether start-up regressed. Prints a table, writes bench/results/startup_<stamp>.json and
exits 1 when a target is missed.

Targets (issue 8): --version and --help < 0.3 s; history list (5,000 runs) < 0.5 s;
cold compare < 1.0 s.
Run: `nice -n -15 .venv/bin/python bench/bench_startup.py [--runs N] [--repeat N] [--baseline DIR]`.
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


def cold_run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + sys) seconds of one fresh `python ARGV` process. CPU time is what
    the command costs; wall time adds waiting for a core. It runs in the tree it times
    (`python -m` puts the working directory first on sys.path, before PYTHONPATH)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, *argv],
        cwd=env["PYTHONPATH"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def rounds(
    commands: dict[str, tuple[list[str], dict[str, str]]], repeat: int
) -> dict[str, tuple[list[float], list[float]]]:
    """`repeat` measured rounds (after one warm-up) in which every command runs once, in turn."""
    out: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in commands}
    for i in range(repeat + 1):
        for name, (argv, env) in commands.items():
            wall, cpu = cold_run(argv, env)
            if i:
                out[name][0].append(wall)
                out[name][1].append(cpu)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000, help="runs in the history (5000)")
    parser.add_argument("--repeat", type=int, default=5, help="cold processes per command (5)")
    parser.add_argument(
        "--baseline", type=Path, help="a tree holding an older perftui/ to time alongside"
    )
    parser.add_argument(
        "--skip", default="", help="comma list of commands not to time (e.g. 'compare A B')"
    )
    args = parser.parse_args()
    history = Path(tempfile.mkdtemp(prefix="perftui-startup-"))
    try:
        fill(history, args.runs)
        ids = [s["run_id"] for s in HistoryStore(history).list_runs(limit=4)]  # newest first
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PERFTUI_HISTORY_DIR": str(history)}
        commands = {
            "python -c pass": (["-c", "pass"], env),
            "--version": (["-m", "perftui", "--version"], env),
            "--help": (["-m", "perftui", "--help"], env),
            "history list": (["-m", "perftui", "history", "list"], env),
            "compare A B": (["-m", "perftui", "compare", ids[3], ids[0]], env),
        }
        for name in filter(None, (x.strip() for x in args.skip.split(","))):
            commands.pop(name, None)
        if args.baseline:
            old = {**env, "PYTHONPATH": str(args.baseline.resolve())}
            commands["--version (baseline)"] = (["-m", "perftui", "--version"], old)
            commands["--help (baseline)"] = (["-m", "perftui", "--help"], old)
        load0 = os.getloadavg()
        busy0, t0 = system_busy_s(), time.monotonic()
        measured = rounds(commands, args.repeat)
        cores = os.cpu_count() or 1
        busy_pct = 100 * (system_busy_s() - busy0) / (time.monotonic() - t0) / cores
        load1 = os.getloadavg()
    finally:
        shutil.rmtree(history, ignore_errors=True)
    rows, out = [], {}
    floor = statistics.median(measured["python -c pass"][0])
    for name, (times, cpu) in measured.items():
        median, cpu_median = statistics.median(times), statistics.median(cpu)
        target = TARGETS_S.get(name)
        ok = None if target is None else median < target
        out[name] = {
            "median_s": median,
            "runs_s": times,
            "cpu_median_s": cpu_median,
            "cpu_s": cpu,
            "over_interpreter_s": median - floor,
            "target_s": target,
            "ok": ok,
        }
        rows.append(
            [
                name,
                f"{median:.3f}",
                f"{min(times):.3f}",
                f"{cpu_median:.3f}",
                f"{median - floor:.3f}",
                "-" if target is None else target,
                "-" if ok is None else ok,
            ]
        )
    print(f"{args.runs} runs in the history; median of {args.repeat} cold processes each")
    print(
        table(
            ["command", "median s", "min s", "CPU s (median)", "over python s", "target s", "met"],
            rows,
        )
    )
    print(f"machine busy meanwhile: {busy_pct:.0f} % of all cores (this bench included)")
    print(f"load average (1, 5, 15 min) before {load0}, after {load1}")
    path = write_results(
        "startup",
        {
            "machine": machine_info(),
            "history_runs": args.runs,
            "repeat": args.repeat,
            "baseline": str(args.baseline) if args.baseline else None,
            "busy_pct": round(busy_pct, 1),
            "loadavg_before": load0,
            "loadavg_after": load1,
            "niceness": os.nice(0),
            "commands": out,
        },
    )
    print(f"results: {path.relative_to(ROOT)}")
    return 0 if all(v["ok"] is not False for v in out.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
