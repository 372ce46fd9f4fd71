"""What a run needs outside the screen: the simulated device, the health probe, the lock and
the engine process.

None of this runs load in the UI's process: the engine and the simulated device are child
processes, and every blocking call here is made from a Textual thread worker, never the UI loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
from textual.app import App

from perftui.config import RunConfig
from perftui.engine.events import Event
from perftui.engine.lock import LockHeld, RunLock
from perftui.engine.runner import EngineProcess
from perftui.history.files import HistoryDirError, check_history_dir
from perftui.sim.device import SimOptions, SimProcess


def deliver(app: App[object], callback: Callable[..., object], *args: object) -> bool:
    """Run `callback` on the UI loop from a worker thread; False if the app has gone away."""
    try:
        app.call_from_thread(callback, *args)
    except RuntimeError:  # the app stopped while this worker was busy
        return False
    return True


class SessionError(RuntimeError):
    """The run cannot start (lock held, history dir unusable, device not started); one line."""


class SimDevice:
    """The built-in simulated device: started on first use, stopped when the app exits."""

    def __init__(self, options: SimOptions | None = None, preferred_port: int = 0) -> None:
        self.options = options or SimOptions()
        # The same port as last time when it is free: the target ("127.0.0.1:port") is how
        # history finds the previous run to compare with.
        self.preferred_port = preferred_port
        self._process: SimProcess | None = None
        self._guard = threading.Lock()
        self._closed = False

    def ensure(self) -> SimProcess:
        """The running device, started (about a second, in its own process) if needed."""
        with self._guard:
            if self._closed:  # a worker still running while the app exits: no new process
                raise SessionError("the app is closing")
            if self._process is None or not self._process.is_alive():
                if self._process is not None:
                    self._process.stop()
                self._process = self._start()
            return self._process

    def _start(self) -> SimProcess:
        ports = [self.preferred_port, 0] if self.preferred_port else [0]
        for port in ports:
            process = SimProcess(self.options, port=port)
            try:
                process.start()
            except OSError:
                if port:
                    continue  # taken by something else: any free port will do
                raise SessionError("the simulated device could not bind a port") from None
            except RuntimeError as exc:
                raise SessionError(f"the simulated device did not start: {exc}") from None
            return process
        raise SessionError("the simulated device did not start")

    def stop(self) -> None:
        """For good: called when the app exits."""
        with self._guard:
            self._closed = True
            if self._process is not None:
                self._process.stop()
                self._process = None


def probe(base_url: str, path: str, timeout: float = 2.0) -> tuple[bool, str]:
    """One request like the engine's health probe: any status 200–499 means the device answers."""
    start = time.perf_counter()
    try:
        response = httpx.get(base_url + path, timeout=timeout)
    except httpx.HTTPError as exc:
        return False, f"no answer from {base_url}{path}: {type(exc).__name__}"
    took = (time.perf_counter() - start) * 1000
    healthy = 200 <= response.status_code < 500
    return healthy, f"{base_url}{path} answered {response.status_code} in {took:.0f} ms"


class RunSession:
    """One run: takes the CLI's lock, drives the engine process, releases the lock at the end."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self._lock = RunLock(config.lock_path)
        self.engine: EngineProcess | None = None

    def start(self) -> None:
        """Check the history dir, take the lock and start the engine, or raise SessionError."""
        try:
            check_history_dir(self.config.history_dir)
            self._lock.acquire()
        except (HistoryDirError, LockHeld) as exc:
            raise SessionError(str(exc)) from None
        self.engine = EngineProcess(self.config)
        try:
            self.engine.start()
        except Exception:
            self._lock.release()
            raise

    def poll(self, timeout: float) -> Event | None:
        assert self.engine is not None
        return self.engine.poll(timeout)

    @property
    def finished(self) -> bool:
        return self.engine is None or self.engine.finished is not None

    def stop(self) -> None:
        """Graceful: the current phase ends early and the partial run is stored as stopped."""
        if self.engine is not None:
            self.engine.stop()

    def close(self) -> None:
        self._lock.release()
