"""The runs in progress in this history dir, on the Setup screen: Enter attaches to one.

A run started from the TUI (or with `perftui run --detach`) goes on by itself after its viewer
leaves; this list is how a new TUI finds it again. It reads the small status files of
`HISTORY/live/` (see `perftui.engine.stream`) every few seconds and is hidden when there is none.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from perftui.engine import lifecycle
from perftui.tui.messages import AttachRequested

REFRESH_S = 2.0


class RunsInProgress(Vertical):
    """Runs going on without (or with other) viewers; select one to watch it live."""

    DEFAULT_CSS = """
    RunsInProgress { height: auto; max-height: 8; display: none; }
    RunsInProgress.-some { display: block; }
    RunsInProgress OptionList { height: auto; max-height: 6; }
    """

    def __init__(self, history_dir: Path) -> None:
        super().__init__(id="in-progress")
        self.history_dir = history_dir
        self._shown: list[str] = []

    def compose(self) -> ComposeResult:
        yield Label("[b]Runs in progress[/b] (Enter to watch)")
        yield OptionList(id="in-progress-list")

    def on_mount(self) -> None:
        self.refresh_runs()
        self.set_interval(REFRESH_S, self.refresh_runs)

    def refresh_runs(self) -> None:
        runs = [s for s in lifecycle.runs_in_progress(self.history_dir) if s["alive"]]
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
