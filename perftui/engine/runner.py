"""The engine process: the suite runs in a child process with its own (uv)loop.

Its parent is the run's owner (`perftui.runs`: the attached CLI or the detached host; a capacity
step's parent is the CLI or the TUI). Neither a UI's drawing nor the CLI's printing can steal time
from the clients whose latency we report: they do not share a GIL or an event loop. Events cross
back through a multiprocessing queue; a stop request crosses over as one byte of shared memory
(`_StopFlag`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from perftui.config import EXIT_COULD_NOT_RUN, RunConfig
from perftui.engine.events import Event, Log, RunFinished, RunStatus
from perftui.engine.lock import LockHeld, RunLock

PARENT_CHECK_S = 0.2
CLOSE_GRACE_S = 5.0  # at exit, how long an engine may take to store a stopped run


def _install_fast_loop() -> None:
    try:
        import uvloop
    except ImportError:  # uvloop is not available on Windows; asyncio's loop still works
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _engine(
    config: RunConfig, events: Any, stop_flag: Any, parent: int, run_id: str | None
) -> None:
    from perftui.engine.suite import (
        Suite,
    )  # imported in the child only: keeps the UI's startup light

    stop = asyncio.Event()
    claim = _HistoryClaim(config, parent, run_id)

    async def watch() -> None:
        """Turn the parent's stop request, or the parent's death, into a graceful stop.

        On the parent's death the lock is claimed at once (not when the run is written), so a
        run started in the next moment finds this engine saving and waits for it."""
        while not stop.is_set():
            if os.getppid() != parent:
                claim.may_write()
            if stop_flag.is_set() or os.getppid() != parent:
                stop.set()
                return
            await asyncio.sleep(PARENT_CHECK_S)

    watcher = asyncio.create_task(watch())
    suite = Suite(config, events.put, stop, claim.may_write, run_id)
    try:
        finished = await suite.run()
    except Exception as exc:  # a bug or an absurd device answer: keep the run, no traceback
        finished = suite.fail(f"engine error: {type(exc).__name__}: {exc}")
    finally:
        watcher.cancel()
    if config.write_history_db and finished.payload is not None and claim.may_write():
        try:
            from perftui.history.store import HistoryStore

            HistoryStore(
                config.history_dir, on_warning=lambda text: events.put(Log("warning", text))
            ).add_run(finished.payload)
        except Exception as exc:  # the files are written; a broken DB must not lose the run
            events.put(Log("error", f"could not store the run in the history database: {exc}"))
    events.put(finished)


class _HistoryClaim:
    """Whether the engine may still write to the history dir.

    The run lock is held by the parent (the CLI or the detached host; see `perftui.runs`). If the
    parent dies, the kernel frees that lock at once while this engine is still winding down; it
    then writes only if it can take the lock itself, so a run started meanwhile is never
    overwritten.
    """

    def __init__(self, config: RunConfig, parent: int, run_id: str | None = None) -> None:
        self.config = config
        self.parent = parent
        self.run_id = run_id
        self.lock: RunLock | None = None
        self.lost = False

    def may_write(self) -> bool:
        if self.lock is not None or os.getppid() == self.parent:
            return True
        if self.lost:  # another run took the dir: it stays theirs
            return False
        lock = RunLock(self.config.lock_path)
        try:
            lock.acquire(run_id=self.run_id, saving=True)
        except LockHeld:
            self.lost = True
            return False
        self.lock = lock  # held until this process exits
        return True


def _child_main(
    config: RunConfig, events: Any, stop_flag: Any, parent: int, run_id: str | None = None
) -> None:
    # Ctrl-C reaches the whole process group; only the parent decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop_flag.set())
    _install_fast_loop()
    asyncio.run(_engine(config, events, stop_flag, parent, run_id))
    _flush_events(events, parent)


def _flush_events(events: Any, parent: int) -> None:
    """Wait until the queue's pipe has taken every event, unless the parent is gone.

    Without a reader the pipe fills (64 KiB: a big run record or a few seconds of heartbeats)
    and `join_thread()` would block forever, leaving an orphaned engine behind a killed CLI.
    """
    events.close()
    joiner = threading.Thread(target=events.join_thread, daemon=True)
    joiner.start()
    while joiner.is_alive():
        joiner.join(PARENT_CHECK_S)
        if os.getppid() != parent:
            events.cancel_join_thread()  # nobody will read: exit without draining
            return


class _StopFlag:
    """The stop request shared with the engine: one byte of shared memory, and no lock.

    multiprocessing.Event guards its flag with a cross-process lock. A Ctrl-C landing while the
    CLI was inside Event.set() (the second of two quick Ctrl-C's) left that lock held for good:
    the engine's watcher froze in is_set() and the CLI hung at exit. One byte written once
    needs no lock.
    """

    def __init__(self, ctx: Any) -> None:
        self._value = ctx.RawValue("b", 0)

    def set(self) -> None:
        self._value.value = 1

    def is_set(self) -> bool:
        return bool(self._value.value)


class EngineProcess:
    """Start the engine, read its events, ask it to stop."""

    def __init__(self, config: RunConfig, run_id: str | None = None) -> None:
        """`run_id`: chosen by a detached host, which names its files before the run starts."""
        ctx = mp.get_context("spawn")
        self._events = ctx.Queue()
        self._stop = _StopFlag(ctx)
        self._process = ctx.Process(
            target=_child_main,
            args=(config, self._events, self._stop, os.getpid(), run_id),
            name="perftui-engine",
            daemon=True,
        )
        self.finished: RunFinished | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def start(self) -> None:
        self._process.start()
        atexit.register(self.close)

    def close(self, grace_s: float = CLOSE_GRACE_S) -> None:
        """Leave no engine behind and never block on one (runs at exit, however we exit).

        Without this, multiprocessing's exit hook SIGTERMs the daemon engine (which only asks it
        to stop) and joins it with no timeout, while the engine waits for us to read the events
        filling its pipe: a second Ctrl-C escaping the CLI's loop hung both processes forever.
        So: ask it to stop, keep draining its events while it stores the run, then kill it.
        """
        atexit.unregister(self.close)
        if not self._process.is_alive():
            return
        deadline = time.monotonic() + grace_s
        try:
            self._stop.set()
            while self._process.is_alive() and time.monotonic() < deadline:
                with contextlib.suppress(queue.Empty, OSError, EOFError, ValueError):
                    self._events.get(timeout=0.1)
        except KeyboardInterrupt:  # one more Ctrl-C: no more grace
            pass
        if self._process.is_alive():
            self._process.kill()
        self._process.join(1.0)

    def stop(self) -> None:
        """Ask for a graceful stop: the current phase ends early and the partial run is kept."""
        self._stop.set()

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()

    def poll(self, timeout: float | None = None) -> Event | None:
        """The next event, or None if none arrived within `timeout`."""
        if self.finished is not None:
            return None
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            if self._process.is_alive():
                return None
            try:  # a last event may still sit in the pipe behind the process's exit
                event = self._events.get(timeout=0.5)
            except queue.Empty:
                return self._died()
        if isinstance(event, RunFinished):
            self.finished = event
            self._process.join(timeout=5)
            self.close()
        return event

    def _died(self) -> RunFinished:
        self.close()
        code = self._process.exitcode
        self.finished = RunFinished(
            status=RunStatus.HARD_STOP,
            overall_pass=False,
            exit_code=EXIT_COULD_NOT_RUN,
            hard_stop_reason=f"engine process died (exit code {code})",
            files={},
            payload=None,
        )
        return self.finished

    def events(self) -> Iterator[Event]:
        """Every event until (and including) the final RunFinished."""
        while self.finished is None:
            event = self.poll(timeout=0.5)
            if event is not None:
                yield event
