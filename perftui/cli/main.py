"""Command line: `perftui` opens the TUI; `perftui run HOST …` is the legacy runner, headless.

Bad input is one line on stderr and exit 2; a run that cannot start is exit 3 (see
`perftui.config` for every exit code). No traceback reaches the user unless PERFTUI_DEBUG is set.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sys
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from perftui import __version__
from perftui import settings as run_settings
from perftui.config import (
    EXIT_BAD_INPUT,
    EXIT_COULD_NOT_RUN,
    EXIT_INTERRUPTED,
    RunConfig,
    build_config,
    default_history_dir,
    read_config_file,
)
from perftui.profiles import (
    ProfileError,
    adhoc_profile,
    builtin_names,
    oneoff_profile,
    read_targets,
    resolve_profiles,
    split_url,
)
from perftui.validate import PORT, UsageError, parse_target

COMMANDS = (
    "run",
    "capacity",
    "sim",
    "history",
    "compare",
    "trend",
    "profiles",
    "tui",
    "ps",
    "stop",
    "attach",
)


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage dump) and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


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


def build_parser() -> Parser:
    parser = Parser(prog="perftui", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"perftui {__version__}")
    parser.add_argument(
        "--history-dir",
        type=Path,
        default=argparse.SUPPRESS,
        help="history folder (default $PERFTUI_HISTORY_DIR or ./history)",
    )
    sub = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    run = sub.add_parser("run", help="run the load suite headless (the legacy runner's flags)")
    add_run_arguments(run)
    run.add_argument(
        "--detach",
        action="store_true",
        help="run in the background (own session): print the run id and exit; see ps/attach/stop",
    )
    run.set_defaults(func=cmd_run)
    sim = sub.add_parser("sim", help="serve the simulated ESP32 device on loopback")
    from perftui.sim.options import add_arguments as add_sim_arguments

    add_sim_arguments(sim)  # the flags only: the simulator (aiohttp) loads when `sim` runs
    sim.set_defaults(func=cmd_sim)
    from perftui.cli.history import register

    register(sub)
    from perftui.cli.capacity import register as register_capacity

    register_capacity(sub)
    from perftui.cli import runs

    runs.register(sub)
    profiles = sub.add_parser("profiles", help="list the built-in profiles")
    profiles.set_defaults(func=cmd_profiles)
    tui = sub.add_parser("tui", help="open the TUI (the default)")
    tui.set_defaults(func=cmd_tui)
    return parser


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


def profiles_from_args(args: argparse.Namespace) -> list[Any]:
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


def check_resolvable(host: str) -> None:
    try:
        socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise CouldNotRun(f"cannot resolve host {host!r}: {exc}") from None


class CouldNotRun(RuntimeError):
    """The run cannot start (lock held, history dir unwritable, host unknown): exit 3."""


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


def check_can_run(config: RunConfig, sim: bool) -> None:
    """The checks before any load: the host is known and the history dir writable."""
    from perftui.history.files import HistoryDirError, check_history_dir

    if not sim:
        check_resolvable(config.host)
    try:
        check_history_dir(config.history_dir)
    except HistoryDirError as exc:
        raise CouldNotRun(str(exc)) from None


def take_run_lock(config: RunConfig, sim: bool, run_id: str | None = None) -> Any:
    """`check_can_run`, then the run lock (naming `run_id` to whoever finds it held)."""
    from perftui.engine.lock import LockHeld, RunLock

    check_can_run(config, sim)
    lock = RunLock(config.lock_path)
    try:
        lock.acquire(run_id=run_id)
    except LockHeld as exc:
        raise CouldNotRun(str(exc)) from None
    return lock


def start_sim(config: RunConfig, options: Any = None) -> Any:
    """`--sim`: the built-in simulated device on a free port, which `config` then targets."""
    from perftui.sim.device import serve_run

    sim = serve_run(config, options)
    print(f"perftui: simulated device at {sim.base_url}", file=sys.stderr)
    return sim


def cmd_run(args: argparse.Namespace) -> int:
    from perftui.cli.printer import Printer, json_summary
    from perftui.engine.runner import EngineProcess

    config = config_from_args(args)
    device_options = sim_options(args)
    thresholds = _compare_thresholds(args)
    if args.tag and config.tag != args.tag:
        print(f"perftui: tag cleaned to {config.tag!r}", file=sys.stderr)
    if args.detach:
        from perftui.cli.runs import detach_run

        check_can_run(config, args.sim)
        if args.compare_to:
            raise UsageError("--compare-to needs an attached run (compare later: perftui compare)")
        return detach_run(config, use_sim=args.sim, sim_options=device_options)
    from perftui.cli.runs import StreamedPrinter
    from perftui.engine.record import new_run_id

    run_id = new_run_id(datetime.now(UTC))
    lock = take_run_lock(config, args.sim, run_id)
    sim = exporter = None
    try:
        exporter = _metrics_exporter(config)
        if args.sim:
            sim = start_sim(config, device_options)
        engine = EngineProcess(config, run_id=run_id)
        printer = StreamedPrinter(
            Printer(config.heartbeat_ms, json_mode=args.json), config, run_id, engine, exporter
        )
        try:
            code = _drive(engine, printer)
        finally:
            printer.close()
    finally:
        if exporter is not None:
            exporter.close()
        if sim is not None:
            sim.stop()
        lock.release()
    finished = engine.finished
    assert finished is not None
    compared: dict[str, Any] = {}
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
            )
        compared = {"compare_to": args.compare_to, "compare_exit_code": verdict}
        code = max(code, verdict) if code in (0, 1) else code
    if args.json:
        print(json.dumps(json_summary(finished, code, **compared), indent=1), flush=True)
    return code


def _metrics_exporter(config: RunConfig) -> Any:
    """`--metrics-port`: the run's metrics server, served from this process (which reads the
    events), or None; a port that cannot be listened on stops the run before any load."""
    if config.metrics_port is None:
        return None
    from perftui.exporter import start_exporter

    try:
        exporter = start_exporter(config.metrics_port, config.metrics_bind, config.target)
    except OSError as exc:
        raise CouldNotRun(
            f"--metrics-port {config.metrics_port} on {config.metrics_bind}: {exc.strerror or exc}"
        ) from None
    print(
        f"perftui: metrics at http://{config.metrics_bind}:{exporter.port}/metrics",
        file=sys.stderr,
    )
    return exporter


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


def _drive(engine: Any, printer: Any) -> int:
    """Feed the engine's events to the printer; Ctrl-C/SIGTERM once stops, twice kills.

    The handlers only act on the engine (a shared byte, a SIGKILL) and count: raising
    KeyboardInterrupt instead could land anywhere, even inside the handling of the first one.
    """
    presses = 0

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            engine.stop()
        else:
            engine.kill()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    engine.start()
    told = 0
    try:
        while engine.finished is None:
            event = engine.poll(timeout=0.5)
            if event is not None:
                printer.handle(event)
            if presses != told:
                told = presses
                note = "stopping (Ctrl-C again to kill)…" if told == 1 else "killing the engine…"
                print(f"perftui: {note}", file=sys.stderr)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert engine.finished is not None
    return engine.finished.exit_code if presses == 0 else EXIT_INTERRUPTED


def cmd_sim(args: argparse.Namespace) -> int:
    from perftui.sim.device import main as serve

    return serve(args)


def cmd_profiles(args: argparse.Namespace) -> int:
    from perftui.profiles import resolve_profile

    for name in builtin_names():
        profile = resolve_profile(name)
        print(f"{name:15s} {profile.description}")
        for path in profile.paths:
            print(f"{'':15s}   {path}")
    return 0


def cmd_tui(args: argparse.Namespace) -> int:
    from perftui.tui.app import run_app

    return run_app(getattr(args, "history_dir", None) or default_history_dir())


GLOBAL_FLAGS = ("-h", "--help", "--version")


def _legacy_argv(argv: list[str]) -> list[str]:
    """`perftui HOST --flags` and `perftui --runs 5 HOST …` (the old `perf_regression.py`
    spellings, flags first or host first) mean `run`; so does `perftui --sim …`."""
    if not argv or argv[0] in COMMANDS or argv[0] in GLOBAL_FLAGS:
        return argv
    return ["run", *argv]


def _hoist_history_dir(argv: list[str]) -> tuple[list[str], list[str]]:
    """`--history-dir DIR` is global: accept it after any subcommand by moving it to the front."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest += argv[i:]
            break
        if arg == "--history-dir" and i + 1 < len(argv):
            front += argv[i : i + 2]
            i += 2
            continue
        if arg.startswith("--history-dir="):
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front, rest


def main(argv: Sequence[str] | None = None) -> int:
    front, rest = _hoist_history_dir(list(sys.argv[1:] if argv is None else argv))
    args_list = front + _legacy_argv(rest)
    parser = build_parser()
    args = parser.parse_args(args_list)
    func = getattr(args, "func", cmd_tui)
    try:
        return int(func(args) or 0)
    except (UsageError, ProfileError) as exc:
        print(f"perftui: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except CouldNotRun as exc:
        print(f"perftui: could not run: {exc}", file=sys.stderr)
        return EXIT_COULD_NOT_RUN
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get("PERFTUI_DEBUG"):
            traceback.print_exc()
        print(
            f"perftui: internal error: {type(exc).__name__}: {exc} "
            "(set PERFTUI_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_COULD_NOT_RUN
