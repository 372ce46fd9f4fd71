"""`perftui run`: the legacy runner's flags, the run's config from them, and the run itself
(owned by `perftui.runs.owner`, its events printed as they come, then `--compare-to`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from perftui.config import (
    DEFAULT_PHASES,
    EXIT_INTERRUPTED,
    GateLimits,
    RunConfig,
    default_history_dir,
    setting_defaults,
)
from perftui.profiles import adhoc_profile, resolve_profiles
from perftui.validate import (
    GATE_LIMIT_TYPES,
    NONNEG_FLOAT,
    NONNEG_INT,
    OPT_IN_GATE_TYPES,
    PORT,
    POS_FLOAT,
    POS_INT,
    URL_PATH,
    UsageError,
    clean_tag,
    parse_target,
)

GATE_HELP = {
    "max_error_rate": "gate, %%",
    "max_internal_free_drop": "gate, B",
    "max_psram_free_drop": "gate, B",
}


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """Every flag of the legacy runner, same names and defaults, plus perftui's own."""
    d = setting_defaults()
    p.add_argument("host", nargs="?", help="device host name or IP (or a URL http://host:port)")
    p.add_argument("--port", type=PORT, default=None, help="device port (default 8080)")
    p.add_argument("--profiles", default="api,mixed,static", help="comma list of names or .toml")
    p.add_argument("--paths", default=None, help="ad-hoc profile: comma list of paths")
    p.add_argument(
        "--runs", type=POS_INT, default=d["runs"], help="runs per profile (default %(default)s)"
    )
    p.add_argument(
        "--timeout", type=POS_FLOAT, default=d["timeout"], help="request timeout, s (%(default)s)"
    )
    for phase, (clients, duration) in DEFAULT_PHASES.items():
        p.add_argument(
            f"--{phase}-clients",
            type=POS_INT,
            default=None,
            help=f"clients in phase {phase} (default {clients})",
        )
        p.add_argument(
            f"--{phase}-duration",
            type=NONNEG_FLOAT,
            default=None,
            help=f"seconds of phase {phase}; 0 skips it (default {duration:g})",
        )
        p.add_argument(
            f"--{phase}-rate",
            type=POS_FLOAT,
            default=None,
            help=f"open loop: req/s in phase {phase}, its clients the most connections",
        )
    p.add_argument(
        "--rate",
        type=POS_FLOAT,
        default=None,
        help="open loop at R req/s in both phases (latency from each intended send time)",
    )
    p.add_argument(
        "--arrivals",
        choices=("constant", "poisson"),
        default=d["arrivals"],
        help="open-loop arrivals: evenly spaced or Poisson (default %(default)s)",
    )
    p.add_argument(
        "--max-stall-ms",
        type=NONNEG_FLOAT,
        default=d["max_stall_ms"],
        help="gate: fail a phase with a longer stall (no answer while requests wait); 0 = off",
    )
    for name in (
        "metrics_retries",
        "metrics_retry_delay_ms",
        "post_phase_settle_ms",
        "between_runs_sleep_ms",
    ):
        p.add_argument(f"--{name.replace('_', '-')}", type=NONNEG_INT, default=d[name])
    p.add_argument(
        "--history-dir",
        type=Path,
        default=argparse.SUPPRESS,
        help="output folder (default $PERFTUI_HISTORY_DIR or ./history)",
    )
    p.add_argument(
        "--lock-file",
        type=Path,
        default=None,
        help="single-run lock (default HISTORY/.perf_regression.lock)",
    )
    p.add_argument(
        "--heartbeat-ms", type=POS_INT, default=d["heartbeat_ms"], help="progress line period"
    )
    p.add_argument(
        "--phase-timeout-multiplier", type=POS_FLOAT, default=d["phase_timeout_multiplier"]
    )
    p.add_argument("--phase-timeout-min-s", type=NONNEG_FLOAT, default=d["phase_timeout_min_s"])
    p.add_argument(
        "--hard-timeout-s", type=NONNEG_FLOAT, default=d["hard_timeout_s"], help="0 = off"
    )
    p.add_argument("--probe-path", type=URL_PATH, default=d["probe_path"])
    p.add_argument("--probe-retries", type=POS_INT, default=d["probe_retries"])
    p.add_argument("--tag", default="", help="kept to [A-Za-z0-9_-], appended to file names")
    p.add_argument("--note", default="", help="free text stored with the run")
    p.add_argument(
        "--build",
        default="",
        metavar="LABEL",
        help="the firmware build measured (default: what the device reports, if it does); "
        "a comparison's noise sample is runs of A's build",
    )
    p.add_argument(
        "--heap-poll-s",
        type=NONNEG_FLOAT,
        default=0.0,
        help="also read the device's free heap every N s during phases (0 = off)",
    )
    for name, convert in GATE_LIMIT_TYPES.items():
        p.add_argument(
            f"--{name.replace('_', '-')}",
            type=convert,
            default=d[name],
            help=GATE_HELP.get(name, "gate"),
        )
    p.add_argument(
        "--max-heap-slope",
        type=OPT_IN_GATE_TYPES["max_heap_slope"],
        default=d["max_heap_slope"],
        metavar="BYTES_PER_HOUR",
        help="gate, B/h: fail a phase whose free heap falls faster (needs --heap-poll-s; off)",
    )
    p.add_argument(
        "--sim",
        action="store_true",
        help="start the built-in simulated device and test it (no HOST)",
    )
    from perftui.sim.options import add_noise_arguments

    add_noise_arguments(p, prefix="sim-")  # --sim-drift, --sim-drift-tau-s, --sim-spikes
    p.add_argument("--sim-seed", type=int, default=None, help="seed of the --sim device's noise")
    p.add_argument(
        "--compare-to",
        metavar="RUN",
        default=None,
        help="after the run, compare with RUN (id, prefix, tag, previous, baseline[:NAME])",
    )
    p.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the comparison report here (.md, .json or .html) instead of stdout",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="a JSON summary on stdout (run id, verdict, exit code, medians, fail reasons, "
        "files); heartbeats and the rest go to stderr",
    )
    from perftui.cli.history import add_compare_options

    add_compare_options(p)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    if args.sim and args.host:
        raise UsageError("give either HOST or --sim, not both")
    if not args.sim and not args.host:
        raise UsageError("HOST is required (or --sim for the built-in simulated device)")
    scheme, host, port = (
        ("http", "127.0.0.1", 0) if args.sim else parse_target(args.host, args.port)
    )
    profiles = [adhoc_profile(args.paths)] if args.paths else resolve_profiles(args.profiles)
    overrides: dict[str, dict[str, float]] = {}
    for phase in ("burst", "long"):
        given = {
            k: v
            for k, v in (
                ("clients", getattr(args, f"{phase}_clients")),
                ("duration", getattr(args, f"{phase}_duration")),
                ("rate", getattr(args, f"{phase}_rate") or args.rate),
            )
            if v is not None
        }
        if given:
            overrides[phase] = given
    history_dir = getattr(args, "history_dir", None) or default_history_dir()
    config = RunConfig(
        host=host,
        port=port,
        scheme=scheme,
        profiles=profiles,
        runs=args.runs,
        timeout=args.timeout,
        phase_overrides=overrides,
        metrics_retries=args.metrics_retries,
        metrics_retry_delay_ms=args.metrics_retry_delay_ms,
        post_phase_settle_ms=args.post_phase_settle_ms,
        between_runs_sleep_ms=args.between_runs_sleep_ms,
        history_dir=history_dir,
        lock_file=args.lock_file,
        heartbeat_ms=args.heartbeat_ms,
        phase_timeout_multiplier=args.phase_timeout_multiplier,
        phase_timeout_min_s=args.phase_timeout_min_s,
        hard_timeout_s=args.hard_timeout_s,
        probe_path=args.probe_path,
        probe_retries=args.probe_retries,
        tag=clean_tag(args.tag),
        note=args.note,
        build=args.build.strip(),
        telemetry_interval_s=args.heap_poll_s,
        arrivals=args.arrivals,
        max_stall_ms=args.max_stall_ms,
        gate_limits=GateLimits(
            **{name: getattr(args, name) for name in (*GATE_LIMIT_TYPES, *OPT_IN_GATE_TYPES)}
        ),
    )
    if not any(
        config.phase_settings(p, phase).duration > 0
        for p in config.profiles
        for phase in ("burst", "long")
    ):
        raise UsageError("nothing to run: every phase has a duration of 0")
    return config


