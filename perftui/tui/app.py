"""The perftui TUI: Setup → Live run → Results, plus History, Compare and Capacity.

No load runs here: the run is its own detached process (launched through the run owner,
`perftui.runs`) whose events file a thread worker follows, and the simulated device runs in its
own process. The app is built from its services (`tui.factory.create_app`): the history
(`tui.services.HistoryService`: every store read and write, every comparison), the run owner as
the TUI uses it (`RunService`), the probe and the settings; every history call is made in a
thread worker that answers with a message, so no file lock or bootstrap ever holds the UI loop.
Screens ask the app with messages (`perftui.tui.messages`), handled here with `@on`.

Each kind of screen is a Textual mode (Setup, History, the run, Results, Compare, Capacity):
opening one switches to its mode, and Back returns to the mode it was opened from and drops the
one it leaves (Setup stays). Only dialogs (and the help) are pushed, over the screen of the
mode on view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from multiprocessing import resource_tracker
from typing import ClassVar

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from perftui.engine.capacity import CapacityGates, SearchPlan
from perftui.engine.events import RunFinished
from perftui.engine.schema import IndexRow, RunRecord
from perftui.tui import session
from perftui.tui.commands import RunsProvider
from perftui.tui.keymap import help_markdown
from perftui.tui.messages import (
    Attached,
    AttachRequested,
    EndedRead,
    GoBack,
    OpenCompare,
    OpenResults,
    OpenRun,
    RunEnded,
    RunRequested,
    StartRead,
)
from perftui.tui.screens.capacity import CapacityScreen, Job
from perftui.tui.screens.compare import CompareScreen
from perftui.tui.screens.dialogs import ChoiceDialog, ConfirmDialog, HelpScreen, TextPrompt
from perftui.tui.screens.history import HistoryScreen
from perftui.tui.screens.live import LiveScreen
from perftui.tui.screens.results import ResultsScreen
from perftui.tui.screens.setup import RunRequest, SetupScreen
from perftui.tui.services import HistoryService, RunService, StartInfo, StoreError
from perftui.tui.settings import Settings
from perftui.tui.workers import ShowsWorkerErrors

RECENT_DEVICES = 8
# The statistics library is loaded this long after Setup shows (not in the first keystrokes),
# unless a run has begun by then.
WARM_UP_AFTER_S = 1.0
Prober = Callable[[str, str], tuple[bool, str] | session.ProbeAnswer]
# The mode whose screen stays when left; the others (History, the run, Results, Compare,
# Capacity) are dropped on Back, so History opens afresh as it always did.
KEPT_MODES = ("setup",)


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
        history: HistoryService,
        runs: RunService,
        probe: Prober,
        settings: Settings,
        attach: str | None = None,
    ) -> None:
        """Made by `tui.factory.create_app`, which gives the services (tests give temp dirs
        and fakes). `attach`: a run id to watch on start (`perftui attach`)."""
        super().__init__()
        self.history = history
        self.history_dir = history.dir
        self.runs = runs
        self.probe = probe
        self.settings = settings
        self.attach = attach
        # Start multiprocessing's resource tracker now: started later, from a worker while Textual
        # captures stderr (fileno -1), spawning the engine or the sim fails with "bad fds_to_keep".
        resource_tracker.ensure_running()
        self._quit_after_run = False
        self._live: LiveScreen | None = None  # the run's screen while its mode holds it
        self._came_from: dict[str, str] = {}  # an open mode → the mode Back returns to

    def on_mount(self) -> None:
        if self.settings.problem:
            self.notify(self.settings.problem, severity="warning", timeout=10)
        self.history.on_warning = lambda text: self.notify(text, severity="warning")
        self.set_keymap(self.settings.keys)  # the user's keys, by binding id
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme
        self.theme_changed_signal.subscribe(self, lambda t: self.settings.remember_theme(t.name))
        self._read_start()

    def on_unmount(self) -> None:
        self.runs.sim.stop()

    @work(thread=True, exit_on_error=False, group="store")
    def _read_start(self) -> None:
        """The stored runs' targets (Setup's recent devices) and the simulated device's last
        port, read once before Setup shows; a failure still opens Setup (and says why)."""
        info = StartInfo([], 0)
        try:
            info = self.history.start_info()
        finally:
            self.post_message(StartRead(info))

    @on(StartRead)
    def _start_read(self, message: StartRead) -> None:
        sim = self.runs.sim
        # The same port as the last simulated-device run when it is free: the target is how
        # history finds the previous run to compare with.
        sim.preferred_port = sim.preferred_port or message.info.sim_port
        recent = list(dict.fromkeys(message.info.targets + self.settings.recent_devices()))
        self.add_mode(
            "setup",
            lambda: SetupScreen(
                self.history_dir,
                recent[:RECENT_DEVICES],
                self.settings,
                self.runs.sim,
                self.probe,
                in_progress=self.history.in_progress,
            ),
        )
        if self.current_mode == self.DEFAULT_MODE and len(self.screen_stack) == 1:
            self.switch_mode("setup")  # unless something was opened meanwhile (a test's screen)
        if self.attach:
            self.attach_run(self.attach)
        self.set_timer(WARM_UP_AFTER_S, self._maybe_warm_up)

    def _maybe_warm_up(self) -> None:
        """Not once a run or a capacity search has begun: its CPU would land in the
        measurement (bench_tui: the TUI's share of a core at the ceiling doubled)."""
        live = self.live_screen()
        if (live is None or live.finished is not None) and "capacity" not in self._came_from:
            self._warm_up()

    @work(thread=True, exit_on_error=False, group="warm")
    def _warm_up(self) -> None:
        self.history.warm_up()

    # ----- modes: which screen is on view, and Back -----------------------------------------

    def _open(self, mode: str, screen: Screen[None], back_to: str | None = None) -> None:
        """Show `screen` as its mode's own (one it held before is dropped); Back returns to
        `back_to`, by default the mode on view now. Opened from its own mode (the palette on
        Results), it goes over the one on view, and Back returns to that one."""
        if mode == self.current_mode:
            self.push_screen(screen)
            return
        if mode in self._came_from:
            self._drop(mode)
        self._came_from[mode] = back_to or self.current_mode
        self.add_mode(mode, lambda: screen)
        self.switch_mode(mode)

    def _show(self, mode: str) -> None:
        """The mode's screen as it was left (Back from it returns to the mode on view now)."""
        if mode != self.current_mode:
            if mode not in KEPT_MODES:
                self._came_from[mode] = self.current_mode
            self.switch_mode(mode)

    def _drop(self, mode: str) -> None:
        """Forget an open mode that is not on view, and its screens."""
        del self._came_from[mode]
        self.remove_mode(mode)
        if mode == "run":
            self._live = None

    async def action_back(self) -> None:
        """Textual's `back` (the screens' `escape`), through the modes."""
        self.go_back()

    def go_back(self) -> None:
        """Close a screen pushed over the mode's own; from a mode's own screen, back to the
        mode it was opened from (Setup when that one has closed)."""
        if len(self.screen_stack) > 1:
            self.pop_screen()
            return
        mode = self.current_mode
        target = self._came_from.get(mode, "setup")
        if target == mode or (target not in KEPT_MODES and target not in self._came_from):
            target = "setup"
        self.switch_mode(target)
        if mode in self._came_from:  # never Setup's: it has no way back
            self._drop(mode)

    @on(GoBack)
    def _go_back(self, message: GoBack) -> None:
        screen = message.screen
        if screen in self.screen_stack:
            screen.pop_until_active()  # a dialog still open over it goes with it
            self.go_back()
            return
        for mode in list(self._came_from):  # not on view: its mode closes quietly
            if mode not in KEPT_MODES and screen in self.get_screen_stack(mode):
                self._drop(mode)

    # ----- flow between screens ----------------------------------------------------------

    def live_screen(self) -> LiveScreen | None:
        return self._live

    def start_run(self, request: RunRequest) -> None:
        if self._live is not None:
            self.notify("A run is already going.", severity="warning")
            return
        config = request.config
        if request.use_sim:
            config.device = "sim"  # one identity, whatever port the sim got this time
        run = self.runs.session(config, request.use_sim)
        self._open_live(LiveScreen(config, request.use_sim, session=run, sim=self.runs.sim))

    def _open_live(self, live: LiveScreen) -> None:
        self._open("run", live)
        self._live = live

    def attach_run(self, run_id: str) -> None:
        """Watch a run from its start: Live while it goes on, its Results once it has ended
        (its files read in a worker)."""
        if self._live is not None:
            self.notify("A run is already on screen.", severity="warning")
            return
        self._read_attach(run_id)

    @work(thread=True, exit_on_error=False, group="store")
    def _read_attach(self, run_id: str) -> None:
        self.post_message(Attached(run_id, self.history.attach(run_id)))

    @on(Attached)
    def _attached(self, message: Attached) -> None:
        found = message.found
        if found.config is not None:
            if self._live is not None:
                self.notify("A run is already on screen.", severity="warning")
                return
            run = self.runs.attach(found.config, message.run_id)
            self._open_live(LiveScreen(found.config, session=run))
        elif found.record is not None:
            self.open_results(found.record)
        else:
            self.notify(f"run {message.run_id} left no record", severity="error")

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
        if self._live is not None:
            self.run_finished(message.event)

    def run_finished(self, event: RunFinished) -> None:
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
        self._read_ended(event)

    @work(thread=True, exit_on_error=False, group="store")
    def _read_ended(self, event: RunFinished) -> None:
        assert event.payload is not None
        record = event.payload
        if event.run_id:
            record = self.history.ended_record(event.run_id, record)
        self.post_message(EndedRead(record, str(event.status)))

    @on(EndedRead)
    def _ended_read(self, message: EndedRead) -> None:
        live = self._live
        if live is None:
            return
        if self.screen is not live and isinstance(
            self.screen, ConfirmDialog | ChoiceDialog | TextPrompt
        ):
            live.pop_until_active()  # e.g. "Abort the run?" still open when the run ended
        if self.screen is live:  # its Results in its place: Back goes where Live would
            self._open("results", self.results_screen(message.record), self._came_from["run"])
            self._drop("run")
        else:
            self.notify(f"run {message.status}; see History", title="run over")

    def results_screen(self, record: RunRecord) -> ResultsScreen:
        """The run's Results at once; its previous run is found and compared in a worker."""
        return ResultsScreen(record, against_previous=self.history.against_previous)

    def list_runs(self) -> list[IndexRow]:
        """Every stored run's summary, newest first (for the palette; called from a thread)."""
        try:
            return self.history.runs()
        except StoreError:
            return []

    def open_run(self, run_id: str) -> None:
        """A stored run's Results, its record read in a thread worker."""
        self._read_run(run_id)

    @work(thread=True, exit_on_error=False, group="store")
    def _read_run(self, run_id: str) -> None:
        try:
            record = self.history.record(run_id)
        except StoreError as exc:
            self.notify(str(exc), severity="error")
            return
        self.post_message(OpenResults(record))

    def open_results(self, record: RunRecord) -> None:
        self._open("results", self.results_screen(record))

    def open_compare(self, a: RunRecord, b: RunRecord) -> None:
        """A is the reference (picked first, the baseline, the previous run), B the candidate;
        the screen opens at once and makes the comparison in a worker."""
        self._open("compare", CompareScreen(None, a, b, self.history_dir, self.history.compare))

    def show_capacity(self, job: Job) -> None:
        """A capacity search's screen, back to Setup when closed."""
        self._open("capacity", CapacityScreen(job))
        self._came_from["capacity"] = "setup"

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
        """History as it was left while it is open (under a Results it opened), else afresh."""
        if "history" in self._came_from:
            self._show("history")
        else:
            self._open("history", HistoryScreen(self.history))

    def action_setup(self) -> None:
        """Setup, or the run while one is on (as Start would only say so); History, Results
        and Compare close on the way, as Back would close them (a search keeps going)."""
        self._show("run" if self._live is not None else "setup")
        for mode in [m for m in self._came_from if m in ("history", "results", "compare")]:
            self._drop(mode)

    def action_capacity(self) -> None:
        """Back to the capacity search on screen, or a new one on what Setup says (device,
        profile, clients as the most open connections, the p95 and error gates)."""
        if "capacity" in self._came_from:
            self._show("capacity")
            self.screen_stack[0].pop_until_active()  # the help or a dialog left over it
            return
        if self._live is not None:
            self.notify("A run is going; search capacity after it.", severity="warning")
            return
        self._show("setup")
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
        sim = self.runs.sim if request.use_sim else None
        self.show_capacity(self.runs.capacity_job(request, gates, SearchPlan(), sim))

    def action_compare_latest(self) -> None:
        """The two newest runs, older as A: the quickest 'did my change move anything?'."""
        self._read_latest()

    @work(thread=True, exit_on_error=False, group="store")
    def _read_latest(self) -> None:
        try:
            latest = self.history.latest_two()
        except StoreError as exc:
            self.notify(str(exc), severity="error")
            return
        if latest is None:
            self.notify("Need two stored runs to compare.", severity="warning")
            return
        self.post_message(OpenCompare(*latest))

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
        live = self.live_screen()
        if live is not None and live.finished is None:
            yield SystemCommand(
                "Abort run",
                "Stop the run in progress (asks; partial run kept)",
                self.action_abort_run,
            )
        yield SystemCommand("Help", "Keys of every screen", self.action_help)
