"""The perftui TUI: Setup → Live run → Results, plus History and Compare.

Load never runs here: a run belongs to its own detached process (launched through the run owner,
`perftui.runs`), a capacity step to an engine process, and the simulated device to a process of
its own; the probe and the run's events file are read in thread workers, so what the screen
draws cannot change the latency the engine measures. The app itself still reads the history
store and compares runs, some of it on the UI loop (issue 21 moves that into workers).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from perftui import verdicts
from perftui.analysis.compare import (
    Comparison,
    ConfigError,
    RegressionThresholds,
    load_thresholds,
)
from perftui.engine import eventjson, lifecycle, stream
from perftui.engine.capacity import CapacityGates, SearchPlan
from perftui.engine.events import RunFinished
from perftui.history.store import HistoryStore, StoreError
from perftui.tui.capacity import CapacityJob, CapacityScreen
from perftui.tui.comparison import CompareScreen
from perftui.tui.dialogs import ChoiceDialog, ConfirmDialog, HelpScreen, TextPrompt
from perftui.tui.history import HistoryScreen
from perftui.tui.live import LiveScreen
from perftui.tui.results import ResultsScreen
from perftui.tui.session import RunSession, SimDevice
from perftui.tui.setup import RunRequest, SetupScreen

RECENT_DEVICES = 8


class PerftuiApp(App[int]):
    """One app object per `perftui` TUI session, bound to one history dir."""

    TITLE = "perftui"
    CSS_PATH = "app.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help"),
        Binding("question_mark", "help", "Help", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, history_dir: Path, attach: str | None = None) -> None:
        """`attach`: a run id to watch on start (`perftui attach`)."""
        super().__init__()
        self.attach = attach
        # Start multiprocessing's resource tracker now: started later, from a worker while Textual
        # captures stderr (fileno -1), spawning the engine or the sim fails with "bad fds_to_keep".
        resource_tracker.ensure_running()
        self.history_dir = history_dir
        self.store = HistoryStore(history_dir)
        self.sim = SimDevice(preferred_port=self.last_sim_port())
        self._quit_after_run = False

    def on_mount(self) -> None:
        self.push_screen(SetupScreen(self.history_dir, self.recent_devices()))
        if self.attach:
            self.attach_run(self.attach)

    def on_unmount(self) -> None:
        self.sim.stop()

    def last_sim_port(self) -> int:
        """The port of the newest run against a loopback device (the sim), or 0."""
        try:
            summaries = self.store.list_runs(limit=200)
        except StoreError:
            return 0
        for s in summaries:
            host, _, port = str(s.get("target") or "").rpartition(":")
            if host == "127.0.0.1" and port.isdigit():
                return int(port)
        return 0

    def recent_devices(self) -> list[str]:
        """Distinct targets of stored runs, newest first (loopback sims move port each time).

        Every run is looked at, so a device last used in an imported legacy run (older than
        hundreds of simulator runs) is still offered.
        """
        try:
            summaries = self.store.list_runs()
        except StoreError:
            return []
        targets = [
            s["target"]
            for s in summaries
            if s.get("target") and not str(s["target"]).startswith("127.0.0.1:")
        ]
        return list(dict.fromkeys(targets))[:RECENT_DEVICES]

    # ----- flow between screens ----------------------------------------------------------

    def live_screen(self) -> LiveScreen | None:
        return next((s for s in self.screen_stack if isinstance(s, LiveScreen)), None)

    def start_run(self, request: RunRequest) -> None:
        if self.live_screen() is not None:
            self.notify("A run is already going.", severity="warning")
            return
        if request.use_sim:
            request.config.device = "sim"  # one identity, whatever port the sim got this time
        self.push_screen(LiveScreen(request.config, request.use_sim))

    def attach_run(self, run_id: str) -> None:
        """Watch a run from its start: Live while it goes on, its Results once it has ended."""
        if self.live_screen() is not None:
            self.notify("A run is already on screen.", severity="warning")
            return
        status = lifecycle.read_status(self.history_dir, run_id)
        if status is not None and isinstance(status.get("config"), dict):
            config = eventjson.config_from_json(status["config"])
            config.history_dir = self.history_dir
            session = RunSession(config, attach=run_id)
            self.push_screen(LiveScreen(config, session=session))
            return
        tail = stream.EventTail(stream.events_path(self.history_dir, run_id))
        tail.read()
        tail.close()
        record = tail.finished.payload if tail.finished else None
        with contextlib.suppress(StoreError):
            record = self.store.get(run_id)
        if record is None:
            self.notify(f"run {run_id} left no record", severity="error")
            return
        self.open_results(record)

    def run_finished(self, live: LiveScreen, event: RunFinished) -> None:
        """The engine is done: show the results (the run is in history, even a stopped one)."""
        if self._quit_after_run:
            self.exit(0)
            return
        if event.payload is None:
            self.notify(
                event.hard_stop_reason or "the run ended without a record",
                title=f"run {event.status}",
                severity="error",
                timeout=15,
            )
            return
        record = event.payload
        if event.run_id:
            # If the database refused the run (the engine logged why), the payload still shows.
            with contextlib.suppress(StoreError):
                record = self.store.get(event.run_id)
        while self.screen is not live and isinstance(
            self.screen, ConfirmDialog | ChoiceDialog | TextPrompt
        ):
            self.pop_screen()  # e.g. "Abort the run?" still open when the run ended by itself
        if self.screen is live:
            self._show_results(record, self.thresholds(), live)
        else:
            self.notify(f"run {event.status}; see History", title="run over")

    def thresholds(self) -> RegressionThresholds:
        try:
            return load_thresholds(self.history_dir)
        except ConfigError as exc:
            self.notify(f"{exc}; using the default thresholds", severity="warning")
            return RegressionThresholds()

    @work(thread=True, group="compare", exit_on_error=False)
    def _show_results(
        self,
        record: dict[str, Any],
        thresholds: RegressionThresholds,
        replacing: LiveScreen | None = None,
    ) -> None:
        """The run's Results with its comparison to the previous run, judged here in a thread
        (the store and the comparison service stay off the UI loop), then shown: in place of
        the live screen it ends, if that is still on top, else pushed."""
        previous: dict[str, Any] | None = None
        comparison: Comparison | None = None
        try:
            previous = self.store.previous_of(record)
            if previous is not None:
                comparison = verdicts.compare(self.store, previous, record, thresholds)
        except (StoreError, ValueError) as exc:
            self.call_from_thread(self.notify, str(exc), severity="warning")
        screen = ResultsScreen(record, previous, comparison)
        self.call_from_thread(self._results_ready, screen, replacing)

    def _results_ready(self, screen: ResultsScreen, replacing: LiveScreen | None) -> None:
        if replacing is None:
            self.push_screen(screen)
        elif self.screen is replacing:
            self.switch_screen(screen)

    def open_results(self, record: dict[str, Any]) -> None:
        self._show_results(record, self.thresholds())

    def open_compare(self, a: dict[str, Any], b: dict[str, Any]) -> None:
        """A is the reference (older), B the candidate: judged in a thread worker (the store,
        the bootstrap and the histograms stay off the UI loop), then shown."""
        self._open_compare(a, b, self.thresholds())

    @work(thread=True, group="compare", exit_on_error=False)
    def _open_compare(
        self, a: dict[str, Any], b: dict[str, Any], thresholds: RegressionThresholds
    ) -> None:
        def recompute(choice: str | Sequence[str] | None) -> verdicts.CompareView:
            return verdicts.compare_view(self.store, a, b, thresholds, noise=choice)

        try:
            view = recompute(None)
        except (StoreError, ValueError) as exc:
            self.call_from_thread(self.notify, f"cannot compare: {exc}", severity="error")
            return
        screen = CompareScreen(view, a, b, self.history_dir, recompute)
        self.call_from_thread(self.push_screen, screen)

    # ----- actions and the command palette -----------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_history(self) -> None:
        if isinstance(self.screen, HistoryScreen):
            return
        self.push_screen(HistoryScreen(self.store))

    def action_setup(self) -> None:
        while not isinstance(self.screen, SetupScreen | LiveScreen) and len(self.screen_stack) > 2:
            self.pop_screen()

    def action_capacity(self) -> None:
        """Back to the capacity search on screen, or a new one on what Setup says (device,
        profile, clients as the most open connections, the p95 and error gates)."""
        going = next((s for s in self.screen_stack if isinstance(s, CapacityScreen)), None)
        if going is not None:
            while self.screen is not going:
                self.pop_screen()
            return
        if self.live_screen() is not None:
            self.notify("A run is going; search capacity after it.", severity="warning")
            return
        self.action_setup()
        setup = self.screen
        if not isinstance(setup, SetupScreen):
            return
        request = setup.build_request()
        if request is None:
            return
        if len(request.config.profiles) != 1:
            self.notify("A capacity search takes one profile: tick just one.", severity="warning")
            return
        limits = request.config.gate_limits
        gates = CapacityGates(limits.max_p95_ms, limits.max_error_rate)
        job = CapacityJob(request, gates, SearchPlan(), self.sim if request.use_sim else None)
        self.push_screen(CapacityScreen(job))

    def action_compare_latest(self) -> None:
        """The two newest runs, older as A: the quickest 'did my change move anything?'."""
        try:
            latest = self.store.list_runs(limit=2)
            if len(latest) < 2:
                self.notify("Need two stored runs to compare.", severity="warning")
                return
            b, a = (self.store.get(s["run_id"]) for s in latest)
        except StoreError as exc:
            self.notify(str(exc), severity="error")
            return
        self.open_compare(a, b)

    def action_abort_run(self) -> None:
        live = self.live_screen()
        if live is None:
            self.notify("No run is going.")
            return
        live.action_abort()

    async def action_quit(self) -> None:
        """Quit; a run in progress is stopped (its partial record kept) or left running: asked."""
        live = self.live_screen()
        if live is None or live.finished is not None:
            self.exit(0)
            return

        def answer(choice: str | None) -> None:
            if choice == "stop":
                self._quit_after_run = True
                live.request_stop()
            elif choice == "leave":
                self.exit(0)

        self.push_screen(
            ChoiceDialog(
                "A run is going. Stop it (the partial run is kept), or leave it running "
                "(watch it again with `perftui attach`)?",
                [("s", "Stop it and quit", "stop"), ("l", "Leave it running", "leave")],
            ),
            answer,
        )

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "History", "All stored runs: filter, baseline, note, compare", self.action_history
        )
        yield SystemCommand("Setup", "Back to the run setup", self.action_setup)
        yield SystemCommand(
            "Compare latest two runs",
            "The two newest stored runs, A = older",
            self.action_compare_latest,
        )
        yield SystemCommand(
            "Capacity search",
            "Highest rate within the p95/error gates, as a latency-vs-rate chart (or back to it)",
            self.action_capacity,
        )
        yield SystemCommand(
            "Abort run", "Stop the run in progress (asks; partial run kept)", self.action_abort_run
        )
        yield SystemCommand("Help", "Keys of every screen", self.action_help)


def run_app(history_dir: Path, attach: str | None = None) -> int:
    """Open the TUI on `history_dir` (watching run `attach`); the exit status for `perftui`."""
    return PerftuiApp(history_dir, attach).run() or 0
