"""Runs in progress: `run --detach`, `ps`, `stop` and `attach` (see `perftui.runs.host`).

A detached run belongs to its own process; these commands only read its status and events files
(`HISTORY/live/`) or send it a signal, so a viewer coming and going never touches the run.
The engine's stream modules load inside the commands: the parser registers these commands on
every start, `--version` included, and should not pay for them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perftui.config import EXIT_BAD_INPUT, EXIT_INTERRUPTED, RunConfig, default_history_dir

if TYPE_CHECKING:
    from perftui.engine.events import Event
    from perftui.engine.schema import LiveStatus
    from perftui.exporter import Exporter

TAIL_PERIOD_S = 0.2
STOP_WAIT_S = 60.0


class RunNotFound(LookupError):
    """No run in progress (or events file) matches the reference; one line, exit 2."""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ps = sub.add_parser("ps", help="list the runs in progress in the history dir")
    ps.add_argument("--json", action="store_true", help="one JSON list on stdout")
    ps.set_defaults(func=cmd_ps)
    stop = sub.add_parser("stop", help="stop a run in progress (the partial run is kept)")
    stop.add_argument("run", metavar="RUN", help="run id (or a unique prefix), or latest")
    stop.add_argument("--wait", type=float, default=STOP_WAIT_S, help="seconds to wait (60)")
    stop.set_defaults(func=cmd_stop)
    attach = sub.add_parser("attach", help="watch a run (in progress or ended) from its start")
    attach.add_argument("run", metavar="RUN", nargs="?", default="latest")
    attach.add_argument(
        "--print",
        action="store_true",
        help="headless: progress lines on stderr, the summary on stdout (default without a tty)",
    )
    attach.add_argument("--heartbeat-ms", type=int, default=5000, help="progress line period")
    attach.set_defaults(func=cmd_attach)


def _history(args: argparse.Namespace) -> Path:
    return getattr(args, "history_dir", None) or default_history_dir()


def detach_run(config: RunConfig, use_sim: bool, sim_options: Any = None) -> int:
    """`perftui run … --detach`: start the run in its own session, print its id, return at once."""
    from perftui.runs.owner import detach

    launched = detach(config, use_sim=use_sim, sim_options=sim_options, resolve_host=True)
    print(launched.run_id)
    print(
        f"perftui: run {launched.run_id} started detached (pid {launched.pid}); "
        f"watch: perftui attach {launched.run_id}; stop: perftui stop {launched.run_id}",
        file=sys.stderr,
    )
    return 0


class StreamedPrinter:
    """The attached `perftui run`'s view: the printer, plus the same event stream a detached run
    writes, so `ps`, `attach` and `stop` work on it too. A stream that cannot be written (disk
    full) is dropped with one warning; the run and its printing go on."""

    def __init__(
        self,
        printer: Any,
        config: RunConfig,
        run_id: str,
        engine: Any,
        exporter: Exporter | None = None,
    ) -> None:
        self.printer = printer
        self.engine = engine
        self.exporter = exporter  # --metrics-port: fed the same events
        from perftui.engine import stream

        self.writer: stream.EventWriter | None = None
        try:
            self.writer = stream.EventWriter(config, run_id, os.getpid())
        except OSError as exc:
            self._drop(exc)

    def _drop(self, exc: OSError) -> None:
        print(f"perftui: warning: no live event stream for viewers: {exc}", file=sys.stderr)
        self.writer = None

    def handle_all(self, batch: list[Event]) -> None:
        if self.writer is not None and batch:
            try:
                if self.writer.status["engine_pid"] is None and self.engine.pid:
                    self.writer.set_engine_pid(self.engine.pid)
                self.writer.write(batch)
            except OSError as exc:
                self._drop(exc)
        if self.exporter is not None:
            self.exporter.handle(batch)
        for event in batch:
            self.printer.handle(event)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _in_progress(history: Path) -> list[LiveStatus]:
    """Runs in progress; a stale one (its processes died) is marked in history and shown so."""
    from perftui.engine import lifecycle

    found = []
    for status in lifecycle.runs_in_progress(history):
        if not status["alive"]:
            finished = lifecycle.reap(history, status)
            status["phase"] = f"{finished.status} (pid {status.get('pid')} gone)"
        status.pop("config", None)
        found.append(status)
    return found


def cmd_ps(args: argparse.Namespace) -> int:
    from perftui.engine import lifecycle

    runs = _in_progress(_history(args))
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    if not runs:
        print("no run in progress")
        return 0
    print(f"{'RUN':24s} {'PID':>7s}  {'STARTED':20s} {'TARGET':22s} {'PROFILES':18s} PHASE")
    for r in runs:
        where = lifecycle.where(r)
        print(
            f"{r['run_id']:24s} {r.get('pid') or '-':>7}  {r.get('started', ''):20s} "
            f"{r.get('target')!s:22s} {','.join(r.get('profiles') or []):18s} {where}"
        )
    return 0


def resolve(history: Path, ref: str, running_only: bool = False) -> tuple[str, LiveStatus | None]:
    """(run id, its status if in progress) for `latest`, a run id or a unique prefix."""
    from perftui.engine import lifecycle, stream

    running = {s["run_id"]: s for s in lifecycle.runs_in_progress(history)}
    folder = stream.live_dir(history)
    ended = (
        []
        if running_only or not folder.is_dir()
        else [p.name.removesuffix(".events") for p in folder.glob("*.events")]
    )
    ids = sorted(set(running) | set(ended))
    if ref == "latest":
        pick = sorted(running) or ids
        if not pick:
            raise RunNotFound(
                f"no run {'in progress' if running_only else 'to attach to'} in {history}"
            )
        run_id = pick[-1]
    else:
        matches = [i for i in ids if i.startswith(ref)]
        if len(matches) != 1:
            what = "no run matches" if not matches else f"{len(matches)} runs match"
            where = "in progress" if running_only else "in progress or ended in live/"
            raise RunNotFound(f"{what} {ref!r} ({where} of {history})")
        run_id = matches[0]
    return run_id, running.get(run_id)


def cmd_stop(args: argparse.Namespace) -> int:
    from perftui.engine import lifecycle, stream

    history = _history(args)
    try:
        run_id, status = resolve(history, args.run, running_only=True)
    except RunNotFound as exc:
        print(f"perftui: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    assert status is not None
    if not status["alive"]:
        finished = lifecycle.reap(history, status)
        print(f"perftui: run {run_id} was not running any more; stored as {finished.status}")
        return 0
    pid = int(status["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    print(f"perftui: stopping run {run_id} (pid {pid})…", file=sys.stderr)
    path = stream.status_path(history, run_id)
    deadline = time.monotonic() + args.wait
    while path.exists() and stream.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if path.exists() and stream.pid_alive(pid):
        print(f"perftui: run {run_id} still stopping after {args.wait:g} s", file=sys.stderr)
        return 3
    tail = stream.EventTail(stream.events_path(history, run_id))
    tail.read()
    tail.close()
    status_text = tail.finished.status if tail.finished else "ended"
    print(f"perftui: run {run_id} {status_text}")
    return 0


def cmd_attach(args: argparse.Namespace) -> int:
    history = _history(args)
    try:
        run_id, _ = resolve(history, args.run)
    except RunNotFound as exc:
        print(f"perftui: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    # textual-serve runs us on pipes, with its web driver named in TEXTUAL_DRIVER: still the TUI.
    terminal = (sys.stdin.isatty() and sys.stdout.isatty()) or "TEXTUAL_DRIVER" in os.environ
    if args.print or not terminal:
        return print_attached(history, run_id, args.heartbeat_ms)
    from perftui.tui.factory import run_app

    return run_app(history, attach=run_id)


def print_attached(history: Path, run_id: str, heartbeat_ms: int) -> int:
    """The headless viewer: the same printer as `perftui run`, fed from the events file."""
    from perftui.cli.printer import Printer
    from perftui.engine import lifecycle

    printer = Printer(heartbeat_ms)
    follower = lifecycle.Follower(history, run_id)
    print(f"[perftui] attached to run {run_id}", file=sys.stderr, flush=True)
    try:
        while follower.finished is None:
            batch = follower.read()
            for event in batch:
                printer.handle(event)
            if not batch:
                time.sleep(TAIL_PERIOD_S)
    except KeyboardInterrupt:  # leaving never touches the run
        print(f"[perftui] detached from run {run_id} (it goes on)", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        follower.close()
    return follower.finished.exit_code
