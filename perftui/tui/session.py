"""What a run needs outside the screen: the health probe, and the run's own detached process
(launched through the run owner, `perftui.runs`, or attached to) whose events file the screen
follows. The simulated device the TUI keeps is the run owner's `SimDevice`.

None of this runs load in the UI's process: the run, its engine and the simulated device are
other processes, and every blocking call here is made from a Textual thread worker, never the
UI loop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import time
from collections import deque
from typing import NamedTuple

import httpx

from perftui.config import RunConfig
from perftui.engine import lifecycle, stream
from perftui.engine.device import certificate_problem
from perftui.engine.events import Event
from perftui.runs.device import SimDevice
from perftui.runs.owner import CouldNotRun, detach

__all__ = ["ProbeAnswer", "RunSession", "SessionError", "SimDevice", "probe"]


# A run that cannot start, as the run owner says it (one line); the TUI's screens catch it.
SessionError = CouldNotRun


class ProbeAnswer(NamedTuple):
    """A probe's verdict (the engine's rule: any status 200–499 answers), its line, its status
    (None when nothing answered)."""

    healthy: bool
    text: str
    status: int | None = None


def probe(
    base_url: str, path: str, timeout: float = 2.0, tls: ssl.SSLContext | None = None
) -> ProbeAnswer:
    """One request like the engine's health probe: any status 200–499 means the device answers.
    `tls`: the run's TLS settings' context (an https device with its own certificate).

    Whatever goes wrong is the answer's text, never an exception: httpx raises `InvalidURL` (not
    an `HTTPError`) for an address it refuses, and a name may not resolve."""
    start = time.perf_counter()
    try:
        response = httpx.get(base_url + path, timeout=timeout, verify=tls or True)
    except (httpx.HTTPError, httpx.InvalidURL, ValueError, OSError) as exc:
        if isinstance(exc, httpx.HTTPError) and (problem := certificate_problem(exc)):
            return ProbeAnswer(False, f"{base_url}{path}: certificate not trusted: {problem}")
        return ProbeAnswer(False, f"no answer from {base_url}{path}: {type(exc).__name__}")
    took = (time.perf_counter() - start) * 1000
    healthy = 200 <= response.status_code < 500
    text = f"{base_url}{path} answered {response.status_code} in {took:.0f} ms"
    return ProbeAnswer(healthy, text, response.status_code)


class RunSession:
    """One run seen from the TUI: started detached (`perftui.runs.host`), or attached to by id.

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
        self._follower: lifecycle.Follower | None = None
        self._pending: deque[Event] = deque()

    def start(self) -> None:
        """Launch the run (or find the one to attach to), or raise SessionError."""
        if self.run_id is None:
            # The run's own process serves the device: the owner frees the port Setup's probe used.
            launched = detach(
                self.config,
                use_sim=self.use_sim,
                device=self.sim if self.use_sim else None,
                reap=True,
            )
            self.run_id, self.pid = launched.run_id, launched.pid
            status = lifecycle.read_status(self.config.history_dir, launched.run_id) or {}
            self.config.port = int((status.get("config") or {}).get("port") or self.config.port)
        else:
            status = lifecycle.read_status(self.config.history_dir, self.run_id)
            self.pid = status.get("pid") if status else None
        self._follower = lifecycle.Follower(self.config.history_dir, self.run_id)

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
