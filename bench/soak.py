"""Soak: does perftui's engine stay flat in memory and file descriptors over a long phase?

One perftui "long" phase at the ceiling (32 clients against nginx's 1 KB file, or against
`perftui sim`) for `--minutes` (default 10). Every `--sample-s` (10 s) it reads the engine
process's RSS and open fd count from /proc (the engine is the child of the `perftui run` CLI
process), and it timestamps every heartbeat line perftui prints on stderr (with `--json`) with
`--heartbeat-ms 1000`. Targets: RSS growth from minute 1 to minute N < 10 MB, fd count flat
(max - min after minute 1 <= 4), max gap between heartbeat lines <= 2 × the period. Raw
samples go to bench/results/soak_<stamp>.json.

    .venv/bin/python bench/soak.py                    # 10 minutes against nginx
    .venv/bin/python bench/soak.py --minutes 2 --target sim
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import (
    LOOPBACK,
    PERFTUI,
    ServerProcess,
    _stat,
    add_quiet_options,
    children,
    cmdline,
    fd_count,
    free_port,
    log,
    machine_info,
    perftui_cmd,
    system_busy_s,
    table,
    wait_for_quiet,
    write_results,
)
from nginx_run import FILE_NAME, Nginx

MB = 1024 * 1024
HEARTBEAT = re.compile(r"\sreq=\d+ ok=\d+ err=\d+")
PHASE_START = re.compile(r"\[\d+/\d+\] .* (burst|long): \d+ clients")


class Sim(ServerProcess):
    """`perftui sim` on loopback as the target, bounded by its own --max-lifetime-s."""

    name = "perftui sim"

    def command(self) -> list[str]:
        cmd = [PERFTUI, "sim", "--host", LOOPBACK, "--port", str(self.port)]
        return [*cmd, "--max-lifetime-s", str(int(self.max_seconds))]


def find_engine(cli_pid: int) -> int | None:
    """The engine process: the CLI's child that is not multiprocessing's resource tracker."""
    kids = [p for p in children(cli_pid) if "resource_tracker" not in cmdline(p)]
    if not kids:
        return None
    spawned = [p for p in kids if "spawn_main" in cmdline(p)]
    pool = spawned or kids
    return max(pool, key=lambda p: (_stat(p) or (0, 0.0, 0, ""))[2])


def _read_stderr(stream: Any, lines: list[tuple[float, str]]) -> None:
    for line in stream:
        lines.append((time.monotonic(), line.rstrip("\n")))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--target", choices=["nginx", "sim"], default="nginx")
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--heartbeat-ms", type=int, default=1000)
    add_quiet_options(ap)
    args = ap.parse_args(argv)

    duration = int(args.minutes * 60)
    budget = int(duration + 240 + args.quiet_wait)
    port = free_port()
    server: Any = Nginx(port, budget) if args.target == "nginx" else Sim(port, budget)
    path = f"/{FILE_NAME}" if args.target == "nginx" else "/file"
    samples: list[dict[str, Any]] = []
    lines: list[tuple[float, str]] = []
    with server, tempfile.TemporaryDirectory(prefix="perftui-bench-soak-") as tmp:
        cmd = perftui_cmd(
            port, path, args.clients, duration, Path(tmp), phase="long",
            heartbeat_ms=args.heartbeat_ms, extra=["--json"],  # --json: heartbeats on stderr
        )  # fmt: skip
        log(f"soak {args.minutes:g} min against {args.target}: {' '.join(cmd)}")
        busy_before = wait_for_quiet(args.quiet_wait, args.quiet_busy)
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=tmp, bufsize=1,
        )  # fmt: skip
        reader = threading.Thread(target=_read_stderr, args=(proc.stderr, lines), daemon=True)
        reader.start()
        engine: int | None = None
        next_sample = t0 + 1.0
        hard_end = t0 + duration + 180
        while proc.poll() is None and time.monotonic() < hard_end:
            time.sleep(max(0.0, next_sample - time.monotonic()))
            next_sample += args.sample_s
            if engine is None or _stat(engine) is None:
                engine = find_engine(proc.pid)
            if engine is None:
                continue
            st, fds = _stat(engine), fd_count(engine)
            if st is None or fds is None:
                continue
            samples.append(
                {"t": round(time.monotonic() - t0, 2), "pid": engine, "rss": st[2], "fds": fds,
                 "cpu_s": st[1], "cli_rss": (_stat(proc.pid) or (0, 0.0, 0, ""))[2],
                 "server_cpu_s": server.cpu_s(), "machine_busy_s": system_busy_s()}
            )  # fmt: skip
            if len(samples) % 6 == 1:
                log(f"t={samples[-1]['t']:.0f}s rss={st[2] / MB:.1f} MB fds={fds}")
        if proc.poll() is None:
            log("perftui overran the soak budget; terminating it")
            proc.terminate()
        out = proc.communicate(timeout=60)[0]
        reader.join(timeout=5)
        latest = Path(tmp) / "latest.json"
        report = (
            json.loads(latest.read_text())["raw_runs"][0]["results"][0]["report"]
            if latest.exists()
            else None
        )

    # --- analysis
    start = next((t for t, s in lines if PHASE_START.search(s)), t0) - t0
    beats = [t - t0 for t, s in lines if HEARTBEAT.search(s)]
    gaps = [b - a for a, b in zip([start, *beats], beats, strict=False)]
    period = args.heartbeat_ms / 1000
    in_phase = [s for s in samples if s["t"] <= start + duration]
    after_min1 = [s for s in in_phase if s["t"] >= start + 60] or in_phase
    first, last = (after_min1[0], in_phase[-1]) if in_phase else (None, None)
    growth = (last["rss"] - first["rss"]) / MB if first and last else None
    fds_after = [s["fds"] for s in after_min1]
    span = last["t"] - first["t"] if first and last else 0.0

    def pct(key: str) -> float | None:
        return 100 * (last[key] - first[key]) / span if first and last and span > 0 else None

    checks = [
        {"check": "RSS growth minute 1 → end < 10 MB", "value": growth,
         "pass": growth is not None and growth < 10},
        {"check": "fd count flat (max - min <= 4)",
         "value": f"{min(fds_after)}..{max(fds_after)}" if fds_after else None,
         "pass": bool(fds_after) and max(fds_after) - min(fds_after) <= 4},
        {"check": f"max heartbeat gap <= 2 × {period:g} s",
         "value": max(gaps) if gaps else None,
         "pass": bool(gaps) and max(gaps) <= 2 * period},
    ]  # fmt: skip
    print(f"\nSoak: perftui {args.clients} clients against {args.target}, {args.minutes:g} min:\n")
    facts = [
        ["exit code", proc.returncode],
        ["requests", report and report.get("requests_total")],
        ["rps", report and report.get("rps_total")],
        ["errors", report and report.get("err")],
        ["p50 / p99 ms", report and f"{report.get('p50_ms')} / {report.get('p99_ms')}"],
        ["engine RSS at minute 1 (MB)", first and first["rss"] / MB],
        ["engine RSS at end (MB)", last and last["rss"] / MB],
        ["engine RSS max (MB)", max((s["rss"] for s in in_phase), default=0) / MB],
        ["engine CPU % (minute 1 → end)", pct("cpu_s")],
        ["server CPU % (minute 1 → end)", pct("server_cpu_s")],
        ["whole machine busy % (of 200)", pct("machine_busy_s")],
        ["machine busy % just before", busy_before],
        ["heartbeat lines", len(beats)],
        ["heartbeat gap mean / max (s)", gaps and f"{sum(gaps) / len(gaps):.3f} / {max(gaps):.3f}"],
    ]
    print(table(["figure", "value"], facts))
    print("\nTargets:\n")
    print(
        table(
            ["check", "measured", "verdict"],
            [[c["check"], c["value"], "PASS" if c["pass"] else "FAIL"] for c in checks],
        )
    )
    res_path = write_results(
        "soak",
        {"machine": machine_info(), "args": vars(args), "cmd": " ".join(cmd).replace(tmp, "<tmp>"),
         "exit_code": proc.returncode, "report": report, "samples": samples,
         "heartbeat_times": beats, "phase_start": start, "checks": checks,
         "stdout_tail": out[-1500:], "stderr_tail": [s for _, s in lines[-10:]]},
    )  # fmt: skip
    print(f"\nraw results: {res_path}")
    return 0 if all(c["pass"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
