"""The TUI's services, which the app is built from (`tui.factory.create_app`): the history (every
store read and write, every comparison, the files of runs in progress) and the run owner as the
TUI uses it. Screens and widgets reach the store and the analysis only through here (an
import-linter contract), and the types they draw come from here too.

Nothing here imports Textual. Every `HistoryService` call blocks (file reads, the store's file
lock, which a detached run's host may hold for seconds, a 1 000-resample bootstrap), so each
refuses to run on an event loop: the app and its screens make them from thread workers only,
and a call that slipped onto the UI loop fails loudly in the tests instead of freezing a user's
screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import Timeout

from perftui import verdicts
from perftui.analysis import reports
from perftui.analysis.comparison import Comparison, Row
from perftui.analysis.curves import CURVE
from perftui.analysis.thresholds import ConfigError, RegressionThresholds
from perftui.config import RunConfig, load_thresholds
from perftui.engine import eventjson, lifecycle, stream
from perftui.engine.capacity import CapacityGates, SearchPlan
from perftui.engine.schema import IndexRow, LiveStatus, RunRecord
from perftui.history.files import atomic_write_text
from perftui.history.store import HistoryStore, StoreError
from perftui.runs.device import SimDevice
from perftui.tui.session import RunSession, SessionError
from perftui.tui.settings import SIM_DEVICE
from perftui.verdicts import CompareView

__all__ = [
    "CURVE",
    "CompareView",
    "Comparer",
    "Comparison",
    "HistoryService",
    "OnUILoop",
    "Row",
    "RunService",
    "SessionError",
    "StartInfo",
    "StoreError",
    "write_report",
]

# A against B with the noise sample by hand (None: the comparison service picks it).
Comparer = Callable[[RunRecord, RunRecord, str | Sequence[str] | None], CompareView]


class OnUILoop(RuntimeError):
    """A blocking history call made on an event loop (it belongs in a thread worker)."""


def _off_the_loop(what: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return  # a worker thread (or plain code): blocking is fine here
    raise OnUILoop(f"{what} blocks: make it from a thread worker, not the UI loop")


@dataclass(frozen=True, slots=True)
class StartInfo:
    """What the app reads once at start-up: the targets of stored runs (newest first, the
    simulated device's left out) and the port of the newest simulated-device run (0: none)."""

    targets: list[str]
    sim_port: int


@dataclass(frozen=True, slots=True)
class Attach:
    """A run asked for by id: its config while it goes on, else its record (None: none left)."""

    config: RunConfig | None = None
    record: RunRecord | None = None


def write_report(comparison: Comparison, runs: tuple[RunRecord, RunRecord], path: Path) -> str:
    """Write a comparison's report, its format from the file's extension (written whole, then
    renamed and synced); the line to show. Raises ValueError for another extension and OSError
    when it cannot be written."""
    _off_the_loop("writing a report")
    if path.suffix.lower() in (".html", ".htm"):
        text = reports.comparison_html(comparison, runs)
    elif path.suffix.lower() in (".md", ".markdown", ".txt"):
        text = reports.comparison_markdown(comparison)
    elif path.suffix.lower() == ".json":
        text = reports.comparison_json(comparison)
    else:
        raise ValueError(f"{path.name}: use .md, .json or .html")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return f"report written to {path}"


class HistoryService:
    """Every store and comparison call of the TUI, for one history dir. Blocking, every one."""

    def __init__(
        self,
        store: HistoryStore,
        compare: Comparer | None = None,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        """`compare`: the comparison service (default: `verdicts.compare_view` with this
        history's thresholds); `on_warning` hears what is said but stops nothing (a bad
        thresholds file); the app sets it to a notification."""
        self.store = store
        self.dir = store.dir
        self._compare = compare
        self.on_warning = on_warning or (lambda _text: None)
        # One store call at a time: workers share the store, whose shard cache is not
        # thread-safe. A write waiting for the file lock does not hold it (reads go on).
        self._guard = threading.RLock()

    @contextlib.contextmanager
    def _using(self, what: str) -> Iterator[None]:
        _off_the_loop(what)
        with self._guard:
            yield

    # ----- reads -------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Load the statistics library now, while Setup is filled in: the first comparison
        (a run's "vs previous", Compare) would otherwise wait ~0.6 s for it."""
        _off_the_loop("loading the statistics library")
        importlib.import_module("scipy.stats")

    def start_info(self) -> StartInfo:
        """Every stored run is looked at, so a device last used in an imported legacy run
        (older than hundreds of simulator runs) is still offered; a damaged history is none."""
        try:
            with self._using("reading the history"):
                summaries = self.store.list_runs()
        except StoreError as exc:
            self.on_warning(str(exc))
            return StartInfo([], 0)
        targets = [
            str(s["target"]) for s in summaries if s.get("target") and s.get("device") != SIM_DEVICE
        ]
        sim_port = 0
        for s in summaries:
            port = str(s.get("target") or "").rpartition(":")[2]
            if s.get("device") == SIM_DEVICE and port.isdigit():
                sim_port = int(port)
                break
        return StartInfo(list(dict.fromkeys(targets)), sim_port)

    def runs(self) -> list[IndexRow]:
        """Every stored run's summary, newest first."""
        with self._using("listing runs"):
            return self.store.list_runs()

    def history(self) -> tuple[list[IndexRow], dict[str, str]]:
        """What History shows: every summary and the baseline marks."""
        with self._using("reading the history"):
            return self.store.list_runs(), self.store.baselines()

    def record(self, run_id: str) -> RunRecord:
        with self._using("reading a run"):
            return self.store.get(run_id)

    def records(self, *run_ids: str) -> list[RunRecord]:
        with self._using("reading runs"):
            return [self.store.get(run_id) for run_id in run_ids]

    def latest_two(self) -> tuple[RunRecord, RunRecord] | None:
        """The two newest runs, the older first (None: fewer than two)."""
        with self._using("reading runs"):
            latest = self.store.list_runs(limit=2)
            if len(latest) < 2:
                return None
            b, a = (self.store.get(s["run_id"]) for s in latest)
        return a, b

    def ended_record(self, run_id: str, payload: RunRecord) -> RunRecord:
        """A run that just ended, as stored; the engine's payload if the database refused it
        (the engine logged why)."""
        with self._using("reading a run"), contextlib.suppress(StoreError):
            return self.store.get(run_id)
        return payload

    def attach(self, run_id: str) -> Attach:
        """A run by id: its config while its status file says it goes on; else its record, as
        stored or as its events file ended (read whole)."""
        with self._using("reading a run's files"):
            status = lifecycle.read_status(self.dir, run_id)
            if status is not None and isinstance(status.get("config"), dict):
                config = eventjson.config_from_json(status["config"])
                config.history_dir = self.dir
                return Attach(config=config)
            tail = stream.EventTail(stream.events_path(self.dir, run_id))
            try:
                tail.read()
            finally:
                tail.close()
            record = tail.finished.payload if tail.finished else None
            with contextlib.suppress(StoreError):
                record = self.store.get(run_id)
        return Attach(record=record)

    def in_progress(self) -> list[LiveStatus]:
        """The runs going on in this history dir (their status files; processes alive)."""
        _off_the_loop("reading the runs in progress")  # no store: no need to wait for one
        return [s for s in lifecycle.runs_in_progress(self.dir) if s["alive"]]

    # ----- comparisons -------------------------------------------------------------------

    def thresholds(self) -> RegressionThresholds:
        try:
            return load_thresholds(self.dir)
        except ConfigError as exc:
            self.on_warning(f"{exc}; using the default thresholds")
            return RegressionThresholds()

    def compare(
        self, a: RunRecord, b: RunRecord, noise: str | Sequence[str] | None = None
    ) -> CompareView:
        """A against B through the comparison service (it picks the noise sample, or takes
        `noise` by hand)."""
        with self._using("comparing"):
            if self._compare is not None:
                return self._compare(a, b, noise)
            return verdicts.compare_view(self.store, a, b, self.thresholds(), noise=noise)

    def against_previous(self, record: RunRecord) -> tuple[RunRecord | None, Comparison | None]:
        """The previous comparable run and the comparison with it."""
        try:
            with self._using("comparing"):
                previous = self.store.previous_of(record)
        except StoreError as exc:
            self.on_warning(str(exc))
            return None, None
        if previous is None:
            return None, None
        return previous, self.compare(previous, record).comparison

    # ----- writes (behind the store's file lock) -----------------------------------------

    @contextlib.contextmanager
    def _writing(self, waiting: Callable[[], None]) -> Iterator[None]:
        """The store's file lock for one change, taken before the guard (reads go on while
        it waits): `waiting()` is told first when another process holds it; after the store's
        own timeout, the change is not made (StoreError, as the store says it)."""
        _off_the_loop("writing the history")
        self.dir.mkdir(parents=True, exist_ok=True)
        lock = self.store.lock
        try:
            lock.acquire(timeout=0)
        except Timeout:
            waiting()
            try:
                lock.acquire()  # the store's timeout
            except Timeout:
                raise StoreError(
                    f"history database is locked by another process ({lock.lock_file}); try again"
                ) from None
        try:
            with self._guard:
                yield  # the store's own acquire is re-entrant: it counts this hold
        finally:
            lock.release()

    def set_baseline(self, run_id: str, name: str, waiting: Callable[[], None]) -> str:
        with self._writing(waiting):
            self.store.set_baseline(run_id, name)
        return f"{run_id} is now baseline {name!r}"

    def set_note(self, run_id: str, note: str, waiting: Callable[[], None]) -> str:
        with self._writing(waiting):
            self.store.set_note(run_id, note)
        return ""

    def delete(self, run_id: str, waiting: Callable[[], None]) -> str:
        with self._writing(waiting):
            gone = self.store.delete(run_id)
        return f"deleted {run_id}" + (f" (and baseline {', '.join(gone)})" if gone else "")


# A capacity search's job from Setup's request, its gates and plan, and the simulated device
# (None: the request's own device); `tui.screens.capacity.CapacityJob`, given by the factory.
MakeCapacityJob = Callable[[Any, CapacityGates, SearchPlan, SimDevice | None], Any]


class RunService:
    """The run owner as the TUI uses it: the simulated device it keeps for Setup's probe and
    its runs, a run's session (launched detached through `perftui.runs`, or attached to), and a
    capacity search's job (which holds a `RunOwner` around its steps)."""

    def __init__(self, sim: SimDevice, capacity_job: MakeCapacityJob) -> None:
        self.sim = sim
        self.capacity_job = capacity_job

    def session(self, config: RunConfig, use_sim: bool) -> RunSession:
        """A new run (launched when its Live screen starts following it)."""
        return RunSession(config, use_sim, self.sim)

    def attach(self, config: RunConfig, run_id: str) -> RunSession:
        """A run going on, by id (started by another TUI or `perftui run --detach`)."""
        return RunSession(config, attach=run_id)
