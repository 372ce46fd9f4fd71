"""`perftui run`: the legacy runner's flags, the run's config from them, and the run itself
(owned by `perftui.runs.owner`, its events printed as they come, then `--compare-to`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perftui import settings as run_settings
from perftui.config import (
    EXIT_INTERRUPTED,
    RunConfig,
    build_config,
    default_history_dir,
    read_config_file,
)
from perftui.profiles import (
    Profile,
    adhoc_profile,
    oneoff_profile,
    read_targets,
    resolve_profiles,
    split_url,
)
from perftui.validate import PORT, UsageError, parse_target

if TYPE_CHECKING:
    from perftui.engine.events import RunFinished
    from perftui.engine.schema import RunRecord
    from perftui.sim.options import SimOptions


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """Every flag of the legacy runner, same names and defaults, plus perftui's own; the run
    settings' flags come from the registry (`perftui.settings`)."""
    p.add_argument("host", nargs="?", help="device host name or IP (or a URL http://host:port)")
    p.add_argument("--port", type=PORT, default=None, help="device port (default 8080)")
    p.add_argument("--profiles", default="api,mixed,static", help="comma list of names or .toml")
    p.add_argument("--paths", default=None, help="ad-hoc profile: comma list of paths")
    add_request_arguments(p)
    run_settings.add_arguments(p)
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
        "--sim",
        action="store_true",
        help="start the built-in simulated device and test it (no HOST)",
    )
    from perftui.sim.options import add_noise_arguments

    add_noise_arguments(p, prefix="sim-")  # --sim-drift, --sim-drift-tau-s, --sim-spikes
    p.add_argument("--sim-seed", type=int, default=None, help="seed of the --sim device's noise")
    p.add_argument(
        "--sim-slowdown",
        type=float,
        default=1.0,
        metavar="FACTOR",
        help="the --sim device's service times × FACTOR: a slower build to try a comparison on",
    )
    p.add_argument(
        "--compare-to",
        metavar="RUN",
        default=None,
        help="after the run, compare with RUN (id, prefix, tag, previous, baseline[:N], build:X)",
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
    from perftui.cli.compare import add_compare_options

    add_compare_options(p)


def add_request_arguments(p: argparse.ArgumentParser) -> None:
    """One-off requests without a profile file, as hey/oha and vegeta spell them."""
    p.add_argument("-m", "--method", default=None, help="one-off: the method (GET)")
    p.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'K: V'",
        help="one-off: a request header (repeatable)",
    )
    p.add_argument("-d", "--data", default=None, metavar="BODY", help="one-off: the body, or @FILE")
    p.add_argument(
        "--targets",
        type=Path,
        default=None,
        metavar="FILE",
        help="vegeta's targets file: 'METHOD URL' lines, header lines, '@body' lines",
    )


def _oneoff(args: argparse.Namespace) -> bool:
    """-m, -H or -d: a one-off request, whose URL may then carry its path."""
    return bool(args.method or args.header or args.data is not None)


def profiles_from_args(args: argparse.Namespace) -> list[Profile]:
    """The profiles to run: a targets file, a one-off request (a URL path, -m/-H/-d), --paths,
    or --profiles. A one-off profile is built here and stored with the run like any other."""
    oneoff = _oneoff(args)
    path = split_url(args.host)[1] if args.host and oneoff else None
    if args.targets:
        if oneoff or path or args.paths:
            raise UsageError("--targets names the requests: no URL path, --paths, -m, -H or -d")
        device, profile = read_targets(args.targets)
        if parse_target(device, None) != parse_target(args.host, args.port):
            raise UsageError(f"--targets names {device}, not {args.host}")
        return [profile]
    if oneoff:
        paths = [p.strip() for p in args.paths.split(",")] if args.paths else [path or "/"]
        if args.paths and path:
            raise UsageError("give the path in the URL or in --paths, not both")
        return [oneoff_profile(paths, args.method or "GET", args.header, args.data)]
    return [adhoc_profile(args.paths)] if args.paths else resolve_profiles(args.profiles)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    if args.targets and not args.host and not args.sim:
        args.host = read_targets(args.targets)[0]  # the device the targets name
    if args.sim and args.host:
        raise UsageError("give either HOST or --sim, not both")
    if not args.sim and not args.host:
        raise UsageError("HOST is required (or --sim for the built-in simulated device)")
    scheme, host, port = (
        ("http", "127.0.0.1", 0)
        if args.sim
        else parse_target(split_url(args.host)[0] if _oneoff(args) else args.host, args.port)
    )
    return build_config(
        host=host,
        port=port,
        scheme=scheme,
        profiles=profiles_from_args(args),
        history_dir=getattr(args, "history_dir", None),
        lock_file=args.lock_file,
        config_file=read_config_file(args.config, getattr(args, "history_dir", None)),
        given=run_settings.given(args),
    )


