"""A detached run: the process that owns one run, in its own session, outliving its viewers.

`launch()` starts `python -m perftui.host` with `start_new_session=True` (no controlling
terminal, so a closed SSH session or terminal sends it no SIGHUP) and hands it the config on its
stdin. The host takes the run lock itself, starts the simulated device if the run targets it,
starts the engine (`EngineProcess`, still a child with its own loop), and writes every event to
`HISTORY/live/<run_id>.events` (see `perftui.engine.stream`) for whoever watches. It answers the
launcher with one line on stdout: `ok RUN_ID PID`, or `error MESSAGE` (lock held, dir unusable).

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
from typing import Any

from perftui.config import EXIT_COULD_NOT_RUN, RunConfig
from perftui.engine import record, stream
from perftui.engine.events import Log, RunFinished
from perftui.engine.lock import LockHeld, RunLock
from perftui.engine.runner import EngineProcess
from perftui.history.files import HistoryDirError, check_history_dir

HANDSHAKE_TIMEOUT_S = 60.0
POLL_S = 0.2


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
            [sys.executable, "-m", "perftui.host"],
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


class _Signals:
    """SIGTERM/SIGINT counted by the handler, acted on by the loop (never inside a handler)."""

    def __init__(self) -> None:
        self.count = 0
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a closing terminal must not stop the run

    def _on(self, signum: int, frame: Any) -> None:
        self.count += 1


def _answer(text: str) -> None:
    """The one line the launcher waits for; then stdout goes nowhere (the launcher may be gone)."""
    with contextlib.suppress(OSError):
        os.write(1, (text.replace("\n", " ") + "\n").encode())
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def host(config: RunConfig, run_id: str, use_sim: bool, sim_options: Any = None) -> int:
    """Own one run until it ends; the exit code is the run's."""
    signals = _Signals()
    try:
        check_history_dir(config.history_dir)
    except HistoryDirError as exc:
        _answer(f"error {exc}")
        return EXIT_COULD_NOT_RUN
    lock = RunLock(config.lock_path)
    try:
        lock.acquire(run_id=run_id)
    except LockHeld as exc:
        _answer(f"error {exc}")
        return EXIT_COULD_NOT_RUN
    sim = exporter = None
    try:
        if use_sim:
            from perftui.sim.device import serve_run

            sim = serve_run(config, sim_options, port=config.port)
        if config.metrics_port is not None:
            from perftui.exporter import start_exporter

            try:
                exporter = start_exporter(config.metrics_port, config.metrics_bind, config.target)
            except OSError as exc:
                _answer(f"error --metrics-port {config.metrics_port}: {exc.strerror or exc}")
                return EXIT_COULD_NOT_RUN
        writer = stream.EventWriter(config, run_id, os.getpid())
        _answer(f"ok {run_id} {os.getpid()}")
        if sim is not None:
            writer.write([Log("info", f"simulated device at {sim.base_url}")])
        engine = EngineProcess(config, run_id=run_id)

        def release() -> None:
            """Free what the run held (device port, lock) before viewers learn it ended."""
            if sim is not None:
                sim.stop()
            lock.release()

        return _drive(engine, writer, signals, release, config, run_id, exporter)
    except Exception as exc:  # never a traceback the user cannot see: answer, then log it
        _answer(f"error {type(exc).__name__}: {exc}")
        raise
    finally:
        if exporter is not None:
            exporter.close()
        if sim is not None:
            sim.stop()
        lock.release()


def _drive(
    engine: EngineProcess,
    writer: stream.EventWriter,
    signals: _Signals,
    release: Callable[[], None],
    config: RunConfig,
    run_id: str,
    exporter: Any = None,
) -> int:
    """Events from the engine to the events file (and a metrics port's collector). The lock
    and the simulated device's port are released before the final event is written: a viewer
    that sees the run end may start the next one at once, on the same port (the target that
    makes runs comparable)."""
    told = 0
    engine.start()
    writer.set_engine_pid(engine.pid)
    try:
        while engine.finished is None:
            if signals.count != told:
                told = signals.count
                engine.stop() if told == 1 else engine.kill()
            batch = []
            event = engine.poll(timeout=POLL_S)
            while event is not None:
                batch.append(event)
                if isinstance(event, RunFinished) or len(batch) >= 200:
                    break
                event = engine.poll(timeout=0)
            finished = next((e for e in batch if isinstance(e, RunFinished)), None)
            if finished is not None and finished.payload is None and finished.status == "hard_stop":
                # The engine died without a word (SIGKILL, OOM): keep what it had stored.
                batch.remove(finished)
                writer.write(batch)
                died = stream.mark_died(
                    config.history_dir, run_id, finished.hard_stop_reason or "engine died"
                )
                return died.exit_code
            if finished is not None:
                release()
            if exporter is not None:
                exporter.handle(batch)
            writer.write(batch)
    finally:
        writer.close()
    assert engine.finished is not None
    return engine.finished.exit_code


def main() -> int:
    config, run_id, use_sim, sim_options = pickle.load(sys.stdin.buffer)
    with contextlib.suppress(OSError):
        os.close(0)
    return host(config, run_id, use_sim, sim_options)


if __name__ == "__main__":
    sys.exit(main())
