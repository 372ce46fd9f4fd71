"""Soak: does perftui's engine stay flat in memory and file descriptors over a long phase?

`--detached` (issue 11): one detached run (`perftui.runs.host`, the TUI's live settings: heap poll
every 2 s, heartbeats at 5 Hz, per-path percentiles every second) against the simulated device
for `--minutes`, watched by `perftui attach` (the TUI, in a pty) that is killed and re-attached
every `--reattach-min` minutes. Targets: engine RSS slope (least squares after the warm-up)
<= 5 MB/hour, the same for the run's host process and for each viewer, heartbeat gaps seen by a
reader of the events file <= 2 × 0.2 s, and a viewer attaching at the end gets the run from
minute <= 1. Results go to bench/results/soak_detached_<stamp>.json.

    PYTHONPATH=$PWD .venv/bin/python bench/soak.py --detached --minutes 60

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
import contextlib
import fcntl
import itertools
import json
import os
import pty
import re
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
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
    checks_table,
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


def _rss(pid: int | None) -> int | None:
    st = _stat(pid) if pid else None
    return st[2] if st else None


def _slope_mb_h(points: list[tuple[float, int]]) -> float | None:
    """Least-squares RSS slope in MB/hour over (t seconds, rss bytes) points."""
    if len(points) < 3:
        return None
    fit = statistics.linear_regression([t for t, _ in points], [r for _, r in points])
    return fit.slope * 3600 / MB


class PtyViewer:
    """`perftui attach RUN` (the TUI) in a pseudo-terminal, its output drained and dropped."""

    def __init__(self, history: Path, run_id: str) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "perftui", "attach", run_id, "--history-dir", str(history)],
            stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
            env={**os.environ, "TERM": "xterm-256color"},
            # as from a login shell: under `nohup` the soak itself ignores SIGHUP, and a child
            # would inherit that and outlive its "closed terminal"
            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
        )  # fmt: skip
        os.close(slave)
        self.master = master
        self.started = time.monotonic()
        self.samples: list[tuple[float, int]] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self.master, 65536):
                pass

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGHUP)  # the terminal went away
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.master)


def soak_detached(args: argparse.Namespace) -> int:
    from perftui.config import RunConfig
    from perftui.engine import lifecycle, stream
    from perftui.engine.events import Heartbeat
    from perftui.profiles import resolve_profiles
    from perftui.runs.host import launch

    duration = args.minutes * 60
    warmup = min(300.0, duration * 0.3)
    history = Path(tempfile.mkdtemp(prefix="perftui-bench-soak-detached-"))
    config = RunConfig(
        host=LOOPBACK, port=0, profiles=resolve_profiles("mixed"), runs=1, history_dir=history,
        phase_overrides={"burst": {"duration": 0}, "long": {"duration": duration, "clients": 8}},
        snapshot_interval_s=0.2, telemetry_interval_s=2.0, path_percentiles_s=1.0,
        phase_timeout_min_s=duration + 600,
    )  # fmt: skip
    launched = launch(config, use_sim=True)
    log(f"detached soak {args.minutes:g} min: run {launched.run_id} (pid {launched.pid})")
    t0 = time.monotonic()
    follower = lifecycle.Follower(history, launched.run_id)
    arrivals: list[float] = []
    first_elapsed: list[float] = []

    def read() -> None:
        while follower.finished is None:
            batch = follower.read()
            now = time.monotonic()
            for event in batch:
                if isinstance(event, Heartbeat):
                    arrivals.append(now - t0)
                    if not first_elapsed:
                        first_elapsed.append(event.elapsed)
            time.sleep(0.02 if batch else 0.05)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    status = None
    while status is None or status.get("engine_pid") is None:
        status = lifecycle.read_status(history, launched.run_id)
        time.sleep(0.1)
    engine = status["engine_pid"]
    samples: list[dict[str, Any]] = []
    events_file = stream.events_path(history, launched.run_id)
    viewers = [PtyViewer(history, launched.run_id)]
    late_view: dict[str, Any] = {}
    next_sample, next_switch = t0 + 1.0, t0 + args.reattach_min * 60
    while follower.finished is None and time.monotonic() < t0 + duration + 300:
        time.sleep(max(0.0, min(next_sample, next_switch) - time.monotonic()))
        now = time.monotonic()
        if now >= next_switch and now < t0 + duration - 30:
            viewers[-1].close()
            log(f"t={now - t0:.0f}s viewer detached; re-attaching")
            viewers.append(PtyViewer(history, launched.run_id))
            next_switch += args.reattach_min * 60
        if now >= next_sample:
            next_sample += args.sample_s
            viewer = viewers[-1]
            row = {"t": round(now - t0, 1), "engine_rss": _rss(engine),
                   "host_rss": _rss(launched.pid), "viewer": len(viewers) - 1,
                   "viewer_rss": _rss(viewer.proc.pid), "engine_fds": fd_count(engine),
                   "events_bytes": events_file.stat().st_size}  # fmt: skip
            samples.append(row)
            # while the run goes on: a viewer that saw it end opens Results (a one-off step)
            live = follower.finished is None
            if row["viewer_rss"] and live and now - viewer.started >= min(120.0, warmup):
                viewer.samples.append((now - t0, row["viewer_rss"]))
            if len(samples) % 6 == 1:
                mb = {k: (row[k] or 0) / MB for k in ("engine_rss", "host_rss", "viewer_rss")}
                log(f"t={row['t']:.0f}s engine {mb['engine_rss']:.1f} MB, host "
                    f"{mb['host_rss']:.1f} MB, viewer {mb['viewer_rss']:.1f} MB, "
                    f"events file {row['events_bytes'] / 1024:.0f} KiB")  # fmt: skip
            if not late_view and now >= t0 + duration - 20:
                tail = stream.EventTail(stream.events_path(history, launched.run_id))
                beats = [e for e in tail.read() if isinstance(e, Heartbeat)]
                tail.close()
                late_view = {"at_s": round(now - t0, 1), "heartbeats": len(beats),
                             "first_elapsed_s": beats[0].elapsed if beats else None}  # fmt: skip
    viewers[-1].close()
    reader.join(30)
    final = follower.finished
    follower.close()

    def fit(key: str) -> float | None:
        return _slope_mb_h([(s["t"], s[key]) for s in samples if s["t"] >= warmup and s[key]])

    engine_slope, host_slope = fit("engine_rss"), fit("host_rss")
    viewer_slopes = [_slope_mb_h(v.samples) for v in viewers if len(v.samples) >= 3]
    viewer_slope = max((v for v in viewer_slopes if v is not None), default=None)
    in_phase = [t for t in arrivals if t >= warmup / 10]
    gaps = [b - a for a, b in itertools.pairwise(in_phase)]
    late_first = late_view.get("first_elapsed_s")
    checks = [
        {"check": "engine RSS slope after warm-up <= 5 MB/hour", "value": engine_slope,
         "pass": engine_slope is not None and engine_slope <= 5},
        {"check": "host RSS slope after warm-up <= 5 MB/hour", "value": host_slope,
         "pass": host_slope is not None and host_slope <= 5},
        {"check": "viewer RSS slope (worst viewer) <= 5 MB/hour", "value": viewer_slope,
         "pass": viewer_slope is not None and viewer_slope <= 5},
        {"check": "max heartbeat gap (events file reader) <= 2 × 0.2 s",
         "value": max(gaps) if gaps else None, "pass": bool(gaps) and max(gaps) <= 0.4},
        {"check": "a viewer attaching at the end starts at minute <= 1",
         "value": late_first, "pass": late_first is not None and late_first <= 60},
        {"check": "the run finished", "value": final and final.status,
         "pass": final is not None and final.status == "finished"},
    ]  # fmt: skip
    every = f"viewer re-attached every {args.reattach_min:g} min"
    print(f"\nDetached soak, {args.minutes:g} min, {every}:\n")
    rows = [[c["check"], c["value"], "PASS" if c["pass"] else "FAIL"] for c in checks]
    print(table(["check", "measured", "verdict"], rows))
    res_path = write_results(
        "soak_detached",
        {"machine": machine_info(), "args": vars(args), "run_id": launched.run_id,
         "history": str(history), "warmup_s": warmup, "samples": samples,
         "viewer_slopes_mb_h": viewer_slopes, "late_view": late_view,
         "heartbeats_read": len(arrivals), "gap_max_s": max(gaps) if gaps else None,
         "gap_mean_s": sum(gaps) / len(gaps) if gaps else None,
         "final": final and {"status": final.status, "exit_code": final.exit_code},
         "checks": checks},
    )  # fmt: skip
    print(f"\nraw results: {res_path}")
    return 0 if all(c["pass"] for c in checks) else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--detached", action="store_true", help="detached run + re-attached viewer")
    ap.add_argument("--reattach-min", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--target", choices=["nginx", "sim"], default="nginx")
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--heartbeat-ms", type=int, default=1000)
    add_quiet_options(ap)
    args = ap.parse_args(argv)
    if args.detached:
        return soak_detached(args)

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
    print(checks_table(checks))
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
