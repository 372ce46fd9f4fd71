"""What a run needs outside the screen: the simulated device, the health probe, and the run's
own detached process (launched, or attached to) whose events file the screen follows.

None of this runs load in the UI's process: the run, its engine and the simulated device are
other processes, and every blocking call here is made from a Textual thread worker, never the
UI loop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable

import httpx
from textual.app import App

from perftui.config import RunConfig
from perftui.engine import stream
from perftui.engine.device import certificate_problem
from perftui.engine.events import Event
from perftui.history.files import HistoryDirError, check_history_dir
from perftui.host import LaunchError, launch
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
        self._lent = False

    def ensure(self) -> SimProcess:
        """The running device, started (about a second, in its own process) if needed."""
        with self._guard:
            if self._closed:  # a worker still running while the app exits: no new process
                raise SessionError("the app is closing")
            if self._lent:  # a probe now would take the port back from the run's own device
                raise SessionError("the simulated device is serving the run in progress")
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

    def release(self) -> int:
        """Lend the port to a detached run, which serves its own device on it (so the run
        outlives the app): stop ours until `reclaim()`, and return the port."""
        with self._guard:
            self._lent = True
            if self._process is not None:
                self.preferred_port = self._process.port or self.preferred_port
                self._process.stop()
                self._process = None
            return self.preferred_port

    def reclaim(self, port: int = 0) -> None:
        """The run is over (its device stopped before its last event): ours may start again,
        on the port the run's device had (`port`, when known), so the next run is comparable."""
        with self._guard:
            self._lent = False
            self.preferred_port = port or self.preferred_port

    def stop(self) -> None:
        """For good: called when the app exits."""
        with self._guard:
            self._closed = True
            if self._process is not None:
                self._process.stop()
                self._process = None


def probe(
    base_url: str, path: str, timeout: float = 2.0, tls: ssl.SSLContext | None = None
) -> tuple[bool, str]:
    """One request like the engine's health probe: any status 200–499 means the device answers.
    `tls`: the run's TLS settings' context (an https device with its own certificate)."""
    start = time.perf_counter()
    try:
        response = httpx.get(base_url + path, timeout=timeout, verify=tls or True)
    except httpx.HTTPError as exc:
        if problem := certificate_problem(exc):
            return False, f"{base_url}{path}: certificate not trusted: {problem}"
        return False, f"no answer from {base_url}{path}: {type(exc).__name__}"
    took = (time.perf_counter() - start) * 1000
    healthy = 200 <= response.status_code < 500
    return healthy, f"{base_url}{path} answered {response.status_code} in {took:.0f} ms"


class RunSession:
    """One run seen from the TUI: started detached (`perftui.host`), or attached to by id.

    The TUI never owns the run: it launches it in its own session and tails its events file like
    any other viewer, so quitting the TUI (or its terminal dying) leaves the run going.
    """

    def __init__(
        self,
        config: RunConfig,
        use_sim: bool = False,
        sim: SimDevice | None = None,
        attach: str | None = None,
    ) -> None:
        self.config = config
        self.use_sim = use_sim
        self.sim = sim
        self.run_id = attach
        self.pid: int | None = None
        self._follower: stream.Follower | None = None
        self._pending: deque[Event] = deque()

    def start(self) -> None:
        """Launch the run (or find the one to attach to), or raise SessionError."""
        if self.run_id is None:
            try:
                check_history_dir(self.config.history_dir)
            except HistoryDirError as exc:
                raise SessionError(str(exc)) from None
            if self.use_sim and self.sim is not None:
                # The run's own process serves the device: free the port Setup's probe used.
                self.config.port = self.sim.release()
            try:
                launched = launch(self.config, use_sim=self.use_sim, reap=True)
            except LaunchError as exc:
                if self.use_sim and self.sim is not None:
                    self.sim.reclaim()
                raise SessionError(str(exc)) from None
            self.run_id, self.pid = launched.run_id, launched.pid
            status = stream.read_status(self.config.history_dir, launched.run_id) or {}
            self.config.port = int((status.get("config") or {}).get("port") or self.config.port)
        else:
            status = stream.read_status(self.config.history_dir, self.run_id)
            self.pid = status.get("pid") if status else None
        self._follower = stream.Follower(self.config.history_dir, self.run_id)

    def poll(self, timeout: float) -> Event | None:
        """The next event, or None if none arrived within `timeout`."""
        assert self._follower is not None
        if not self._pending:
            self._pending.extend(self._follower.read())
            if not self._pending:
                time.sleep(timeout)
                self._pending.extend(self._follower.read())
        return self._pending.popleft() if self._pending else None

    @property
    def finished(self) -> bool:
        return self._follower is None or (self._follower.finished is not None and not self._pending)

    def stop(self) -> None:
        """Graceful: the current phase ends early and the partial run is stored as stopped."""
        if isinstance(self.pid, int) and stream.pid_alive(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)

    def close(self) -> None:
        """Stop reading; the run goes on by itself (its device too, if it is the sim)."""
        if self._follower is not None:
            self._follower.close()
            if self.use_sim and self.sim is not None and self._follower.finished is not None:
                self.sim.reclaim(self.config.port)
