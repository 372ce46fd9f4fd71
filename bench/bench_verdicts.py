"""Verdicts that survive noise (issue 3, "Must show"): A/A, A/B and leak, with the real CLI.

Every run is a `perftui run` process against the simulated device in its own process
(`SimProcess`, loopback, `max_lifetime_s` so it stops by itself), in a temp history dir:

- A/A: N pairs of runs of the unchanged device, each pair compared with
  `perftui compare A B --format json --fail-on-regression`; a pair "regresses" when any row
  (any metric, key or path) is REGRESSION. Target: at least 9 of 10 clean (≤ 10 % false
  positives). Done for each `--runs` value asked (R=1: the distribution test decides latency;
  R=4: Mann-Whitney on the per-run values).
- A/B: the reference device, then one slowed by `--slowdown` (1.3 = 30 %), compared; a try is
  caught when the whole-phase p95 row is REGRESSION.
- Leak: a device losing `--leak-bytes` of internal heap per request (a fresh device per try,
  since the simulated heap bottoms out at 0); caught when `perftui run` exits 1 with an
  "internal_free drop" reason.

Run: `.venv/bin/python bench/bench_verdicts.py` (about 7 minutes on 2 cores); the table goes to
stdout, progress to stderr, the full result to `bench/results/verdicts_<stamp>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

from perftui.sim.device import SimOptions, SimProcess  # noqa: E402

HOST = "127.0.0.1"
PROFILE = "python_light"
KEY = f"{PROFILE}:burst"
SIM_LIFETIME_S = 900.0  # every simulated device stops by itself after this long
RUN_TIMEOUT_S = 300.0
LEAK_REASON = "internal_free drop"


def log(msg: str) -> None:
    """Progress to stderr; stdout keeps the table."""
    print(f"[verdicts {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages (the machine is shared)."""
    return [round(x, 2) for x in os.getloadavg()]


def perftui(*argv: str) -> subprocess.CompletedProcess[str]:
    """One perftui CLI process, bounded in time, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "perftui", *argv],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def sim(**options: Any) -> SimProcess:
    """A simulated device for a free loopback port, in its own process (start it with `with`)."""
    return SimProcess(SimOptions(max_lifetime_s=SIM_LIFETIME_S, **options), host=HOST, port=0)


@dataclass
class Bench:
    """Settings shared by every run, and the temp history dir they write to."""

    history: Path
    burst_s: float

    def run(self, port: int, runs: int, tag: str) -> subprocess.CompletedProcess[str]:
        """`perftui run` of the profile's burst phase only; the run is stored under `tag`."""
        return perftui(
            "run",
            HOST,
            "--port",
            str(port),
            "--profiles",
            PROFILE,
            "--runs",
            str(runs),
            "--burst-duration",
            f"{self.burst_s:g}",
            "--long-duration",
            "0",
            "--between-runs-sleep-ms",
            "0",
            "--history-dir",
            str(self.history),
            "--tag",
            tag,
        )

    def compare(self, a: str, b: str) -> tuple[int, dict[str, Any]]:
        """(exit code, JSON report) of `perftui compare A B --fail-on-regression`."""
        done = perftui(
            "compare",
            a,
            b,
            "--format",
            "json",
            "--fail-on-regression",
            "--history-dir",
            str(self.history),
        )
        if done.returncode not in (0, 1):
            raise RuntimeError(f"compare {a} {b}: exit {done.returncode}: {done.stderr.strip()}")
        return done.returncode, json.loads(done.stdout)


def ran(done: subprocess.CompletedProcess[str], tag: str) -> None:
    """Fail loudly when a run that should pass did not."""
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"run {tag}: exit {done.returncode}: {' | '.join(tail)}")


def p95_row(report: dict[str, Any]) -> dict[str, Any]:
    """The whole-phase p95 row of a comparison."""
    return next(
        r
        for r in report["rows"]
        if r["key"] == KEY and r["path"] is None and r["metric"] == "p95_ms"
    )


def summary(report: dict[str, Any], code: int) -> dict[str, Any]:
    """What one comparison says: the p95 row, every regressing row, and the exit code."""
    row = p95_row(report)
    return {
        "exit_code": code,
        "verdict": report["verdict"],
        "p95_a_ms": row["a"],
        "p95_b_ms": row["b"],
        "p95_change_pct": row["change"],
        "p95_verdict": row["verdict"],
        "p95_test": row["test"],
        "p95_p_value": row["p_value"],
        "regressions": [
            {k: r[k] for k in ("key", "path", "metric", "change", "test", "p_value")}
            for r in report["rows"]
            if r["verdict"] == "REGRESSION"
        ],
    }


