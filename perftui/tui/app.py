"""The perftui TUI: Setup → Live run → Results, plus History and Compare.

No load runs here: the run is its own detached process (launched through the run owner,
`perftui.runs`) whose events file a thread worker follows, the simulated device runs in its own
process, and the probe, the comparison and the reads of a run's record are made in thread
workers that answer with messages. Screens ask the app for what they need with messages
(`perftui.tui.messages`), handled here with `@on`. Still on the UI loop (issue 21): listing the
runs at start-up, the record read when a run ends, History's reloads, the export's write.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from multiprocessing import resource_tracker
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from perftui import verdicts
from perftui.analysis.comparison import Comparison
from perftui.analysis.thresholds import ConfigError, RegressionThresholds
from perftui.config import load_thresholds
from perftui.engine import eventjson, lifecycle, stream
from perftui.engine.capacity import CapacityGates, SearchPlan
from perftui.engine.events import RunFinished
from perftui.engine.schema import IndexRow, RunRecord
from perftui.history.store import HistoryStore, StoreError
from perftui.tui import session
from perftui.tui.commands import RunsProvider
from perftui.tui.keymap import help_markdown
from perftui.tui.messages import (
    AttachRequested,
    OpenCompare,
    OpenResults,
    OpenRun,
    RunEnded,
    RunRequested,
)
from perftui.tui.screens.capacity import CapacityJob, CapacityScreen
from perftui.tui.screens.compare import CompareScreen
from perftui.tui.screens.dialogs import ChoiceDialog, ConfirmDialog, HelpScreen, TextPrompt
from perftui.tui.screens.history import HistoryScreen
from perftui.tui.screens.live import LiveScreen
from perftui.tui.screens.results import ResultsScreen
from perftui.tui.screens.setup import RunRequest, SetupScreen
from perftui.tui.session import RunSession, SimDevice
from perftui.tui.settings import SIM_DEVICE, Settings
from perftui.tui.workers import ShowsWorkerErrors

RECENT_DEVICES = 8
Prober = Callable[[str, str], tuple[bool, str] | session.ProbeAnswer]
# A against B with the noise sample by hand (None: the comparison service picks it).
Comparer = Callable[[RunRecord, RunRecord, str | Sequence[str] | None], "verdicts.CompareView"]


class PerftuiApp(App[int], ShowsWorkerErrors):
    """One app object per `perftui` TUI session, bound to one history dir."""

    TITLE = "perftui"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {RunsProvider}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help", id="app.help", tooltip="this help"),
        Binding("question_mark", "help", "Help", show=False, id="app.help_alt"),
        Binding(
            "ctrl+q",
            "quit",
            "Quit",
            priority=True,
            id="app.quit",
            tooltip="quit (during a run: stop it, or leave it running to attach later)",
        ),
    ]

    def __init__(
        self,
        history_dir: Path,
        attach: str | None = None,
        settings: Settings | None = None,
        *,
        store: HistoryStore | None = None,
        sim: SimDevice | None = None,
        probe: Prober | None = None,
        compare: Comparer | None = None,
    ) -> None:
        """`attach`: a run id to watch on start (`perftui attach`). The services, each made
        here when not given (tests give temp dirs and fakes; `tui.factory.create_app`):
        `settings` (the file in the user's config dir), `store` (the history dir's), `sim` (the
        built-in simulated device), `probe` (`session.probe`), `compare` (this app's `compare`,
        the history's noise model)."""
        super().__init__()
        self.attach = attach
        self.settings = settings if settings is not None else Settings.load()
        # Start multiprocessing's resource tracker now: started later, from a worker while Textual
        # captures stderr (fileno -1), spawning the engine or the sim fails with "bad fds_to_keep".
        resource_tracker.ensure_running()
        self.history_dir = history_dir
        self.store = store if store is not None else HistoryStore(history_dir)
        self.sim = sim if sim is not None else SimDevice(preferred_port=self.last_sim_port())
        self.probe: Prober = probe if probe is not None else session.probe
        self._comparer = compare
        self._quit_after_run = False

    def on_mount(self) -> None:
        if self.settings.problem:
            self.notify(self.settings.problem, severity="warning", timeout=10)
        self.set_keymap(self.settings.keys)  # the user's keys, by binding id
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme
        self.theme_changed_signal.subscribe(self, lambda t: self.settings.remember_theme(t.name))
        self.push_screen(
            SetupScreen(
                self.history_dir, self.recent_devices(), self.settings, self.sim, self.probe
            )
        )
        if self.attach:
            self.attach_run(self.attach)

    def on_unmount(self) -> None:
        self.sim.stop()

    def last_sim_port(self) -> int:
        """The port of the newest run against the simulated device, or 0."""
        try:
            summaries = self.store.list_runs(limit=200)
        except StoreError:
            return 0
        for s in summaries:
            port = str(s.get("target") or "").rpartition(":")[2]
            if s.get("device") == SIM_DEVICE and port.isdigit():
                return int(port)
        return 0

    def recent_devices(self) -> list[str]:
        """Distinct targets of stored runs, newest first, then devices only set up here.

        Every run is looked at, so a device last used in an imported legacy run (older than
        hundreds of simulator runs) is still offered. Loopback devices are devices like any
        other; only the simulated device's runs (device "sim", a new port each time) are left
        out: it has its own entry.
        """
        try:
            summaries = self.store.list_runs()
        except StoreError:
            summaries = []
        targets = [
            str(s["target"]) for s in summaries if s.get("target") and s.get("device") != SIM_DEVICE
        ]
        return list(dict.fromkeys(targets + self.settings.recent_devices()))[:RECENT_DEVICES]

    # ----- flow between screens ----------------------------------------------------------

    def live_screen(self) -> LiveScreen | None:
        return next((s for s in self.screen_stack if isinstance(s, LiveScreen)), None)

    def start_run(self, request: RunRequest) -> None:
        if self.live_screen() is not None:
            self.notify("A run is already going.", severity="warning")
            return
        if request.use_sim:
            request.config.device = "sim"  # one identity, whatever port the sim got this time
        self.push_screen(LiveScreen(request.config, request.use_sim, sim=self.sim))

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

    # ----- what screens ask for (their messages) -------------------------------------------

    @on(RunRequested)
    def _run_requested(self, message: RunRequested) -> None:
        self.start_run(message.request)

    @on(AttachRequested)
    def _attach_requested(self, message: AttachRequested) -> None:
        self.attach_run(message.run_id)

    @on(OpenResults)
    def _open_results(self, message: OpenResults) -> None:
        self.open_results(message.record)

    @on(OpenRun)
    def _open_run(self, message: OpenRun) -> None:
        self.open_run(message.run_id)

    @on(OpenCompare)
    def _open_compare(self, message: OpenCompare) -> None:
        self.open_compare(message.a, message.b)

    @on(RunEnded)
    def _run_ended(self, message: RunEnded) -> None:
        live = self.live_screen()
        if live is not None:
            self.run_finished(live, message.event)

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
            self.switch_screen(self.results_screen(record))
        else:
            self.notify(f"run {event.status}; see History", title="run over")

    def thresholds(self) -> RegressionThresholds:
        try:
            return load_thresholds(self.history_dir)
        except ConfigError as exc:
            self.notify(f"{exc}; using the default thresholds", severity="warning")
            return RegressionThresholds()

    def results_screen(self, record: RunRecord) -> ResultsScreen:
        """The run's Results at once; its previous run is found and compared in a worker."""
        return ResultsScreen(record, against_previous=self.against_previous)

    def against_previous(self, record: RunRecord) -> tuple[RunRecord | None, Comparison | None]:
        """The previous comparable run and the comparison with it (called from a thread)."""
        previous = None
        try:
            previous = self.store.previous_of(record)
        except StoreError as exc:
            self.notify(str(exc), severity="warning")
        return previous, self.compare(previous, record).comparison if previous else None

    def compare(
        self,
        a: RunRecord,
        b: RunRecord,
        noise: str | Sequence[str] | None = None,
    ) -> verdicts.CompareView:
        """A against B through the comparison service (it picks the noise sample, or takes
        `noise` by hand); blocking: called from a thread worker."""
        if self._comparer is not None:
            return self._comparer(a, b, noise)
        return verdicts.compare_view(self.store, a, b, self.thresholds(), noise=noise)

    def list_runs(self) -> list[IndexRow]:
        """Every stored run's summary, newest first (for the palette; called from a thread)."""
        try:
            return self.store.list_runs()
        except StoreError:
            return []

    def open_run(self, run_id: str) -> None:
        """A stored run's Results, its record read in a thread worker."""
        self._read_run(run_id)

    @work(thread=True, exit_on_error=False, group="store")
    def _read_run(self, run_id: str) -> None:
        try:
            record = self.store.get(run_id)
        except StoreError as exc:
            self.notify(str(exc), severity="error")
            return
        self.post_message(OpenResults(record))

    def open_results(self, record: RunRecord) -> None:
        self.push_screen(self.results_screen(record))

    def open_compare(self, a: RunRecord, b: RunRecord) -> None:
        """A is the reference (picked first, the baseline, the previous run), B the candidate;
        the screen opens at once and makes the comparison in a worker."""
        self.push_screen(CompareScreen(None, a, b, self.history_dir, compare=self.compare))

    # ----- actions and the command palette -----------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            screens = [
                ("everywhere", PerftuiApp),
                ("Setup", SetupScreen),
                ("Live run", LiveScreen),
                ("Results", ResultsScreen),
                ("History", HistoryScreen),
                ("Compare", CompareScreen),
                ("Capacity", CapacityScreen),
            ]
            self.push_screen(
                HelpScreen(help_markdown(screens, self.settings.keys, self.get_key_display))
            )

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
