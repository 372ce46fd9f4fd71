"""The runs in progress in this history dir, on the Setup screen: Enter attaches to one.

A run started from the TUI (or with `perftui run --detach`) goes on by itself after its viewer
leaves; this list is how a new TUI finds it again. Every few seconds a thread worker reads the
small status files of `HISTORY/live/` (see `perftui.engine.stream`) through the history service;
the list is hidden when there is none.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option
from textual.worker import Worker

from perftui.engine import lifecycle
from perftui.engine.schema import LiveStatus
from perftui.tui.messages import AttachRequested, InProgressRead

REFRESH_S = 2.0


class RunsInProgress(Vertical):
    """Runs going on without (or with other) viewers; select one to watch it live."""

    DEFAULT_CSS = """
    RunsInProgress { height: auto; max-height: 8; display: none; }
    RunsInProgress.-some { display: block; }
    RunsInProgress OptionList { height: auto; max-height: 6; }
    """

    def __init__(self, read: Callable[[], list[LiveStatus]]) -> None:
        """`read`: the runs going on (`HistoryService.in_progress`); blocking."""
        super().__init__(id="in-progress")
        self.read = read
        self._shown: list[str] = []
        self._reading: Worker[None] | None = None

    def compose(self) -> ComposeResult:
        yield Label("[b]Runs in progress[/b] (Enter to watch)")
        yield OptionList(id="in-progress-list")

    def on_mount(self) -> None:
        self.refresh_runs()
        self.set_interval(REFRESH_S, self.refresh_runs)

    def refresh_runs(self) -> None:
        """A read in a worker, unless the last one is still going (a slow disk): none is
        cancelled, none piles up."""
        if self._reading is None or self._reading.is_finished:
            self._reading = self._read()

    @work(thread=True, group="in-progress", exit_on_error=False)
    def _read(self) -> None:
        self.post_message(InProgressRead(self.read()))

    @on(InProgressRead)
    def _runs_read(self, message: InProgressRead) -> None:
        runs = message.runs
        lines = [
            f"{s['run_id']} · {s.get('target')} · {','.join(s.get('profiles') or [])} · "
            + lifecycle.where(s)
            for s in runs
        ]
        self.set_class(bool(runs), "-some")
        if lines == self._shown:
            return
        self._shown = lines
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options(
            [Option(line, id=s["run_id"]) for line, s in zip(lines, runs, strict=True)]
        )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(AttachRequested(event.option.id))
