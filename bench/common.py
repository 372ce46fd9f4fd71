"""Shared plumbing of the benchmarks: servers, tool runners, output parsers, /proc sampling.

Every benchmark compares perftui with reference tools *in the same session on the same
machine*, so the helpers here run each tool the same way (bounded in time, one at a time, on
127.0.0.1 only) and record what each cost in CPU, since the server and the load generator
share the machine's two cores.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
PERFTUI = os.environ.get("PERFTUI") or str(ROOT / ".venv" / "bin" / "perftui")
LOCUST_VENV = HERE / ".venv-locust"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
LOOPBACK = "127.0.0.1"


def log(msg: str) -> None:
    """Progress goes to stderr so stdout stays the result table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def self_signed(folder: Path) -> Path:
    """A throwaway self-signed ECDSA P-256 certificate for 127.0.0.1 (cert.pem, key.pem in
    `folder`): what ESP32 firmware serving HTTPS usually has. Made with the openssl command."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    for name in ("cert.pem", "key.pem"):
        (folder / name).chmod(0o644)  # nginx's workers run as nobody
    folder.chmod(0o755)
    return folder


def wait_port(host: str, port: int, timeout: float) -> bool:
    """True once something accepts TCP connections on host:port (within `timeout` s)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


# --------------------------------------------------------------------------- /proc sampling


def _stat(pid: int) -> tuple[int, float, int, str] | None:
    """(ppid, cpu seconds, rss bytes, comm) of one process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    f = raw[raw.rindex(")") + 2 :].split()
    # fields after the comm: state(0) ppid(1) ... utime(11) stime(12) ... rss(21)
    return int(f[1]), (int(f[11]) + int(f[12])) / CLK_TCK, int(f[21]) * PAGE, comm


def children(pid: int) -> list[int]:
    """Direct children of `pid` (scans /proc: no psutil needed)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st and st[0] == pid:
                out.append(int(entry))
    return out


def descendants(pid: int) -> list[int]:
    seen, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        seen.extend(kids)
        todo.extend(kids)
    return seen


def proc_tree_cpu_s(pid: int) -> float:
    """CPU seconds used so far by `pid` and its live descendants."""
    total = 0.0
    for p in [pid, *descendants(pid)]:
        st = _stat(p)
        if st:
            total += st[1]
    return total


