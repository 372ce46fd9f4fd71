"""Build realistic run records (the engine's contract) with chosen per-run values, for tests and
the history benchmark. Latencies come from a seeded log-normal distribution scaled so that each
run's p95 is exactly the value asked for, and the HDR histogram holds those same samples."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from perftui.analysis.aggregate import aggregate
from perftui.engine.record import fingerprint

PROFILE_PATHS = {
    "c_static_only": ["/file", "/static/large.txt"],
    "python_light": ["/hello", "/api/ping", "/deps", "/query-typed?q=abc&page=2"],
    "python_heavy": ["/template", "/template-compat?name=Ana&count=2"],
    "api": ["/hello", "/api/ping", "/query-typed?q=abc&page=2", "/deps", "/template"],
}
PHASES = {"burst": (12, 20.0), "long": (8, 60.0)}
SIGMA = 0.35
Z95 = 1.6448536269514722


def histogram_b64(latencies_ms: np.ndarray) -> str:
    hist = HdrHistogram(1, 3_600_000_000, 3)
    micros = np.maximum(1, (latencies_ms * 1000).astype(np.int64))
    values, counts = np.unique(micros, return_counts=True)
    for value, count in zip(values.tolist(), counts.tolist(), strict=True):
        hist.record_value(value, count)
    return hist.encode().decode("ascii")


def _pct(samples: np.ndarray, q: float) -> float:
    return float(np.percentile(samples, q)) if samples.size else 0.0


def latency_samples(rng: np.random.Generator, p95_ms: float, n: int) -> np.ndarray:
    """n log-normal samples whose p95 is exactly `p95_ms`."""
    raw = rng.lognormal(0.0, SIGMA, n)
    return raw * (p95_ms / _pct(raw, 95))


def _metrics(samples: np.ndarray, elapsed: float, err: int) -> dict[str, Any]:
    total = int(samples.size) + err
    return {
        "requests_total": total,
        "ok": int(samples.size),
        "err": err,
        "error_rate": round(100.0 * err / total, 4) if total else 0.0,
        "rps_ok": samples.size / elapsed,
        "p50_ms": _pct(samples, 50),
        "p90_ms": _pct(samples, 90),
        "p95_ms": _pct(samples, 95),
        "p99_ms": _pct(samples, 99),
        "p999_ms": _pct(samples, 99.9),
        "max_ms": float(samples.max()),
        "mean_ms": float(samples.mean()),
        "status_counts": {"200": int(samples.size), **({"503": err} if err else {})},
    }


def make_timeline(samples: np.ndarray, duration: float, heap_drop: int | None) -> dict[str, Any]:
    """The record's per-window timeline, 1 s windows, from the phase's own samples in order (no
    random draws: a record with a timeline has the same figures as one without)."""
    windows = max(1, int(duration))
    columns: dict[str, list[Any]] = {
        k: [] for k in ("t_s", "requests", "errors", "rps", "p50_ms", "p95_ms", "p99_ms")
    }
    for i, part in enumerate(np.array_split(samples, windows)):
        columns["t_s"].append(float(i + 1))
        columns["requests"].append(int(part.size))
        columns["errors"].append(0)
        columns["rps"].append(float(part.size))
        for q in (50, 95, 99):
            columns[f"p{q}_ms"].append(_pct(part, q) if part.size else None)
    if heap_drop is not None:
        columns["heap_free"] = [180_000 - heap_drop * (i + 1) // windows for i in range(windows)]
    return {"window_s": 1, **columns}


def make_report(
    rng: np.random.Generator,
    profile: str,
    phase: str,
    p95_ms: float,
    error_rate: float = 0.0,
    heap_drop: int | None = 2048,
    max_samples: int = 20_000,
    timeline: bool = False,
    windows: int = 0,
    window_sd: float = 0.1,
) -> dict[str, Any]:
    """One phase report with every key of the contract (the timeline only when asked); with
    `windows` instead, a timeline whose per-window figures wobble independently (log sd
    `window_sd`) around the run's own: a known truth for the block bootstrap."""
    clients, duration = PHASES[phase]
    n = int(min(max_samples, clients / (p95_ms / 2000.0) * duration))
    samples = latency_samples(rng, p95_ms, n)
    err = round(n * error_rate / (100.0 - error_rate)) if error_rate else 0
    elapsed = duration + float(rng.uniform(0.0, 0.3))
    paths = PROFILE_PATHS[profile]
    parts = np.array_split(samples, len(paths))
    path_metrics = {}
    for i, (path, part) in enumerate(zip(paths, parts, strict=True)):
        part_err = err if i == 0 else 0
        path_metrics[path] = _metrics(part, elapsed, part_err)
    tail = samples[int(n * 0.75) :]
    report = {
        "clients": clients,
        "duration": duration,
        "elapsed": elapsed,
        **_metrics(samples, elapsed, err),
        "rps_total": (n + err) / elapsed,
        "p95_tail_ms": _pct(tail, 95),
        "min_ms": float(samples.min()),
        "stdev_ms": float(samples.std()),
        "path_metrics": path_metrics,
        "errors_by_kind": {
            "timeout": 0,
            "refused": 0,
            "reset": 0,
            "http_4xx": 0,
            "http_5xx": err,
            "other": 0,
        },
        "stats_after": {"server": {"requests_handled": n + err, "request_errors": err}},
        "mem_before": {"heap": {"internal_free": 180_000, "psram_free": 4_000_000}},
        "mem_after": {"heap": {"internal_free": 180_000 - (heap_drop or 0)}},
        "heap_internal_drop": heap_drop,
        "heap_psram_drop": 0 if heap_drop is not None else None,
        "telemetry_available": heap_drop is not None,
        "watchdog_budget_s": max(45.0, duration * 2.5 + 22),
        "timed_out": False,
        "stopped": False,
        "histogram": histogram_b64(samples),
    }
    if windows:
        wobble = rng.lognormal(0.0, window_sd, (4, windows))
        per = report["requests_total"] / windows
        report["timeline"] = {
            "window_s": round(elapsed / windows, 3),
            "t_s": [round((i + 1) * elapsed / windows, 3) for i in range(windows)],
            "requests": [round(per * w) for w in wobble[0]],
            "errors": [0] * windows,
            "rps": [report["rps_total"] * w for w in wobble[0]],
            **{
                f"{q}_ms": [report[f"{q}_ms"] * w for w in wobble[i]]
                for i, q in enumerate(("p50", "p95", "p99"), start=1)
            },
        }
    elif timeline:
        report["timeline"] = make_timeline(samples, duration, heap_drop)
    return report


