"""Command line: `perftui` opens the TUI; `perftui run HOST …` is the legacy runner, headless.

Bad input is one line on stderr and exit 2; a run that cannot start is exit 3 (see
`perftui.config` for every exit code). No traceback reaches the user unless PERFTUI_DEBUG is set.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from perftui import __version__
from perftui.cli.run import add_run_arguments, cmd_run
from perftui.config import (
    EXIT_BAD_INPUT,
    EXIT_CLOSED_PIPE,
    EXIT_COULD_NOT_RUN,
    EXIT_INTERRUPTED,
    default_history_dir,
)
from perftui.profiles import ProfileError, builtin_names
from perftui.runs import CouldNotRun
from perftui.validate import UsageError

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
    "serve",
)


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage dump) and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


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
    from perftui.cli import serve

    serve.register(sub)
    profiles = sub.add_parser("profiles", help="list the built-in profiles")
    profiles.set_defaults(func=cmd_profiles)
    tui = sub.add_parser("tui", help="open the TUI (the default)")
    tui.set_defaults(func=cmd_tui)
    return parser


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
    from perftui.tui.factory import run_app

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


def _closed_pipe() -> int:
    """The reader of stdout went away (`perftui history list | head -3`): end quietly, as a Unix
    tool killed by SIGPIPE does. stdout is pointed at /dev/null first, so the flush at exit does
    not fail again (the Python docs' SIGPIPE note)."""
    with contextlib.suppress(OSError, ValueError):  # ValueError: stdout replaced (tests)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return EXIT_CLOSED_PIPE


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
    except BrokenPipeError:
        return _closed_pipe()
    except Exception as exc:
        if os.environ.get("PERFTUI_DEBUG"):
            traceback.print_exc()
        print(
            f"perftui: internal error: {type(exc).__name__}: {exc} "
            "(set PERFTUI_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_COULD_NOT_RUN