def system_busy_s() -> float:
    """CPU seconds all cores have spent busy since boot (from /proc/stat)."""
    f = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in f[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


@dataclass
class TreeSampler:
    """Samples CPU time of a process and its descendants every `interval` s in a thread.

    Gives the CPU share of each process of a perftui run (CLI vs engine), which tells the engine
    owner whether a slow figure is CPU-bound.
    """

    root_pid: int
    interval: float = 1.0
    first: dict[int, tuple[float, float, str]] = field(default_factory=dict)
    last: dict[int, tuple[float, float, str]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self) -> None:
        now = time.monotonic()
        for p in [self.root_pid, *descendants(self.root_pid)]:
            st = _stat(p)
            if st is None:
                continue
            label = f"{p} {st[3]}: {cmdline(p)[:80]}"
            self.first.setdefault(p, (now, st[1], label))
            self.last[p] = (now, st[1], label)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> TreeSampler:
        self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        """{process label: average CPU % (100 = one core)} over the sampled span."""
        self._stop.set()
        if self._thread:
            self._thread.join()
        out = {}
        for p, (t1, c1, label) in self.last.items():
            t0, c0, _ = self.first[p]
            if t1 - t0 >= 1.0:
                out[label] = round(100 * (c1 - c0) / (t1 - t0), 1)
        return out


class ChildCpu:
    """CPU seconds of children reaped while in the block (a load tool run as a subprocess)."""

    def __enter__(self) -> ChildCpu:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._c0 = ru.ru_utime + ru.ru_stime
        self._t0 = time.monotonic()
        self.cpu_s = 0.0
        self.wall_s = 0.0
        return self

    def __exit__(self, *_exc: object) -> None:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu_s = ru.ru_utime + ru.ru_stime - self._c0
        self.wall_s = time.monotonic() - self._t0


# --------------------------------------------------------------------------- servers


class ServerProcess:
    """A loopback server in a subprocess that also stops by itself (its own time limit)."""

    name = "server"

    def __init__(self, port: int, max_seconds: float) -> None:
        self.port, self.max_seconds = port, max_seconds
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if not wait_port(LOOPBACK, self.port, 20):
            self.__exit__()
            raise RuntimeError(f"{self.name} did not start on {LOOPBACK}:{self.port}")
        return self

    def cpu_s(self) -> float:
        """CPU seconds the server (all its processes) has used so far."""
        return proc_tree_cpu_s(self.proc.pid) if self.proc else 0.0

    def __exit__(self, *_exc: object) -> None:
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen[Any] | None) -> None:
    """SIGTERM, then SIGKILL after 10 s: only ever the process this harness started."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class DelayServer(ServerProcess):
    """bench/delay_server.py; it stops by itself after `max_seconds`."""

    name = "delay server"

    def __init__(
        self,
        port: int,
        delay_ms: float,
        max_seconds: float,
        workers: int = 2,
        stall_every: float = 0.0,
        stall_ms: float = 0.0,
        tls: Path | None = None,
    ) -> None:
        """`tls`: a directory holding cert.pem and key.pem, to serve https instead."""
        super().__init__(port, max_seconds)
        self.delay_ms, self.workers = delay_ms, workers
        self.stall_every, self.stall_ms = stall_every, stall_ms
        self.tls = tls

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{LOOPBACK}:{self.port}/delay"

    def command(self) -> list[str]:
        return (
            [
                sys.executable,
                str(HERE / "delay_server.py"),
                "--port",
                str(self.port),
                "--delay-ms",
                str(self.delay_ms),
                "--workers",
                str(self.workers),
                "--max-seconds",
                str(self.max_seconds),
            ]
            + (
                ["--stall-every", str(self.stall_every), "--stall-ms", str(self.stall_ms)]
                if self.stall_every
                else []
            )
            + (
                ["--certfile", str(self.tls / "cert.pem"), "--keyfile", str(self.tls / "key.pem")]
                if self.tls
                else []
            )
        )


QUIET = {"max_wait_s": 120.0, "busy_pct": 25.0}  # set from --quiet-wait / --quiet-busy


def wait_for_quiet(max_wait_s: float, busy_pct: float, window_s: float = 2.0) -> float:
    """Wait (up to `max_wait_s`) until the machine is nearly idle before a run.

    The two cores are shared with whatever else runs in this session (other people's tests);
    a figure taken while they burn a core measures them too. Returns the last busy % seen.
    """
    end = time.monotonic() + max_wait_s
    while True:
        b0 = system_busy_s()
        time.sleep(window_s)
        busy = 100 * (system_busy_s() - b0) / window_s
        if busy <= busy_pct or time.monotonic() >= end:
            if busy > busy_pct:
                log(f"machine still {busy:.0f} % busy after {max_wait_s:g} s; measuring anyway")
            return round(busy, 1)


def measure(
    tool: str, clients: int, run: Callable[[], dict[str, Any]], server: Any
) -> dict[str, Any]:
    """One bounded run of one tool, with the server's CPU share over the same span."""
    busy_before = wait_for_quiet(QUIET["max_wait_s"], QUIET["busy_pct"])
    load_before = os.getloadavg()[0]
    cpu0, busy0, t0 = server.cpu_s(), system_busy_s(), time.monotonic()
    res = run()
    wall = time.monotonic() - t0
    server_s, busy_s = server.cpu_s() - cpu0, system_busy_s() - busy0
    res["server_cpu_pct"] = round(100 * server_s / wall, 1)
    # whatever else ran on the two cores meanwhile (other sessions' tests): the noise indicator
    tool_s = res["cpu_pct"] / 100 * wall
    res["other_cpu_pct"] = round(max(0.0, 100 * (busy_s - server_s - tool_s) / wall), 1)
    res.update(tool=tool, clients=clients, busy_before_pct=busy_before)
    res["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]  # before, after
    log(
        f"{tool:8s} c={clients:<3d} rps={res['rps']:.0f} p50={res.get('p50_ms') or 0:.2f} "
        f"p99={res.get('p99_ms') or 0:.2f} ms errors={res.get('errors')} "
        f"cpu={res['cpu_pct']}% server_cpu={res['server_cpu_pct']}% "
        f"other_cpu={res['other_cpu_pct']}%"
    )
    return res


# --------------------------------------------------------------------------- parsers

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"unparsable wrk duration {text!r}")
    return float(m.group(1)) * _UNIT_MS[m.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    """p50/p75/p90/p99 (ms), rps, requests, errors from `wrk --latency` output."""
    res: dict[str, Any] = {}
    for pct, val in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.M):
        res[f"p{pct}_ms"] = _ms(val)
    m = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", out)
    if m:
        res["mean_ms"], res["max_ms"] = _ms(m.group(1)), _ms(m.group(3))
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if m:
        res["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    errs = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errs += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errs += int(m.group(1))
    res["errors"] = errs
    if "rps" not in res or "p50_ms" not in res:
        raise ValueError(f"wrk output not understood:\n{out}")
    return res


def parse_hey(out: str) -> dict[str, Any]:
    """rps and latency percentiles (ms) from hey's default summary."""
    res: dict[str, Any] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    for pct, val in re.findall(r"^\s+(50|90|99)%+ in ([\d.]+) secs", out, re.M):
        res[f"p{pct}_ms"] = float(val) * 1000
    m = re.search(r"Average:\s+([\d.]+) secs", out)
    if m:
        res["mean_ms"] = float(m.group(1)) * 1000
    codes = {c: int(n) for c, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    res["status_counts"] = codes
    res["requests"] = sum(codes.values())
    res["errors"] = sum(n for c, n in codes.items() if not 200 <= int(c) < 400)
    m = re.search(r"Error distribution:\n((?:\s+\[\d+\].*\n?)+)", out)
    if m:
        res["errors"] += sum(int(n) for n in re.findall(r"\[(\d+)\]", m.group(1)))
    if "rps" not in res:
        raise ValueError(f"hey output not understood:\n{out[-2000:]}")
    return res


# --------------------------------------------------------------------------- tool runners


def run_cmd(
    cmd: list[str], timeout: float, **kw: Any
) -> tuple[subprocess.CompletedProcess[str], ChildCpu]:
    """Run one bounded command, capturing output and the CPU it used."""
    with ChildCpu() as cpu:
        cp = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw
        )
    return cp, cpu


def run_wrk(
    url: str, clients: int, duration: int, threads: int = 2, script: Path | None = None
) -> dict[str, Any]:
    """wrk (an https URL too: wrk does not verify); `script` a Lua file (a POST's method, headers
    and body)."""
    cmd = ["wrk", f"-t{threads}", f"-c{clients}", f"-d{duration}s", "--latency", url]
    cmd += ["-s", str(script)] if script else []
    cp, cpu = run_cmd(cmd, timeout=duration + 30)
    res = parse_wrk(cp.stdout)
    res.update(cmd=" ".join(cmd), cpu_pct=round(100 * cpu.cpu_s / cpu.wall_s, 1))
    return res


def run_hey(
    url: str, clients: int, duration: int, extra: list[str] | None = None
) -> dict[str, Any]:
    """hey (an https URL too: hey does not verify); `extra` e.g. `-m POST -H … -D FILE`."""
    cmd = ["hey", "-z", f"{duration}s", "-c", str(clients), *(extra or []), url]
    cp, cpu = run_cmd(cmd, timeout=duration + 60)
    res = parse_hey(cp.stdout)
    res.update(cmd=" ".join(cmd), cpu_pct=round(100 * cpu.cpu_s / cpu.wall_s, 1))
    return res


def run_httpx(url: str, clients: int, duration: int) -> dict[str, Any]:
    """The 'what not to do' row: one shared default httpx.AsyncClient, N tasks."""
    cmd = [sys.executable, str(HERE / "httpx_load.py"), url, str(clients), str(duration)]
    cp, cpu = run_cmd(cmd, timeout=duration + 60)
    if cp.returncode != 0:
        raise RuntimeError(f"httpx_load failed: {cp.stderr[-1000:]}")
    res = json.loads(cp.stdout)
    res.update(cmd=" ".join(cmd[1:]), cpu_pct=round(100 * cpu.cpu_s / cpu.wall_s, 1))
    return res


def perftui_cmd(
    port: int,
    path: str,
    clients: int,
    duration: int,
    history_dir: Path,
    *,
    phase: str = "burst",
    heartbeat_ms: int | None = None,
    extra: list[str] | None = None,
    host: str = LOOPBACK,
) -> list[str]:
    """The headless perftui command line of a one-phase, one-run benchmark (`host` may be a URL
    such as `https://127.0.0.1`)."""
    cmd = [PERFTUI, "run", host, "--port", str(port), "--paths", path, "--runs", "1"]
    if phase == "burst":
        cmd += ["--burst-clients", str(clients), "--burst-duration", str(duration)]
        cmd += ["--long-duration", "0"]
    else:
        cmd += ["--burst-duration", "0", "--long-clients", str(clients)]
        cmd += ["--long-duration", str(duration)]
    cmd += ["--history-dir", str(history_dir), "--probe-path", path]
    cmd += ["--phase-timeout-min-s", "60"]
    if heartbeat_ms:
        cmd += ["--heartbeat-ms", str(heartbeat_ms)]
    return cmd + (extra or [])


def run_perftui(
    port: int,
    path: str,
    clients: int,
    duration: int,
    *,
    host: str = LOOPBACK,
    extra: list[str] | None = None,
    phase: str = "burst",
    keep_report: bool = False,
) -> dict[str, Any]:
    """One perftui phase (burst by default); returns its report's figures plus CPU per process
    (and with `keep_report` the whole phase report, for figures a benchmark reads itself)."""
    with tempfile.TemporaryDirectory(prefix="perftui-bench-hist-") as tmp:
        cmd = perftui_cmd(port, path, clients, duration, Path(tmp), phase=phase, extra=extra,
                          host=host)  # fmt: skip
        with ChildCpu() as cpu:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=tmp,
            )
            sampler = TreeSampler(proc.pid).start()
            try:
                out, err = proc.communicate(timeout=duration + 120)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            per_proc = sampler.stop()
        latest = Path(tmp) / "latest.json"
        if not latest.exists():
            raise RuntimeError(
                f"perftui exit {proc.returncode}, no latest.json\n{err[-2000:]}\n{out[-1000:]}"
            )
        payload = json.loads(latest.read_text())
    rep = payload["raw_runs"][0]["results"][0]["report"]
    return {
        "cmd": " ".join(cmd).replace(tmp, "<tmp>"),
        "exit_code": proc.returncode,
        "p50_ms": rep["p50_ms"],
        "p99_ms": rep["p99_ms"],
        "p95_ms": rep.get("p95_ms"),
        "mean_ms": rep.get("mean_ms"),
        "rps": rep["rps_total"],
        "requests": rep.get("requests_total"),
        "errors": rep.get("err"),
        "elapsed": rep.get("elapsed"),
        "cpu_pct": round(100 * cpu.cpu_s / cpu.wall_s, 1),
        "cpu_pct_per_process": per_proc,
        "stderr_tail": err[-600:],
        **({"report": rep} if keep_report else {}),
    }


def perftui_ready(port: int, path: str) -> tuple[bool, str]:
    """Smoke test: a 2-second perftui run that writes latest.json."""
    if not Path(PERFTUI).exists():
        return False, f"{PERFTUI} does not exist"
    try:
        res = run_perftui(port, path, 2, 2)
    except Exception as exc:  # any failure just means "not ready yet"
        return False, str(exc)[-800:]
    return True, json.dumps({k: res[k] for k in ("p50_ms", "rps", "exit_code")})


# --------------------------------------------------------------------------- reporting


def machine_info() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        m = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
        cpu = m.group(1) if m else ""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "git_commit": commit,
        "wrk": shutil.which("wrk"),
        "hey": shutil.which("hey"),
    }


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}_{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


def median_of(rows: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain, aligned text table (also valid Markdown)."""
    cells = [[str(c) for c in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def checks_table(checks: list[dict[str, Any]]) -> str:
    """The targets of a benchmark, each `{"check", "value", "pass"}`, as a table."""
    return table(
        ["check", "measured", "verdict"],
        [[c["check"], c["value"], "PASS" if c["pass"] else "FAIL"] for c in checks],
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.2f}"
    return str(value)


def add_run_options(ap: argparse.ArgumentParser) -> None:
    """The options fidelity and ceiling share: run length, repeats, which tools."""
    ap.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool; medians are compared")
    ap.add_argument("--no-perftui", action="store_true", help="reference tools only")
    ap.add_argument("--no-httpx", action="store_true", help="skip the plain-httpx row")
    add_quiet_options(ap)


def add_quiet_options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=QUIET["max_wait_s"],
        help="seconds to wait for an idle machine before each run (default %(default)s)",
    )
    ap.add_argument(
        "--quiet-busy",
        type=float,
        default=QUIET["busy_pct"],
        help="'idle' means at most this %% of CPU busy, 200 = both cores (default %(default)s)",
    )


def apply_quiet_options(args: argparse.Namespace) -> None:
    QUIET.update(max_wait_s=args.quiet_wait, busy_pct=args.quiet_busy)


@contextlib.contextmanager
def section(title: str) -> Iterator[None]:
    log(f"{title} …")
    t0 = time.monotonic()
    yield
    log(f"{title} done in {time.monotonic() - t0:.1f} s")
