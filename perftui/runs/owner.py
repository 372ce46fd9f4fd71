"""The run owner: the one place that checks a history dir, takes the run lock, starts the
simulated device, drives the engine, stores a died run, and releases all of it in one order.

Every face goes through here: `perftui run` (attached, `RunOwner.drive`), the detached host
(`perftui.runs.host`, which is `RunOwner` in its own session), `run --detach` and the TUI's Start
(`detach`), and capacity search from the CLI and the TUI (`search_capacity`). Nothing else
imports the lock or the simulator starter (an import-linter contract in pyproject.toml).

Release order: the simulated device stops, then the lock goes. A viewer that sees the lock free
may start the next run at once, on the same port (the target that makes runs comparable).
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from perftui import validate
from perftui.config import RunConfig
from perftui.engine import lifecycle
from perftui.engine.events import Event, RunFinished
from perftui.engine.lock import LockHeld, RunLock
from perftui.history.files import HistoryDirError, check_history_dir
from perftui.runs import CouldNotRun

if TYPE_CHECKING:
    from perftui.engine.capacity import (
        CapacityGates,
        CapacityResult,
        Measure,
        SearchPlan,
        Step,
    )
    from perftui.engine.runner import EngineProcess
    from perftui.exporter import Exporter
    from perftui.runs.device import SimDevice
    from perftui.runs.host import Launched
    from perftui.sim.device import SimProcess
    from perftui.sim.options import SimOptions

# How long a starting run waits for the engine of a killed run to store its partial run (it
# holds the lock while it does; usually well under a second, a large record on a slow disk more).
SAVE_WAIT_S = 15.0
SAVE_POLL_S = 0.1
POLL_S = 0.2
BATCH = 200


def _to_stderr(text: str) -> None:
    print(f"perftui: {text}", file=sys.stderr, flush=True)


def check_can_run(config: RunConfig, resolve_host: bool = False) -> None:
    """The checks before any load: the host is known (when asked) and the history dir usable."""
    if resolve_host:
        try:
            validate.resolve_host(config.host)
        except validate.UnresolvableHost as exc:
            raise CouldNotRun(str(exc)) from None
    try:
        check_history_dir(config.history_dir)
    except HistoryDirError as exc:
        raise CouldNotRun(str(exc)) from None


def metrics_exporter(config: RunConfig, say: Callable[[str], None] = _to_stderr) -> Exporter | None:
    """`--metrics-port`: the run's metrics server, served by the process that reads the events
    (an attached run, or the detached host), or None; a port that cannot be listened on is
    CouldNotRun, before any load."""
    if config.metrics_port is None:
        return None
    from perftui.exporter import Exporter

    try:
        exporter = Exporter(config.metrics_port, config.metrics_bind, config.target)
    except OSError as exc:
        raise CouldNotRun(
            f"--metrics-port {config.metrics_port} on {config.metrics_bind}: {exc.strerror or exc}"
        ) from None
    say(f"metrics at http://{config.metrics_bind}:{exporter.port}/metrics")
    return exporter


def take_lock(
    config: RunConfig, run_id: str | None = None, say: Callable[[str], None] = _to_stderr
) -> RunLock:
    """The run lock, or CouldNotRun naming its holder.

    A holder that is the engine of a killed run, storing its partial run, is waited for (up to
    SAVE_WAIT_S, saying so once): a run started in that moment starts after it, not exit 3.
    """
    lock = RunLock(config.lock_path)
    deadline: float | None = None
    while True:
        try:
            lock.acquire(run_id=run_id)
            return lock
        except LockHeld as exc:
            if not exc.holder.get("saving"):
                raise CouldNotRun(str(exc)) from None
            if deadline is None:
                deadline = time.monotonic() + SAVE_WAIT_S
                run = f"run {exc.holder['run_id']}" if exc.holder.get("run_id") else "a killed run"
                say(
                    f"waiting for the engine of {run} (pid {exc.holder.get('pid')}) to store "
                    f"its partial run (up to {SAVE_WAIT_S:g} s)…"
                )
            elif time.monotonic() >= deadline:
                raise CouldNotRun(str(exc)) from None
            time.sleep(SAVE_POLL_S)


class Stopper(Protocol):
    def stop(self) -> None: ...

    def kill(self) -> None: ...


class StopSignals:
    """SIGINT/SIGTERM while a run goes: the first stops `target` gracefully (the partial run is
    kept), the second kills it. The handler only acts on the target (a shared byte, a SIGKILL)
    and counts: raising KeyboardInterrupt instead could land anywhere, even inside the handling
    of the first one."""

    def __init__(self, target: Stopper | None = None) -> None:
        self.target = target
        self.count = 0
        self._previous: dict[int, Any] = {}

    def _on(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.target is not None:
            self.target.stop() if self.count == 1 else self.target.kill()

    def __enter__(self) -> StopSignals:
        self._previous = {s: signal.signal(s, self._on) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class RunOwner:
    """One run's hold on its history dir and device, from the checks to the release.

    `use_sim`: serve the simulated device for this run (stopped at release); `device`: the TUI's
    long-lived simulated device, borrowed (started if needed, never stopped here).
    `say`: where the owner's own notes go (the simulated device's address, a wait).
    """

    def __init__(
        self,
        config: RunConfig,
        run_id: str | None = None,
        use_sim: bool = False,
        sim_options: SimOptions | None = None,
        device: SimDevice | None = None,
        say: Callable[[str], None] = _to_stderr,
        resolve_host: bool = False,
    ) -> None:
        self.config = config
        self.run_id = run_id
        self.use_sim = use_sim
        self.sim_options = sim_options
        self.device = device
        self.say = say
        self.resolve_host = resolve_host
        self.lock: RunLock | None = None
        self.sim: SimProcess | None = None

    def claim(self, sim_port: int = 0) -> None:
        """Check, lock, start the device (on `sim_port` if it is free); CouldNotRun if not."""
        check_can_run(self.config, self.resolve_host and not self.use_sim)
        self.lock = take_lock(self.config, self.run_id, self.say)
        try:
            if self.device is not None:
                self.config.port = self.device.ensure().port
            elif self.use_sim:
                from perftui.sim.device import serve_run

                self.sim = serve_run(self.config, self.sim_options, port=sim_port)
                self.say(f"simulated device at {self.sim.base_url}")
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Device first, then the lock; safe to call again."""
        if self.sim is not None:
            self.sim.stop()
            self.sim = None
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def __enter__(self) -> RunOwner:
        self.claim()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def engine(self) -> EngineProcess:
        from perftui.engine.runner import EngineProcess

        return EngineProcess(self.config, run_id=self.run_id)

    def drive(
        self,
        engine: EngineProcess,
        on_events: Callable[[list[Event]], None],
        signals: StopSignals,
        on_signal: Callable[[int], None] | None = None,
    ) -> RunFinished:
        """Engine events to `on_events` in batches until the run ends; returns its end.

        Everything is released before the final event is handed on (a viewer that sees the
        end may start the next run). An engine that died without a word (SIGKILL, OOM) leaves
        its last `latest.partial.json`: that is stored once, as "died", and ends the stream.
        """
        signals.target = engine
        engine.start()
        told = 0
        if signals.count:  # a stop asked for before there was an engine
            engine.stop()
        while engine.finished is None:
            batch = [] if (event := engine.poll(timeout=POLL_S)) is None else [event]
            while batch and not isinstance(batch[-1], RunFinished) and len(batch) < BATCH:
                if (event := engine.poll(timeout=0)) is None:
                    break
                batch.append(event)
            if signals.count != told and on_signal is not None:
                told = signals.count
                on_signal(told)
            finished = engine.finished
            if finished is not None and finished.payload is None and finished.status == "hard_stop":
                batch.remove(finished)
                on_events(batch)
                return self._died(finished.hard_stop_reason or "engine died", on_events)
            if finished is not None:
                self.release()
            on_events(batch)
        assert engine.finished is not None
        return engine.finished

    def _died(self, why: str, on_events: Callable[[list[Event]], None]) -> RunFinished:
        """Store the run so far as "died" (once), release, then end the event stream with it
        (handed on like any final event; written here if the face could not write it)."""
        assert self.run_id is not None
        payload = lifecycle.store_died(self.config.history_dir, self.run_id, why)
        self.release()
        finished = lifecycle.died(self.run_id, why, payload)
        on_events([finished])
        return lifecycle.end_stream(self.config.history_dir, finished)


