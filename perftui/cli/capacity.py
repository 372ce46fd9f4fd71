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

from perftui import settings as registry
from perftui import validate
from perftui.config import (
    EXIT_COULD_NOT_RUN,
    EXIT_GATE_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    RunConfig,
    build_config,
    default_history_dir,
)
from perftui.engine.events import Event, Log
from perftui.profiles import adhoc_profile, resolve_profiles
from perftui.settings import CAPACITY_BY_NAME as CAP

# The run settings capacity shares with `perftui run`, and its defaults where they differ.
SHARED = ("timeout", "probe_path", "probe_retries", "tag", "note", "insecure", "cacert")
SHARED += ("cert", "key", "max_error_rate")


def register(sub: Any) -> None:
    p = sub.add_parser("capacity", help="find the highest rate the device sustains within gates")
    p.add_argument("host", nargs="?", help="device host name or IP (or a URL http://host:port)")
    p.add_argument(
        "--from",
        dest="from_run",
        metavar="RUN",
        help="no search: read the capacity from a stored --stages run (a rate ramp), each "
        "window judged as a step; the highest target passing before the first that fails",
    )
    p.add_argument("--port", type=validate.PORT, default=None, help="device port (default 8080)")
    p.add_argument(
        "--profiles",
        default=None,
        help="ONE profile: a name or a .toml (api); with --from, the stored run's profile",
    )
    p.add_argument("--paths", default=None, help="ad-hoc profile: comma list of paths")
    p.add_argument(
        "--max-p95-ms", type=validate.POS_FLOAT, required=True, help="gate: p95 at a rate"
    )
    registry.add_arguments(p, ["start_rate", "max_rate", "step_s", "confirm_s", "clients"], CAP)
    registry.add_arguments(
        p,
        SHARED,
        max_error_rate="gate, %% (2)",
        timeout="request timeout, s (6.0)",
        tag="kept to [A-Za-z0-9_-]",
        probe_path="",
        probe_retries="",
    )
    p.add_argument("--json", action="store_true", help="print {capacity_rps, steps, …} as JSON")
    p.add_argument(
        "--history-dir",
        type=Path,
        default=argparse.SUPPRESS,
        help="history folder (default $PERFTUI_HISTORY_DIR or ./history)",
    )
    p.add_argument("--lock-file", type=Path, default=None)
    p.add_argument("--sim", action="store_true", help="search the built-in simulated device")
    p.set_defaults(func=cmd_capacity)


def _plan(args: argparse.Namespace) -> dict[str, Any]:
    """The search's own settings: given flags over the registry's defaults."""
    return {s.name: registry.given(args, [s.name]).get(s.name, s.default) for s in CAP.values()}


