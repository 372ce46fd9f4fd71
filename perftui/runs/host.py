"""A detached run: the process that owns one run, in its own session, outliving its viewers.

`launch()` starts `python -m perftui.runs.host` with `start_new_session=True` (no controlling
terminal, so a closed SSH session or terminal sends it no SIGHUP) and hands it the config on its
stdin. The host is a `RunOwner` (`perftui.runs.owner`): it takes the run lock, starts the
simulated device if the run targets it, starts the engine (`EngineProcess`, still a child with its
own loop), and writes every event to
`HISTORY/live/<run_id>.events` (see `perftui.engine.stream`) for whoever watches. It answers the
launcher with one line on stdout: `ok RUN_ID PID`, or `error MESSAGE` (lock held, dir unusable,
metrics port taken). With `--metrics-port` the host serves the run's metrics too: it reads the
events.

SIGTERM/SIGINT stop the run gracefully (the partial run is kept); a second one kills the engine.
If the engine dies uncleanly, what its last `latest.partial.json` held is stored as "died".
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perftui.config import EXIT_COULD_NOT_RUN, RunConfig
from perftui.engine import record, stream
from perftui.engine.events import Event, Log
from perftui.engine.runner import EngineProcess
from perftui.runs.owner import CouldNotRun, RunOwner, StopSignals, metrics_exporter

if TYPE_CHECKING:
    from perftui.exporter import Exporter

HANDSHAKE_TIMEOUT_S = 60.0


class LaunchError(RuntimeError):
    """The detached run could not start (the host said why); one line for the user."""


@dataclass(slots=True)
class Launched:
    run_id: str
    pid: int
    events: Path


def launch(
    config: RunConfig, use_sim: bool = False, reap: bool = False, sim_options: Any = None
) -> Launched:
    """Start a detached run and return once it holds the lock and writes its events file.

    `sim_options`: the `SimOptions` of the simulated device the host starts (`use_sim`).

    `reap`: wait for the host in a thread, for a long-lived launcher (the TUI) that would
    otherwise keep it as a zombie after it ends.
    """
    run_id = record.new_run_id(datetime.now(UTC))
    stream.live_dir(config.history_dir).mkdir(parents=True, exist_ok=True)
    log_path = stream.live_dir(config.history_dir) / f"{run_id}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "perftui.runs.host"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(pickle.dumps((config, run_id, use_sim, sim_options)))
        proc.stdin.close()
    except OSError:
        pass
    answer = _read_line(proc.stdout, HANDSHAKE_TIMEOUT_S)
    proc.stdout.close()
    if reap:
        threading.Thread(target=proc.wait, daemon=True).start()
    if answer.startswith("ok "):
        with contextlib.suppress(OSError):
            if log_path.stat().st_size == 0:
                log_path.unlink()
        return Launched(run_id, proc.pid, stream.events_path(config.history_dir, run_id))
    if proc.poll() is None and not answer:
        proc.kill()
    message = answer.removeprefix("error ").strip()
    if not message:
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        message = f"the run's process did not start ({tail[-1] if tail else 'no output'})"
    raise LaunchError(message)


def _read_line(pipe: Any, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    data = b""
    fd = pipe.fileno()
    while b"\n" not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").split("\n", 1)[0]


def _answer(text: str) -> None:
    """The one line the launcher waits for; then stdout goes nowhere (the launcher may be gone)."""
    with contextlib.suppress(OSError):
        os.write(1, (text.replace("\n", " ") + "\n").encode())
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def host(config: RunConfig, run_id: str, use_sim: bool, sim_options: Any = None) -> int:
    """Own one run until it ends; the exit code is the run's."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a closing terminal must not stop the run
    notes: list[str] = []
    owner = RunOwner(config, run_id, use_sim=use_sim, sim_options=sim_options, say=notes.append)
    exporter = None
    with StopSignals() as signals:
        try:
            try:
                owner.claim(sim_port=config.port)
                exporter = metrics_exporter(config, notes.append)
            except CouldNotRun as exc:
                _answer(f"error {exc}")
                return EXIT_COULD_NOT_RUN
            writer = stream.EventWriter(config, run_id, os.getpid())
            _answer(f"ok {run_id} {os.getpid()}")
            writer.write([Log("info", text) for text in notes])  # the device's address, a wait
            engine = owner.engine()
            try:
                return owner.drive(engine, _writing(writer, engine, exporter), signals).exit_code
            finally:
                writer.close()
        except Exception as exc:  # never a traceback the user cannot see: answer, then log it
            _answer(f"error {type(exc).__name__}: {exc}")
            raise
        finally:
            if exporter is not None:
                exporter.close()
            owner.release()


def _writing(
    writer: stream.EventWriter, engine: EngineProcess, exporter: Exporter | None
) -> Callable[[list[Event]], None]:
    """Events to the events file, which names the engine's pid once it has one, and to a
    metrics port's collector (`--metrics-port`)."""

    def write(batch: list[Event]) -> None:
        if writer.status["engine_pid"] is None and engine.pid:
            writer.set_engine_pid(engine.pid)
        if exporter is not None:
            exporter.handle(batch)
        writer.write(batch)

    return write


def main() -> int:
    config, run_id, use_sim, sim_options = pickle.load(sys.stdin.buffer)
    with contextlib.suppress(OSError):
        os.close(0)
    return host(config, run_id, use_sim, sim_options)


if __name__ == "__main__":
    sys.exit(main())