@dataclass
class Scenario:
    """One line of the table and its tries."""

    name: str
    runs: int
    tries: list[dict[str, Any]] = field(default_factory=list)
    caught: int = 0
    target: str = ""
    load_before: list[float] = field(default_factory=load)
    load_after: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def finished(self, began: float) -> Scenario:
        """Record the time taken since `began` (monotonic) and the load now."""
        self.seconds = time.monotonic() - began
        self.load_after = load()
        return self

    def rate(self) -> float:
        return self.caught / len(self.tries) if self.tries else 0.0

    def deciding(self) -> str:
        """Which test decided the p95 row (A/A, A/B), or the gate (leak)."""
        tests = Counter(t.get("p95_test", t.get("decided_by", "?")) for t in self.tries)
        return ", ".join(f"{name} ×{n}" for name, n in tests.most_common())

    def regressing(self) -> str:
        """Every REGRESSION row over the tries, as `metric[ path]: test ×n`."""
        rows = Counter(
            f"{r['metric']}{' ' + r['path'] if r['path'] else ''}: {r['test']}"
            for t in self.tries
            for r in t.get("regressions", [])
        )
        return ", ".join(f"{name} ×{n}" for name, n in rows.most_common()) or "none"

    def effect(self) -> str:
        """p95 change, min / median / max over the tries; or the heap drops of the leak."""
        changes = [t["p95_change_pct"] for t in self.tries if t.get("p95_change_pct") is not None]
        if changes:
            mid = statistics.median(changes)
            return f"p95 {min(changes):+.1f} / {mid:+.1f} / {max(changes):+.1f} %"
        drops = sorted({t["heap_drop_b"] for t in self.tries if t.get("heap_drop_b")})
        return "heap drop " + ", ".join(f"{d} B" for d in drops) if drops else "–"


def aa(bench: Bench, port: int, runs: int, pairs: int) -> Scenario:
    """`pairs` comparisons of two runs of the same device; caught = any REGRESSION row."""
    sc = Scenario(f"A/A R={runs}", runs, target=f"≤ 10 % regressions ({pairs} pairs)")
    began = time.monotonic()
    for k in range(pairs):
        a, b = f"aa_r{runs}_{2 * k:02d}", f"aa_r{runs}_{2 * k + 1:02d}"
        for tag in (a, b):
            ran(bench.run(port, runs, tag), tag)
        code, report = bench.compare(a, b)
        s = summary(report, code)
        regressed = bool(s["regressions"])
        if regressed != (code == 1):
            raise RuntimeError(f"compare {a} {b}: exit {code} but regressions {s['regressions']}")
        sc.caught += regressed
        sc.tries.append(s)
        log(
            f"{sc.name} pair {k + 1}/{pairs}: p95 {s['p95_change_pct']:+.1f} % "
            f"({s['p95_test']}), verdict {s['verdict']}, exit {code}"
        )
    return sc.finished(began)


def ab(bench: Bench, ports: tuple[int, int], runs: int, tries: int, slowdown: float) -> Scenario:
    """`tries` comparisons of the reference device (A) with the slowed one (B), interleaved."""
    sc = Scenario(f"A/B ×{slowdown:g} R={runs}", runs, target=f"p95 REGRESSION in {tries}/{tries}")
    began = time.monotonic()
    for k in range(tries):
        a, b = f"ab_r{runs}_a{k:02d}", f"ab_r{runs}_b{k:02d}"
        ran(bench.run(ports[0], runs, a), a)
        ran(bench.run(ports[1], runs, b), b)
        code, report = bench.compare(a, b)
        s = summary(report, code)
        sc.caught += s["p95_verdict"] == "REGRESSION"
        sc.tries.append(s)
        log(
            f"{sc.name} try {k + 1}/{tries}: p95 {s['p95_a_ms']:.2f} → {s['p95_b_ms']:.2f} ms "
            f"({s['p95_change_pct']:+.1f} %), {s['p95_verdict']} by {s['p95_test']} "
            f"p={s['p95_p_value']}"
        )
    return sc.finished(began)


