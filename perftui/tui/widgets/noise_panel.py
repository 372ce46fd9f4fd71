"""The Compare screen's noise panel: which stored runs form the noise model, which were left out
and why, and a list to put runs in or take them out; each change is judged again in a thread
worker (the comparison service reads the store and bootstraps), never on the UI loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import SelectionList, Static
from textual.worker import get_current_worker

from perftui.analysis.reports import noise_lines
from perftui.engine.schema import IndexRow
from perftui.tui.services import CompareView, StoreError
from perftui.tui.view import fmt
from perftui.tui.widgets.ticked_list import TickedList

Recompute = Callable[[str | Sequence[str]], CompareView]


def summary_text(view: CompareView) -> str:
    """The sample by name and the runs left out with why, as the report says them."""
    first, *left = noise_lines(view.comparison)
    if not left:
        return first
    head, _, runs = left[0].partition(": ")
    return "\n".join([first, f"{head}:", *(f"  {why}" for why in runs.split("; "))])


class NoisePanel(Vertical):
    """Space ticks a run in or out of the noise sample; the verdict follows."""

    class Recompared(Message):
        """The comparison judged again with the user's sample."""

        def __init__(self, view: CompareView) -> None:
            super().__init__()
            self.view = view

    def __init__(self, view: CompareView, recompute: Recompute | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.view = view
        self.recompute = recompute

    def compose(self) -> ComposeResult:
        yield Static(summary_text(self.view), id="noise-summary")
        picked = set(self.view.comparison.noise_ids)
        runs = [(self._label(s), s["run_id"], s["run_id"] in picked) for s in self.view.candidates]
        yield TickedList(*runs, id="noise-runs")
        hint = "space: put a run in or take it out; the verdict is judged again"
        yield Static(hint if self.recompute else "read only", id="noise-hint")

    @staticmethod
    def _label(summary: IndexRow) -> str:
        build = summary.get("build") or "unlabelled"
        flagged = " · flagged" if summary.get("flagged") else ""
        tag = f" · {summary['tag']}" if summary.get("tag") else ""
        stamp = fmt.short_stamp(summary.get("started_at"))
        return f"{summary['run_id']} · {stamp} · build {build}{tag}{flagged}"

    @on(SelectionList.SelectedChanged, "#noise-runs")
    def _changed(self, event: SelectionList.SelectedChanged) -> None:
        if self.recompute is None:
            return
        chosen = list(event.selection_list.selected)
        self.query_one("#noise-summary", Static).update("judging again…")
        self._judge(chosen or "none")

    @work(thread=True, exclusive=True, group="noise", exit_on_error=False)
    def _judge(self, choice: str | Sequence[str]) -> None:
        assert self.recompute is not None
        try:
            view = self.recompute(choice)
        except (StoreError, ValueError) as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        if not get_current_worker().is_cancelled:
            self.post_message(self.Recompared(view))

    def show(self, view: CompareView) -> None:
        """A new judgement: the summary names its sample (the ticks are the user's already)."""
        self.view = view
        self.query_one("#noise-summary", Static).update(summary_text(view))