def _config(args: argparse.Namespace) -> RunConfig:
    if args.sim and args.host:
        raise validate.UsageError("give either HOST or --sim, not both")
    if not args.sim and not args.host:
        raise validate.UsageError("HOST is required (or --sim for the built-in simulated device)")
    plan = _plan(args)
    if plan["start_rate"] > plan["max_rate"]:
        raise validate.UsageError(f"--start-rate {plan['start_rate']:g} is above --max-rate")
    scheme, host, port = (
        ("http", "127.0.0.1", 0) if args.sim else validate.parse_target(args.host, args.port)
    )
    named = args.profiles or "api"
    profiles = [adhoc_profile(args.paths)] if args.paths else resolve_profiles(named)
    if len(profiles) != 1:
        raise validate.UsageError("capacity searches one profile at a time: give one in --profiles")
    return build_config(
        host=host,
        port=port,
        scheme=scheme,
        profiles=profiles,
        history_dir=getattr(args, "history_dir", None),
        lock_file=args.lock_file,
        given={
            **registry.given(args, SHARED),
            "runs": 1,
            "burst_clients": plan["clients"],
            "max_p95_ms": args.max_p95_ms,
        },
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


def _from_run(args: argparse.Namespace) -> int:
    """`--from RUN`: the knee of each stored rate ramp of one profile of RUN (one per run of
    it), nothing run or stored; the lowest of them is the answer (the device fell behind there
    once). As the search, one profile at a time: `--profiles` picks it when RUN has several."""
    from perftui.engine.capacity import CapacityGates, NotARateRamp, knee
    from perftui.history.store import HistoryStore, StoreError

    if args.host or args.sim:
        raise validate.UsageError("--from reads a stored run: give no HOST or --sim with it")
    history = getattr(args, "history_dir", None) or default_history_dir()
    try:
        record = HistoryStore(history).resolve(args.from_run)
    except StoreError as exc:
        raise validate.UsageError(f"--from: {exc}") from None
    gates = CapacityGates(
        max_p95_ms=args.max_p95_ms,
        max_error_rate=registry.given(args, ["max_error_rate"]).get(
            "max_error_rate", registry.default("max_error_rate")
        ),
    )
    ramps = [
        (res.get("profile"), run.get("run_index"), res["report"])
        for run in record.get("raw_runs") or []
        for res in run.get("results") or []
        if (res.get("report") or {}).get("ramp")
    ]
    run_id = record.get("run_id")
    if not ramps:
        raise validate.UsageError(
            f"--from: run {run_id} has no --stages ramp (capacity reads a rate ramp)"
        )
    names = list(dict.fromkeys(str(name) for name, *_ in ramps))
    if args.profiles:
        if args.profiles not in names:
            raise validate.UsageError(
                f"--from: run {run_id} has no ramp of profile {args.profiles!r} "
                f"(it has {', '.join(names)})"
            )
        names = [args.profiles]
    if len(names) > 1:
        raise validate.UsageError(
            f"--from: run {run_id} ramps {len(names)} profiles ({', '.join(names)}): "
            "pick one with --profiles"
        )
    ramps = [r for r in ramps if r[0] == names[0]]
    try:
        found = [(profile, index, knee(report, gates)) for profile, index, report in ramps]
    except NotARateRamp as exc:
        raise validate.UsageError(f"--from: run {run_id}: {exc}") from None
    answers = [r.capacity_rps for *_, r in found if r.capacity_rps is not None]
    lowest = min(answers) if len(answers) == len(found) else None
    if args.json:
        phases = [
            {
                "profile": profile,
                "run_index": index,
                "capacity_rps": r.capacity_rps,
                "status": r.status,
                "note": r.note,
                "steps": [s.as_dict() for s in r.steps],
            }
            for profile, index, r in found
        ]
        out = {"from": run_id, "profile": names[0], "capacity_rps": lowest}
        out["gates"] = gates.as_dict()
        print(json.dumps({**out, "phases": phases}, indent=2))
    else:
        for profile, index, r in found:
            if len(found) > 1:
                print(f"{profile} run {index}:")
            print(summary_text(r.capacity_rps, r.status, r.note, r.steps))
        if len(found) > 1:
            runs = f"the lowest of {len(found)} runs"
            print(f"capacity_rps: {lowest:g} ({runs})" if lowest else "capacity_rps: none")
    failed = [r for *_, r in found if not r.found]
    if failed:
        print(f"perftui: no capacity: {failed[0].note}", file=sys.stderr)
        return EXIT_GATE_FAILED
    return EXIT_OK


def cmd_capacity(args: argparse.Namespace) -> int:
    from perftui.engine.capacity import CapacityGates, EngineMeasure, SearchPlan
    from perftui.runs.owner import RunOwner, StopSignals, search_capacity

    if args.from_run:
        return _from_run(args)
    config = _config(args)
    gates = CapacityGates(
        max_p95_ms=args.max_p95_ms, max_error_rate=config.gate_limits.max_error_rate
    )
    given = _plan(args)
    plan = SearchPlan(**{k: given[k] for k in ("start_rate", "step_s", "confirm_s", "max_rate")})
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
