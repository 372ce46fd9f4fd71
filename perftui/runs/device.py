"""The TUI's simulated device: one long-lived process that Setup's probe and capacity searches
use, lent to a detached run (which serves its own device on the same port) while the run goes.

Only the run owner's package starts simulated devices (see `perftui.runs.owner`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from perftui.runs.owner import CouldNotRun
from perftui.sim.options import SimOptions

if TYPE_CHECKING:
    from perftui.sim.device import SimProcess


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
                raise CouldNotRun("the app is closing")
            if self._lent:  # a probe now would take the port back from the run's own device
                raise CouldNotRun("the simulated device is serving the run in progress")
            if self._process is None or not self._process.is_alive():
                if self._process is not None:
                    self._process.stop()
                self._process = self._start()
            return self._process

    def _start(self) -> SimProcess:
        ports = [self.preferred_port, 0] if self.preferred_port else [0]
        from perftui.sim.device import SimProcess  # aiohttp: only when a device starts

        for port in ports:
            process = SimProcess(self.options, port=port)
            try:
                process.start()
            except OSError:
                if port:
                    continue  # taken by something else: any free port will do
                raise CouldNotRun("the simulated device could not bind a port") from None
            except RuntimeError as exc:
                raise CouldNotRun(f"the simulated device did not start: {exc}") from None
            return process
        raise CouldNotRun("the simulated device did not start")

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