SIM_NOISE = ("drift", "drift_tau_s", "spikes", "seed", "slowdown")


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
    from perftui.cli.printer import json_summary
    from perftui.runs.owner import check_can_run

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
    finished, code = _run_attached(args, config, device_options)
    compared: dict[str, str | int] = {}
    if args.compare_to and finished.payload and code != EXIT_INTERRUPTED:
        said: dict[str, str] = {}
        verdict = _compare_after(args, config, finished.payload, thresholds, said)
        compared = {"compare_to": args.compare_to, "compare_exit_code": verdict}
        compared |= {
            f"compare_{k}": v for k, v in said.items()
        }  # compare_verdict, compare_reference
        code = max(code, verdict) if code in (0, 1) else code
    if args.json:
        print(json.dumps(json_summary(finished, code, **compared), indent=1), flush=True)
    return code


def _run_attached(
    args: argparse.Namespace, config: RunConfig, device_options: SimOptions
) -> tuple[RunFinished, int]:
    """The run in this process's hands (a `RunOwner`), its events printed (and served on the
    metrics port when asked): how it finished and its exit code (130 after Ctrl-C)."""
    from perftui.cli.printer import Printer
    from perftui.cli.runs import StreamedPrinter
    from perftui.runs.owner import RunOwner, StopSignals, metrics_exporter, new_run_id

    owner = RunOwner(
        config, new_run_id(), use_sim=args.sim, sim_options=device_options, resolve_host=True
    )
    with owner, StopSignals() as signals:
        exporter = metrics_exporter(config)
        engine = owner.engine()
        printer = StreamedPrinter(
            Printer(config.heartbeat_ms, json_mode=args.json),
            config,
            owner.run_id,
            engine,
            exporter,
        )
        try:
            finished = owner.drive(engine, printer.handle_all, signals, _stopping)
        finally:
            printer.close()
            if exporter is not None:
                exporter.close()
    return finished, finished.exit_code if signals.count == 0 else EXIT_INTERRUPTED


def _compare_after(
    args: argparse.Namespace,
    config: RunConfig,
    payload: RunRecord,
    thresholds: Any,
    verdict: dict[str, str],
) -> int:
    """`--compare-to`: the run just stored against the one named; the comparison's exit code
    (its reference and headline into `verdict`)."""
    from perftui.cli.compare import compare_after_run
    from perftui.history.store import HistoryStore

    # With --json the report goes to stderr (or --report FILE): stdout is the JSON alone.
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        return compare_after_run(
            HistoryStore(config.history_dir),
            payload,
            args.compare_to,
            thresholds,
            args.fail_on_regression,
            args.report,
            gate_paths=args.gate_paths,
            allow_mismatch=args.allow_mismatch,
            noise=args.noise,
            verdict=verdict,
        )


def _stopping(presses: int) -> None:
    note = "stopping (Ctrl-C again to kill)…" if presses == 1 else "killing the engine…"
    print(f"perftui: {note}", file=sys.stderr)


def _compare_thresholds(args: argparse.Namespace) -> Any:
    """Regression thresholds for `--compare-to`, checked before any load is sent."""
    if not args.compare_to:
        if args.fail_on_regression or args.report:
            raise UsageError("--fail-on-regression and --report need --compare-to RUN")
        return None
    from perftui.analysis.thresholds import ConfigError
    from perftui.cli.compare import thresholds_from_args
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
