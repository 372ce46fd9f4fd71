"""The run record: the legacy payload every script reads, plus what perftui adds.

One dict serves three readers: `latest.json`/`perf_*.json` (legacy keys first, so old scripts
keep working), the history database (one compact document: aggregates and encoded histograms,
never raw samples) and the UIs.
"""

from __future__ import annotations

import os
import platform
import secrets
import socket
import subprocess
from dataclasses import asdict
from datetime import datetime

from perftui import __version__
from perftui.analysis.aggregate import aggregate
from perftui.config import PHASES, RunConfig
from perftui.engine.notes import co_note
from perftui.engine.schema import RECORD_SCHEMA, Aggregate, JsonObject, RawRun, RunRecord
from perftui.like import fingerprint, run_status


def stamp(moment: datetime) -> str:
    """The legacy file-name stamp, YYYYMMDDTHHMMSSZ (UTC)."""
    return moment.strftime("%Y%m%dT%H%M%SZ")


def new_run_id(moment: datetime) -> str:
    """Sortable by time, unique across machines: the stamp plus six random hex digits."""
    return f"{stamp(moment)}-{secrets.token_hex(3)}"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=2, cwd=os.getcwd()
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def metadata() -> dict[str, str | None]:
    """Where and with what the run was made; the git fields describe the cwd's checkout."""
    return {
        "tool_version": __version__,
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_branch": _git("rev-parse", "--abbrev-ref", "HEAD"),
    }


def measurement(config: RunConfig) -> JsonObject:
    """The settings that shape a run's load and what it measures: two runs are compared as like
    with like only if these are equal. Per `profile:phase` the clients, duration and any other
    phase setting (an open-loop rate, a ramp's stages, …); how open-loop arrivals are spaced; the
    timeout; TLS trust; what each profile requests; and the tool's version: the registry's
    fingerprinted settings (`perftui.settings`, `fingerprint=True`; a test holds the two equal).
    How often a viewer is sent snapshots, per-path percentiles or heap readings is not here
    (`perftui.like.NOT_FINGERPRINTED`): the TUI and the CLI differ there by design, and their
    runs must gate each other."""
    phases = {
        f"{p.name}:{phase}": {  # a ramp's stages only when there is one
            k: v
            for k, v in asdict(config.phase_settings(p, phase)).items()
            if v is not None or not k.startswith("stages")
        }
        for p in config.profiles
        for phase in PHASES
    }
    return {
        "phases": phases,
        "arrivals": config.arrivals,  # open-loop phases: constant or Poisson arrivals
        "timeout": config.timeout,
        "profiles": {p.name: {"requests": p.definition()["requests"]} for p in config.profiles},
        "tool_version": __version__,
        **({"tls": config.tls.given()} if config.tls.given() else {}),  # https trust settings
    }


def reported_build(raw_runs: list[RawRun]) -> str:
    """The build a device reports in its server stats (`firmware.build`), if it does."""
    for run in raw_runs:
        for res in run.get("results") or []:
            stats = (res.get("report") or {}).get("stats_after") or {}
            build = (stats.get("firmware") or {}).get("build") if isinstance(stats, dict) else None
            if isinstance(build, str) and build.strip():
                return build.strip()
    return ""


def legacy_comparison(
    aggregated: dict[str, Aggregate], previous: RunRecord | None
) -> dict[str, dict[str, float | None]]:
    """The reference's `comparison_to_previous`: differences of medians against the old latest."""
    if not previous or not isinstance(previous.get("aggregated"), dict):
        return {}
    out: dict[str, dict[str, float | None]] = {}
    for key, entry in aggregated.items():
        old = previous["aggregated"].get(key)
        if not isinstance(old, dict):
            continue
        deltas: dict[str, float | None] = {}
        for metric in ("p95_ms", "p99_ms", "error_rate", "rps_ok"):
            new_m = (entry.get(metric) or {}).get("median")
            old_summary = old.get(metric)  # a hand-edited old file may hold anything here
            old_m = old_summary.get("median") if isinstance(old_summary, dict) else None
            deltas[f"{metric}_median_delta"] = (
                round(new_m - old_m, 4) if new_m is not None and old_m is not None else None
            )
        out[key] = deltas
    return out


