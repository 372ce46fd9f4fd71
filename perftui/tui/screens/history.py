"""History screen: every stored run, newest first, filterable; baseline, note, delete (asks),
and any two runs selected for a compare.

Every read and write goes through the history service in a thread worker: a reload, the two
records of a compare, and a change, which waits for the store's file lock while another process
(a detached run's host storing its run) holds it; the screen says so and keeps answering keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static
from textual.worker import Worker

from perftui.engine.schema import IndexRow
from perftui.like import NOT_STARTED
from perftui.tui.messages import (
    GoBack,
    HistoryChanged,
    HistoryRead,
    LockWaited,
    OpenCompare,
    OpenRun,
)
from perftui.tui.mounting import when_composed
from perftui.tui.screens.dialogs import ConfirmDialog, TextPrompt
from perftui.tui.services import HistoryService, StoreError
from perftui.tui.view import fmt
from perftui.tui.workers import ShowsWorkerErrors

COLUMNS = ("sel", "started", "status", "run id", "target", "profiles", "tag", "build", "note")
# A DataTable row costs about 0.2 ms to add: 20,000 runs took seconds before the first frame.
# The newest matches are shown; the filter still searches every run.
MAX_ROWS = 500
LOCK_WAIT = "waiting for the history lock (another perftui process is writing)…"


def summary_status(summary: IndexRow) -> Text:
    status = summary.get("status") or "finished"
    if status == NOT_STARTED:
        return Text("never started", style="dim")  # nothing measured: compared with nothing
    if status != "finished":
        return Text(f"{status} (partial)", style="bold yellow")
    if summary.get("overall_pass"):
        return Text("pass", style="green")
    return Text("FAIL", style="bold red")


def search_text(summary: IndexRow, baselines: list[str]) -> str:
    """What the filter words are matched against (lower case)."""
    status = summary.get("status") or "finished"
    verdict = "pass" if summary.get("overall_pass") else "fail"
    parts = [
        summary.get("started_at") or "",
        summary["run_id"],
        summary.get("target") or "",
        " ".join(summary.get("profiles") or []),
        summary.get("tag") or "",
        f"build {summary['build']}" if summary.get("build") else "",
        status,
        "partial" if status != "finished" else verdict,
        summary.get("note") or "",
        " ".join(f"baseline {b}" for b in baselines),
    ]
    return " ".join(parts).lower()


class HistoryScreen(Screen[None], ShowsWorkerErrors):
    """Pick runs: `space` selects (two at most), `c` compares A (older) with B (newer)."""

    CSS_PATH = "history.tcss"
    AUTO_FOCUS = "#runs"  # the table, not the filter: keys act on runs from the start

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "space",
            "select",
            "Select",
            id="history.select",
            tooltip="select a run for compare (two at most; the first picked is A, the reference)",
        ),
        Binding(
            "c", "compare", "Compare", id="history.compare", tooltip="compare the two selected runs"
        ),
        Binding("enter", "open", "Results", show=False, id="history.open"),
        Binding("b", "baseline", "Baseline", id="history.baseline", tooltip="mark baseline"),
        Binding("n", "note", "Note", id="history.note"),
        Binding("d", "delete", "Delete", id="history.delete", tooltip="delete (asks)"),
        Binding(
            "slash",
            "focus_filter",
            "Filter",
            id="history.focus_filter",
            tooltip="filter: words match target, profile, tag, date, pass, fail, stopped",
        ),
        Binding(
            "r", "reload", "Reload", show=False, id="history.reload", tooltip="reload the history"
        ),
        Binding("escape", "back", "Back", id="history.back"),
    ]

    def __init__(self, history: HistoryService) -> None:
        super().__init__()
        self.history = history
        self.loaded = False  # the first reload has answered
        self.busy = ""  # what a worker is waiting for, shown on the selection line
        self._reading: Worker[None] | None = None
        self._read_again = False
        self.summaries: list[IndexRow] = []
        self.baselines: dict[str, str] = {}
        self.selected: list[str] = []
        self._search: dict[str, str] = {}  # run id → its filter text, made once per reload
        self._matching = 0

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder="/ filter: target, profile, tag, date, pass, fail, partial, baseline…",
            id="filter",
        )
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static("", id="run-detail")
        yield Static("", id="selection")
        yield Footer()

    @when_composed
    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        for name in COLUMNS:
            table.add_column(name, key=name)
        table.loading = True  # until the first read answers
        self._show_selection()

    @when_composed
    def on_screen_resume(self) -> None:
        """Read again each time the screen comes back (runs stored or changed meanwhile);
        Textual resumes a new mode's screen twice: one read is enough."""
        if self._reading is None or self._reading.is_finished:
            self.action_reload()

    # ----- data --------------------------------------------------------------------------

    def action_reload(self) -> None:
        """A read in a worker; asked again while one goes, one more follows it (none is
        cancelled: a cancelled worker fails whoever waits for it)."""
        if self._reading is not None and not self._reading.is_finished:
            self._read_again = True
            return
        self._read_again = False
        self._reading = self._read()

    @work(thread=True, group="history-read", exit_on_error=False)
    def _read(self) -> None:
        try:
            summaries, baselines = self.history.history()
        except StoreError as exc:
            self.notify(str(exc), severity="error")
            summaries, baselines = [], {}
        self.post_message(HistoryRead(summaries, baselines))

    @on(HistoryRead)
    def _history_read(self, message: HistoryRead) -> None:
        self.summaries, self.baselines = message.summaries, message.baselines
        self.loaded = True
        self.query_one("#runs", DataTable).loading = False
        self._search = {}
        self.selected = [r for r in self.selected if any(s["run_id"] == r for s in self.summaries)]
        self._fill()
        if self._read_again:
            self._reading = None
            self.action_reload()

    @work(thread=True, group="history-write", exit_on_error=False)
    def _write(self, change: Callable[[Callable[[], None]], str]) -> None:
        """A change to the history (baseline, note, delete) off the UI loop: it waits for the
        store's file lock (up to its timeout while another process holds it), the screen says
        so and stays usable meanwhile."""
        try:
            said = change(lambda: self.post_message(LockWaited()))
        except StoreError as exc:
            self.notify(str(exc), severity="error")
            said = ""
        self.post_message(HistoryChanged(said))

    @on(LockWaited)
    def _lock_waited(self) -> None:
        self.busy = LOCK_WAIT
        self._show_selection()

    @on(HistoryChanged)
    def _history_changed(self, message: HistoryChanged) -> None:
        if message.said:
            self.notify(message.said)
        self.busy = ""
        self.action_reload()

    def _baselines_of(self, run_id: str) -> list[str]:
        return [name for name, rid in self.baselines.items() if rid == run_id]

    def _fill(self) -> None:
        table = self.query_one("#runs", DataTable)
        words = self.query_one("#filter", Input).value.lower().split()
        cursor = self.current_id()
        table.clear()
        self._matching = 0
        for s in self.summaries:
            marks = self._baselines_of(s["run_id"]) if self.baselines else []
            if words:
                text = self._search.get(s["run_id"])
                if text is None:
                    text = self._search[s["run_id"]] = search_text(s, marks)
                if not all(w in text for w in words):
                    continue
            self._matching += 1
            if self._matching > MAX_ROWS:
                continue
            tag = s.get("tag") or ""
            if marks:
                tag = (tag + " " if tag else "") + "★" + ",".join(marks)
            table.add_row(
                self._sel_mark(s["run_id"]),
                fmt.short_stamp(s.get("started_at")),
                summary_status(s),
                s["run_id"],
                s.get("target") or "-",
                ",".join(s.get("profiles") or []),
                tag,
                s.get("build") or "",
                s.get("note") or "",
                key=s["run_id"],
            )
        if cursor is not None and cursor in table.rows:
            table.move_cursor(row=table.get_row_index(cursor))
        self._show_selection()

    def _sel_mark(self, run_id: str) -> Text:
        if run_id not in self.selected:
            return Text(" ")
        return Text("AB"[self._ordered().index(run_id)], style="bold reverse")

    def _ordered(self) -> list[str]:
        """The selection as (A, B): the run picked first is the reference (`x` on Compare
        swaps them)."""
        return list(self.selected)

    def _show_selection(self) -> None:
        shown = len(self.query_one("#runs", DataTable).rows)
        ordered = self._ordered()
        picked = " · ".join(f"{'AB'[i]} {rid}" for i, rid in enumerate(ordered)) or "none"
        count = f"{shown} of {len(self.summaries)} runs" if self.loaded else "reading the history…"
        if self._matching > shown:
            count = (
                f"newest {shown} of {self._matching} matching "
                f"({len(self.summaries)} runs; / filters)"
            )
        line = (
            f"{count} · selected: {picked} · space selects two (the first: A, the reference), "
            "c compares"
        )
        self.query_one("#selection", Static).update(f"{self.busy} · {line}" if self.busy else line)

    def current_id(self) -> str | None:
        table = self.query_one("#runs", DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    @on(DataTable.RowHighlighted, "#runs")
    def _show_run(self, event: DataTable.RowHighlighted) -> None:
        """The run under the cursor whole: on 80 columns the table ends within the target,
        and a long note is cut on any screen."""
        run_id = event.row_key.value
        summary = next((s for s in self.summaries if s["run_id"] == run_id), None)
        if summary is None:
            self.query_one("#run-detail", Static).update("")
            return
        marks = self._baselines_of(summary["run_id"])
        extras = (
            ("tag", summary.get("tag")),
            ("baseline", ", ".join(marks)),
            ("build", summary.get("build")),
            ("note:", summary.get("note")),
        )
        parts = [summary.get("target") or "-", ", ".join(summary.get("profiles") or [])]
        parts += [f"{label} {value}" for label, value in extras if value]
        detail = Text.assemble((f"{run_id} ", "bold"), summary_status(summary), " · ")
        detail.append(" · ".join(p for p in parts if p))
        self.query_one("#run-detail", Static).update(detail)

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self._fill()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one("#runs", DataTable).focus()

    @on(DataTable.RowSelected, "#runs")
    def _row_selected(self) -> None:
        self.action_open()

    # ----- actions -----------------------------------------------------------------------

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_focus:
            self.query_one("#runs", DataTable).focus()
        else:
            self.post_message(GoBack(self))

    def action_select(self) -> None:
        run_id = self.current_id()
        if run_id is None:
            return
        if run_id in self.selected:
            self.selected.remove(run_id)
        else:
            self.selected.append(run_id)
            if len(self.selected) > 2:
                self.selected.pop(0)
        table = self.query_one("#runs", DataTable)
        for rid in {*self.selected, run_id}:
            if rid in table.rows:
                table.update_cell(rid, "sel", self._sel_mark(rid))
        for row_key in table.rows:
            if row_key.value not in self.selected:
                table.update_cell(row_key, "sel", Text(" "))
        self._show_selection()

    def action_compare(self) -> None:
        ids = self._ordered()
        current = self.current_id()
        if len(ids) == 1 and current is not None and current != ids[0]:
            self.selected.append(current)
            ids = self._ordered()
        if len(ids) != 2:
            self.notify("Select two runs with space (or one, with the cursor on the other).")
            return
        self._read_pair(ids[0], ids[1])

    @work(thread=True, exclusive=True, group="history-pair", exit_on_error=False)
    def _read_pair(self, a_id: str, b_id: str) -> None:
        try:
            a, b = self.history.records(a_id, b_id)
        except StoreError as exc:
            self.notify(str(exc), severity="error")
            return
        self.post_message(OpenCompare(a, b))

    def action_open(self) -> None:
        run_id = self.current_id()
        if run_id is not None:
            self.post_message(OpenRun(run_id))

    def action_baseline(self) -> None:
        run_id = self.current_id()
        if run_id is None:
            return

        def done(name: str | None) -> None:
            if name is None:
                return
            mark = name.strip() or "default"
            self._write(lambda waiting: self.history.set_baseline(run_id, mark, waiting))

        self.app.push_screen(TextPrompt(f"Baseline name for {run_id}:", "default"), done)

    def action_note(self) -> None:
        run_id = self.current_id()
        if run_id is None:
            return
        current = next((s.get("note") or "" for s in self.summaries if s["run_id"] == run_id), "")

        def done(note: str | None) -> None:
            if note is not None:
                self._write(lambda waiting: self.history.set_note(run_id, note, waiting))

        self.app.push_screen(TextPrompt(f"Note for {run_id}:", current), done)

    def action_delete(self) -> None:
        run_id = self.current_id()
        if run_id is None:
            return

        def done(yes: bool | None) -> None:
            if yes:  # the reload drops it from the selection too
                self._write(lambda waiting: self.history.delete(run_id, waiting))

        self.app.push_screen(
            ConfirmDialog(f"Delete run {run_id} from history? This cannot be undone.", "Delete"),
            done,
        )