def leak(bench: Bench, tries: int, leak_bytes: int) -> Scenario:
    """`tries` runs, each against a fresh leaking device; caught = exit 1 with the heap reason."""
    sc = Scenario(f"leak {leak_bytes} B/req R=1", 1, target=f"gate fails in {tries}/{tries}")
    began = time.monotonic()
    for k in range(tries):
        tag = f"leak_{k:02d}"
        with sim(leak_bytes=leak_bytes) as device:
            done = bench.run(device.port, 1, tag)
        lines = [ln.strip() for ln in (done.stdout + done.stderr).splitlines()]
        reasons = [ln for ln in lines if LEAK_REASON in ln]
        caught = done.returncode == 1 and bool(reasons)
        sc.caught += caught
        drop = re.search(rf"{LEAK_REASON} (\d+) ", reasons[0]) if reasons else None
        sc.tries.append(
            {
                "exit_code": done.returncode,
                "reason": reasons[:1],
                "heap_drop_b": int(drop.group(1)) if drop else None,
                "decided_by": "gate max_internal_free_drop",
            }
        )
        log(
            f"{sc.name} try {k + 1}/{tries}: exit {done.returncode}, "
            f"{reasons[0] if reasons else 'no heap reason'}"
        )
    return sc.finished(began)


def table(scenarios: list[Scenario]) -> str:
    """The result table, Markdown."""
    head = [
        "scenario",
        "tries",
        "regressions/catches",
        "rate",
        "effect (min / median / max)",
        "deciding test",
        "REGRESSION rows",
        "target",
        "load 1m before → after",
        "s",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for sc in scenarios:
        cells = [
            sc.name,
            len(sc.tries),
            sc.caught,
            f"{sc.rate():.0%}",
            sc.effect(),
            sc.deciding(),
            sc.regressing(),
            sc.target,
            f"{sc.load_before[0]} → {sc.load_after[0]}",
            f"{sc.seconds:.0f}",
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="1,4", help="comma list of runs per side for A/A and A/B")
    ap.add_argument("--aa-pairs", type=int, default=10)
    ap.add_argument("--ab-tries", type=int, default=5)
    ap.add_argument("--leak-tries", type=int, default=3)
    ap.add_argument("--slowdown", type=float, default=1.3)
    ap.add_argument("--leak-bytes", type=int, default=200)
    ap.add_argument("--burst-duration", type=float, default=2.0)
    ap.add_argument("--keep", type=Path, help="use and keep this history dir instead of a temp one")
    args = ap.parse_args()
    runs_list = [int(x) for x in args.runs.split(",") if x]

    history = args.keep or Path(tempfile.mkdtemp(prefix="perftui-verdicts-"))
    history.mkdir(parents=True, exist_ok=True)
    bench = Bench(history, args.burst_duration)
    started = datetime.now(UTC)
    load_start = load()
    log(f"history {history}; load {load_start}")
    scenarios: list[Scenario] = []
    try:
        with sim() as ref, sim(slowdown=args.slowdown) as slow:
            for runs in runs_list:
                scenarios.append(aa(bench, ref.port, runs, args.aa_pairs))
                scenarios.append(
                    ab(bench, (ref.port, slow.port), runs, args.ab_tries, args.slowdown)
                )
        scenarios.append(leak(bench, args.leak_tries, args.leak_bytes))
    finally:
        if args.keep is None:
            shutil.rmtree(history, ignore_errors=True)

    text = table(scenarios)
    print(text)
    result = {
        "benchmark": "verdicts",
        "started_utc": started.isoformat(timespec="seconds"),
        "seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "settings": vars(args) | {"keep": str(args.keep) if args.keep else None},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_start": load_start,
            "load_end": load(),
        },
        "table": text,
        "scenarios": [
            {
                "name": sc.name,
                "runs_per_side": sc.runs,
                "tries": len(sc.tries),
                "caught": sc.caught,
                "rate": sc.rate(),
                "target": sc.target,
                "deciding": sc.deciding(),
                "regressing": sc.regressing(),
                "effect": sc.effect(),
                "load_before": sc.load_before,
                "load_after": sc.load_after,
                "seconds": round(sc.seconds, 1),
                "details": sc.tries,
            }
            for sc in scenarios
        ],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"verdicts_{started:%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