def build(
    config: RunConfig,
    *,
    run_id: str,
    started: datetime,
    finished: datetime | None,
    status: str,
    raw_runs: list[RawRun],
    hard_stop_reason: str | None,
    previous: RunRecord | None,
    meta: dict[str, str | None],
) -> RunRecord:
    """Assemble the record; legacy keys come first, in the reference's order."""
    aggregated = aggregate(raw_runs)
    settings = measurement(config)
    phases_ok = all(r["pass"] for run in raw_runs for r in run["results"])
    return {
        "timestamp_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "target": config.target,
        "profiles": [p.name for p in config.profiles],
        "runs_per_profile": config.runs,
        "overall_pass": bool(raw_runs) and phases_ok and status == "finished",
        "raw_runs": raw_runs,
        "aggregated": aggregated,
        "comparison_to_previous": legacy_comparison(aggregated, previous),
        "hard_stop_reason": hard_stop_reason,
        "thresholds": asdict(config.gate_limits),
        "schema": RECORD_SCHEMA,
        "run_id": run_id,
        "status": run_status({"status": status, "raw_runs": raw_runs}),
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": finished.isoformat(timespec="seconds") if finished else None,
        "tag": config.tag,
        "build": config.build or reported_build(raw_runs),
        "note": config.note,
        "settings": config.settings_dict(),
        "profile_definitions": {p.name: p.definition() for p in config.profiles},
        "measurement": settings,
        "settings_fingerprint": fingerprint(settings),
        "device": config.device or None,
        "metadata": meta,
    }


METRIC_COLUMNS = ("rps_ok", "p50_ms", "p95_ms", "p99_ms", "p95_tail_ms", "error_rate")


def markdown(payload: RunRecord) -> str:
    """The compact `perf_<stamp>.md` summary."""
    verdict = "PASS" if payload["overall_pass"] else "FAIL"
    lines = [
        f"# perftui run {payload['run_id']}",
        "",
        f"- target: `{payload['target']}`  status: {payload['status']}  result: **{verdict}**",
        f"- profiles: {', '.join(payload['profiles'])}; runs per profile: "
        f"{payload['runs_per_profile']}",
    ]
    if payload.get("hard_stop_reason"):
        lines.append(f"- hard stop: {payload['hard_stop_reason']}")
    lines += [
        "",
        "| profile:phase | pass rate | rps ok | p50 ms | p95 ms | p99 ms | tail p95 ms | err % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, agg in payload["aggregated"].items():
        med = {m: (agg.get(m) or {}).get("median") for m in METRIC_COLUMNS}
        cells = " | ".join("-" if med[m] is None else f"{med[m]:g}" for m in METRIC_COLUMNS)
        lines.append(f"| {key} | {agg['pass_rate']:.0%} | {cells} |")
    failures = [
        f"- {r['profile']}:{r['phase']} run {run['run_index']}: {'; '.join(r['fail_reasons'])}"
        for run in payload["raw_runs"]
        for r in run["results"]
        if not r["pass"]
    ]
    if failures:
        lines += ["", "## Failed gates", "", *failures]
    lines += _phase_notes(payload)
    return "\n".join(lines) + "\n"


def _phase_notes(payload: RunRecord) -> list[str]:
    """Per phase: open-loop rate, stalls, the corrected tail where it matters, client-bound."""
    notes: list[str] = []
    for run in payload["raw_runs"]:
        for r in run["results"]:
            rep, where = r["report"], f"{r['profile']}:{r['phase']} run {run['run_index']}"
            if rep.get("mode") == "open":
                notes.append(
                    f"- {where}: open loop, {rep['achieved_rps']:g} of {rep['target_rps']:g} "
                    f"req/s ({rep.get('arrivals', 'constant')}), {rep['late']} late, "
                    f"max lag {rep['max_lag_ms']:g} ms"
                )
            stalls = rep.get("stalls") or {}
            if stalls.get("count"):
                notes.append(
                    f"- {where}: {stalls['count']} stall(s), longest {stalls['longest_ms']:g} ms, "
                    f"at {', '.join(f'{t:g}' for t in stalls['at'][:10])} s"
                )
            if co := co_note(rep):
                notes.append(f"- {where}: {co}")
            if rep.get("client_bound"):
                notes.append(
                    f"- {where}: client-bound: these numbers describe perftui, not the device"
                )
    return ["", "## Phase notes", "", *notes] if notes else []
