"""`perftui capacity HOST …`: the highest constant rate the device sustains within the gates.

Exit 0 when a capacity is found, 1 when even the start rate fails (or no confirm step passes),
2 for bad input, 3 when it cannot run (lock held, device unreachable, engine without open-loop
phases), 130 when stopped. Step lines go to stderr, the answer (or `--json`) to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from perftui import validate
from perftui.config import (
    EXIT_COULD_NOT_RUN,
    EXIT_GATE_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    GateLimits,
    RunConfig,
    default_history_dir,
)
from perftui.engine.events import Event, Log
from perftui.profiles import adhoc_profile, resolve_profiles

DEFAULT_CLIENTS = 16  # the most open connections; requests beyond wait in perftui, as latency


def register(sub: Any) -> None:
    p = sub.add_parser("capacity", help="find the highest rate the device sustains within gates")
    p.add_argument("host", nargs="?", help="device host name or IP (or a URL http://host:port)")
    p.add_argument("--port", type=validate.PORT, default=None, help="device port (default 8080)")
    p.add_argument("--profiles", default="api", help="ONE profile: a name or a .toml (api)")
    p.add_argument("--paths", default=None, help="ad-hoc profile: comma list of paths")
    p.add_argument(
        "--max-p95-ms", type=validate.POS_FLOAT, required=True, help="gate: p95 at a rate"
    )
    p.add_argument("--max-error-rate", type=validate.NONNEG_FLOAT, default=2.0, help="gate, %% (2)")
    p.add_argument("--start-rate", type=validate.POS_FLOAT, default=10.0, help="first step, req/s")
    p.add_argument(
        "--max-rate", type=validate.POS_FLOAT, default=100_000.0, help="never above, req/s"
    )
    p.add_argument(
        "--step-s", type=validate.POS_FLOAT, default=5.0, help="search step length, s (5)"
    )
    p.add_argument(
        "--confirm-s", type=validate.POS_FLOAT, default=15.0, help="confirm step, s (15)"
    )
    p.add_argument(
        "--clients",
        type=validate.POS_INT,
        default=DEFAULT_CLIENTS,
        help=f"most open connections (default {DEFAULT_CLIENTS})",
    )
    p.add_argument(
        "--timeout", type=validate.POS_FLOAT, default=6.0, help="request timeout, s (6.0)"
    )
    p.add_argument("--probe-path", type=validate.URL_PATH, default="/hello")
    p.add_argument("--probe-retries", type=validate.POS_INT, default=12)
    p.add_argument("--json", action="store_true", help="print {capacity_rps, steps, …} as JSON")
    p.add_argument("--tag", default="", help="kept to [A-Za-z0-9_-]")
    p.add_argument("--note", default="", help="free text stored with the run")
    p.add_argument(
        "--history-dir",
        type=Path,
        default=argparse.SUPPRESS,
        help="history folder (default $PERFTUI_HISTORY_DIR or ./history)",
    )
    p.add_argument("--lock-file", type=Path, default=None)
    p.add_argument("--sim", action="store_true", help="search the built-in simulated device")
    p.set_defaults(func=cmd_capacity)


def _config(args: argparse.Namespace) -> RunConfig:
    if args.sim and args.host:
        raise validate.UsageError("give either HOST or --sim, not both")
    if not args.sim and not args.host:
        raise validate.UsageError("HOST is required (or --sim for the built-in simulated device)")
    if args.start_rate > args.max_rate:
        raise validate.UsageError(f"--start-rate {args.start_rate:g} is above --max-rate")
    scheme, host, port = (
        ("http", "127.0.0.1", 0) if args.sim else validate.parse_target(args.host, args.port)
    )
    profiles = [adhoc_profile(args.paths)] if args.paths else resolve_profiles(args.profiles)
    if len(profiles) != 1:
        raise validate.UsageError("capacity searches one profile at a time: give one in --profiles")
    return RunConfig(
        host=host,
        port=port,
        scheme=scheme,
        profiles=profiles,
        runs=1,
        timeout=args.timeout,
        phase_overrides={"burst": {"clients": args.clients}},
        post_phase_settle_ms=250,
        history_dir=getattr(args, "history_dir", None) or default_history_dir(),
        lock_file=args.lock_file,
        probe_path=args.probe_path,
        probe_retries=args.probe_retries,
        tag=validate.clean_tag(args.tag),
        note=args.note,
        gate_limits=GateLimits(max_error_rate=args.max_error_rate, max_p95_ms=args.max_p95_ms),
    )


def _warn(event: Event) -> None:
    """The engine's warnings and errors during a step, as `perftui run` prints them."""
    if isinstance(event, Log) and event.level in ("warning", "error"):
        print(f"[perftui] {event.level}: {event.message}", file=sys.stderr, flush=True)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def summary_text(capacity_rps: float | None, status: str, note: str, steps: list[Any]) -> str:
    """The answer and the latency-vs-rate curve, rate ascending."""
    lines = ["rate req/s  achieved  p50 ms  p95 ms  p99 ms  err %  verdict"]
    for step in sorted(steps, key=lambda s: (s.result.rate, s.index)):
        r = step.result
        confirm = " (confirm)" if step.kind == "confirm" else ""
        lines.append(
            f"{r.rate:10g}  {'-' if r.achieved_rps is None else f'{r.achieved_rps:8.1f}':>8s}  "
            f"{_ms(r.p50_ms):>6s}  {_ms(r.p95_ms):>6s}  {_ms(r.p99_ms):>6s}  "
            f"{'-' if r.error_rate is None else f'{r.error_rate:5.2f}':>5s}  "
            f"{'pass' if step.passed else 'FAIL'}{confirm}"
        )
    head = (
        f"capacity_rps: {capacity_rps:g}"
        if capacity_rps is not None
        else f"capacity_rps: none ({status})"
    )
    return "\n".join([head + (f"  ({note})" if note else ""), *lines])


def cmd_capacity(args: argparse.Namespace) -> int:
    from perftui.engine.capacity import CapacityGates, EngineMeasure, SearchPlan
    from perftui.runs.owner import RunOwner, StopSignals, search_capacity

    config = _config(args)
    gates = CapacityGates(max_p95_ms=args.max_p95_ms, max_error_rate=args.max_error_rate)
    plan = SearchPlan(
        start_rate=args.start_rate,
        step_s=args.step_s,
        confirm_s=args.confirm_s,
        max_rate=args.max_rate,
    )
    measure = EngineMeasure(config, _warn)
    owner = RunOwner(config, use_sim=args.sim, resolve_host=True)
    with StopSignals(measure):
        result, run_id = search_capacity(
            owner,
            measure,
            gates,
            plan,
            lambda step: print(f"[perftui] {step.line()}", file=sys.stderr, flush=True),
        )
    if args.json:
        print(
            json.dumps(
                {
                    "capacity_rps": result.capacity_rps,
                    "status": result.status,
                    "note": result.note,
                    "steps": [s.as_dict() for s in result.steps],
                    "gates": gates.as_dict(),
                    "run_id": run_id,
                },
                indent=2,
            )
        )
    elif result.steps:
        print(summary_text(result.capacity_rps, result.status, result.note, result.steps))
    if run_id:
        print(f"[perftui] stored as run {run_id}", file=sys.stderr)
    if result.status == "stopped":
        return EXIT_INTERRUPTED
    if result.status == "hard_stop":
        print(f"perftui: could not run: {result.note}", file=sys.stderr)
        return EXIT_COULD_NOT_RUN
    if not result.found:
        print(f"perftui: no capacity: {result.note}", file=sys.stderr)
        return EXIT_GATE_FAILED
    return EXIT_OK