SIM_NOISE = ("drift", "drift_tau_s", "spikes", "seed")


def sim_options(args: argparse.Namespace) -> Any:
    """The `--sim` device's SimOptions from the `--sim-*` flags; UsageError if they are bad or
    given without `--sim` (they would change nothing on a real device)."""
    from perftui.sim.options import SimOptionError, SimOptions

    given = {name: getattr(args, f"sim_{name}") for name in SIM_NOISE}
    try:
        options = SimOptions(**given)
    except SimOptionError as exc:
        raise UsageError(f"--sim-{exc.name.replace('_', '-')} {exc.problem}") from None
    if not args.sim and options != SimOptions():
        changed = next(n for n in SIM_NOISE if getattr(options, n) != getattr(SimOptions(), n))
        raise UsageError(f"--sim-{changed.replace('_', '-')} needs --sim")
    return options


def cmd_run(args: argparse.Namespace) -> int:
    from perftui.cli.printer import Printer, json_summary
    from perftui.runs.owner import RunOwner, StopSignals, check_can_run, new_run_id

    config = config_from_args(args)
    device_options = sim_options(args)
    thresholds = _compare_thresholds(args)
    if args.tag and config.tag != args.tag:
        print(f"perftui: tag cleaned to {config.tag!r}", file=sys.stderr)
    if args.detach:
        from perftui.cli.runs import detach_run

        if args.compare_to:
            check_can_run(config, resolve_host=not args.sim)
            raise UsageError("--compare-to needs an attached run (compare later: perftui compare)")
        return detach_run(config, use_sim=args.sim, sim_options=device_options)
    from perftui.cli.runs import StreamedPrinter

    owner = RunOwner(
        config, new_run_id(), use_sim=args.sim, sim_options=device_options, resolve_host=True
    )
    with owner, StopSignals() as signals:
        engine = owner.engine()
        printer = StreamedPrinter(
            Printer(config.heartbeat_ms, json_mode=args.json), config, owner.run_id, engine
        )
        try:
            finished = owner.drive(engine, printer.handle_all, signals, _stopping)
        finally:
            printer.close()
    code = finished.exit_code if signals.count == 0 else EXIT_INTERRUPTED
    compared: dict[str, str | int] = {}
    if args.compare_to and finished.payload and code != EXIT_INTERRUPTED:
        from perftui.cli.history import compare_after_run
        from perftui.history.store import HistoryStore

        # With --json the report goes to stderr (or --report FILE): stdout is the JSON alone.
        with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
            verdict = compare_after_run(
                HistoryStore(config.history_dir),
                finished.payload,
                args.compare_to,
                thresholds,
                args.fail_on_regression,
                args.report,
                gate_paths=args.gate_paths,
                allow_mismatch=args.allow_mismatch,
                noise=args.noise,
            )
        compared = {"compare_to": args.compare_to, "compare_exit_code": verdict}
        code = max(code, verdict) if code in (0, 1) else code
    if args.json:
        print(json.dumps(json_summary(finished, code, **compared), indent=1), flush=True)
    return code


def _stopping(presses: int) -> None:
    note = "stopping (Ctrl-C again to kill)…" if presses == 1 else "killing the engine…"
    print(f"perftui: {note}", file=sys.stderr)


def _compare_thresholds(args: argparse.Namespace) -> Any:
    """Regression thresholds for `--compare-to`, checked before any load is sent."""
    if not args.compare_to:
        if args.fail_on_regression or args.report:
            raise UsageError("--fail-on-regression and --report need --compare-to RUN")
        return None
    from perftui.analysis.compare import ConfigError
    from perftui.cli.history import thresholds_from_args
    from perftui.history.store import HistoryStore, StoreError

    try:
        thresholds = thresholds_from_args(args)
        if args.compare_to != "previous":  # "previous" is relative to the run about to happen
            HistoryStore(getattr(args, "history_dir", None) or default_history_dir()).resolve(
                args.compare_to
            )
    except (ConfigError, StoreError) as exc:
        raise UsageError(
            f"--compare-to: {exc}" if isinstance(exc, StoreError) else str(exc)
        ) from None
    return thresholds