def new_run_id() -> str:
    from perftui.engine.record import new_run_id as make

    return make(datetime.now(UTC))


def detach(
    config: RunConfig,
    use_sim: bool = False,
    sim_options: SimOptions | None = None,
    device: SimDevice | None = None,
    resolve_host: bool = False,
    reap: bool = False,
) -> Launched:
    """Start the run in its own session (`perftui.runs.host` owns it there); CouldNotRun if the
    checks fail or the host says why it cannot start. `device`: the TUI's simulated device,
    whose port the run's own device takes over until the run ends (`device.reclaim`)."""
    from perftui.runs.host import LaunchError, launch

    check_can_run(config, resolve_host and not use_sim)
    if use_sim and device is not None:
        config.port = device.release()
    try:
        return launch(config, use_sim=use_sim, sim_options=sim_options, reap=reap)
    except LaunchError as exc:
        if use_sim and device is not None:
            device.reclaim()
        raise CouldNotRun(str(exc)) from None


def search_capacity(
    owner: RunOwner,
    measure: Measure,
    gates: CapacityGates,
    plan: SearchPlan,
    on_step: Callable[[Step], object],
) -> tuple[CapacityResult, str | None]:
    """A capacity search under `owner`'s claim; the search is stored when it took a step.

    Returns the result and the stored run id (None when no step ran)."""
    from perftui.engine.capacity import capacity_record, search
    from perftui.history.store import HistoryStore, StoreError

    started = datetime.now(UTC)
    with owner:
        result = search(measure, gates, plan, on_step)
        if not result.steps:
            return result, None
        payload = capacity_record(owner.config, gates, plan, result, started)
        try:
            return result, HistoryStore(owner.config.history_dir).add_run(payload)
        except StoreError as exc:
            raise CouldNotRun(f"the search was not stored: {exc}") from None