def make_record(
    p95_ms: Sequence[float] | float = 20.0,
    *,
    runs: int | None = None,
    profiles: Sequence[str] = ("c_static_only", "python_light", "python_heavy"),
    phases: Sequence[str] = ("burst", "long"),
    target: str = "192.168.0.135:8080",
    seed: int = 0,
    started_at: datetime | None = None,
    tag: str = "",
    status: str = "finished",
    error_rate: float = 0.0,
    heap_drop: int | None = 2048,
    max_samples: int = 20_000,
    run_id: str | None = None,
    timeline: bool = False,
    windows: int = 0,
    settings: dict[str, Any] | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """A full run record; `p95_ms` is one value per run (or one value for every run).
    `settings` changes the measurement settings (see engine/record.py `measurement`) from the
    factory's; `windows` adds a timeline of that many windows to each phase report."""
    per_run = [float(p95_ms)] * (runs or 3) if isinstance(p95_ms, int | float) else list(p95_ms)
    rng = np.random.default_rng(seed)
    start = started_at or datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=seed)
    stamp = start.strftime("%Y%m%dT%H%M%SZ")
    raw_runs = []
    for profile in profiles:
        for index, p95 in enumerate(per_run, start=1):
            results = []
            for phase in phases:
                report = make_report(
                    rng, profile, phase, p95, error_rate, heap_drop, max_samples, timeline, windows
                )
                ok = report["error_rate"] <= 2.0
                reasons = [] if ok else [f"error_rate {report['error_rate']:.2f}% > 2.00%"]
                results.append(
                    {
                        "profile": profile,
                        "phase": phase,
                        "pass": ok,
                        "fail_reasons": reasons,
                        "report": report,
                    }
                )
            raw_runs.append({"profile": profile, "run_index": index, "results": results})
    aggregated = aggregate(raw_runs)
    measured = {
        "phases": {
            f"{p}:{ph}": dict(zip(("clients", "duration"), PHASES[ph], strict=True))
            for p in profiles
            for ph in phases
        },
        "timeout": 6.0,
        "tool_version": "0.1.0",
        **(settings or {}),
    }
    return {
        "schema": 1,
        "run_id": run_id or f"{stamp}-{seed:06x}",
        "status": status,
        "started_at": start.isoformat().replace("+00:00", "Z"),
        "finished_at": (start + timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
        "tag": tag,
        "note": "",
        "timestamp_utc": stamp,
        "target": target,
        "profiles": list(profiles),
        "runs_per_profile": len(per_run),
        "overall_pass": all(r["pass"] for run in raw_runs for r in run["results"]),
        "raw_runs": raw_runs,
        "aggregated": aggregated,
        "comparison_to_previous": {},
        "hard_stop_reason": None,
        "thresholds": {"max_error_rate": 2.0, "max_p95_ms": 2000.0, "max_p99_ms": 3000.0},
        "settings": {"host": target.split(":")[0], "port": 8080, "runs": len(per_run)},
        "profile_definitions": {
            p: {
                "description": p,
                "requests": [
                    {"path": x, "method": "GET", "headers": {}, "body": "", "weight": 1}
                    for x in PROFILE_PATHS[p]
                ],
                "phases": {},
                "source": "builtin",
            }
            for p in profiles
        },
        "measurement": measured,
        "settings_fingerprint": fingerprint(measured),
        "device": device,
        "metadata": {
            "tool_version": "0.1.0",
            "hostname": "bench",
            "python": "3.11",
            "platform": "linux",
            "git_commit": None,
            "git_branch": None,
        },
    }


WORKFLOW_START = datetime(2026, 3, 1, tzinfo=UTC)
WORKFLOW_KW: dict[str, Any] = {
    "profiles": ("python_light",),
    "phases": ("burst",),
    "max_samples": 300,
}


def workflow_record(i: int, p95: float, build: str = "", sd: float = 0.03) -> dict[str, Any]:
    """Record i of a bench-workflow history, a minute after record i − 1; 3 runs around `p95`,
    labelled with `build`."""
    rng = np.random.default_rng(i)
    values = list(p95 * np.exp(rng.normal(0.0, sd, 3)))
    start = WORKFLOW_START + timedelta(minutes=i)
    record = make_record(values, seed=i, started_at=start, **WORKFLOW_KW)
    record["build"] = build
    return record


def workflow_history(
    store: Any, labelled: bool
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """The issue-19 workflow in `store`: 4 records of A (20 ms), 2 of a build 1.5× slower, 2 of
    B (2×). Returns A (the 4th record), B (the last) and the ids of the records not of A's
    build."""
    builds = [("A", 20.0)] * 4 + [("C", 30.0)] * 2 + [("B", 40.0)] * 2
    records = [
        workflow_record(i, p95, build if labelled else "") for i, (build, p95) in enumerate(builds)
    ]
    for record in records:
        store.add_run(record)
    others = [r["run_id"] for r, (build, _) in zip(records, builds, strict=True) if build != "A"]
    return records[3], records[-1], others


def ramp_record(
    stages: Sequence[tuple[float, float]],
    knee_rps: float,
    *,
    p95_ms: float = 10.0,
    over_p95_ms: float = 400.0,
    runs: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """A `--stages` run (profile python_light, one long phase of 1 s windows) of a device with a
    known knee: each window achieves min(target, `knee_rps`), its p95 is `p95_ms` until the
    first window whose target passes the knee and `over_p95_ms` from then on (the queue built
    while overloaded drains on the way down). The ramp's per-window targets are the engine's
    own (`load.ramp_report`)."""
    from perftui.config import PhaseSettings
    from perftui.engine.load import ramp_report
    from perftui.engine.pacing import Ramp

    ramp = Ramp(stages)
    duration = int(ramp.duration)
    rate = ramp.total / ramp.duration
    phase = {"clients": 8, "duration": float(duration), "rate": rate}
    phase |= {"stages": [list(s) for s in stages], "stages_unit": "rps"}
    record = make_record(
        p95_ms,
        runs=runs,
        profiles=("python_light",),
        phases=("long",),
        max_samples=300,
        seed=seed,
        settings={"phases": {"python_light:long": phase}},
    )
    rng = np.random.default_rng(seed)
    for run in record["raw_runs"]:
        report = run["results"][0]["report"]
        columns: dict[str, list[Any]] = {
            k: [] for k in ("t_s", "requests", "errors", "rps", "p50_ms", "p95_ms", "p99_ms")
        }
        hists = []
        overloaded = False
        for i in range(duration):
            target = ramp.mean(i, i + 1)
            overloaded = overloaded or target > knee_rps
            requests = round(min(target, knee_rps))
            if not requests:  # as the engine's timeline, which keeps no empty window
                continue
            samples = latency_samples(rng, over_p95_ms if overloaded else p95_ms, requests)
            columns["t_s"].append(float(i + 1))
            columns["requests"].append(requests)
            columns["errors"].append(0)
            columns["rps"].append(float(requests))
            for q in (50, 95, 99):
                columns[f"p{q}_ms"].append(_pct(samples, q))
            hists.append(histogram_b64(samples))
        report["timeline"] = {"window_s": 1, **columns, "histograms": hists}
        settings = PhaseSettings(8, float(duration), rate, tuple(stages), "rps")
        report.update(ramp_report(settings, report["timeline"]))
    return record
