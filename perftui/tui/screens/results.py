"""Results screen: the aggregated table with pass/fail and reasons per `profile:phase`, and the
comparison with the previous run of the same target and profiles (`c` opens the full compare);
its Timeline tab draws the highlighted phase over time (latency, rate, heap, stalls).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane
from textual_plotext import PlotextPlot

from perftui.analysis.metrics import ALL_METRICS
from perftui.analysis.reports import fmt_interval
from perftui.engine.schema import RunRecord
from perftui.tui.messages import OpenCompare, PreviousCompared
from perftui.tui.mounting import when_composed
from perftui.tui.services import Comparison, Row
from perftui.tui.view import fmt, timeline
from perftui.tui.widgets.tabs import show_tab
from perftui.tui.workers import ShowsWorkerErrors

VERDICT_STYLE = {
    "REGRESSION": "bold red",
    "INCONCLUSIVE": "bold magenta",
    "IMPROVEMENT": "bold green",
    "STABLE": "",
    "N/A": "dim",
}
SUMMARY_METRICS = ("rps_ok", "p95_ms", "p99_ms", "error_rate")


def verdict_text(verdict: str, note: str = "") -> Text:
    """A verdict coloured by meaning; the word is always there, so it reads without colour."""
    text = Text(verdict, style=VERDICT_STYLE.get(verdict, ""))
    if note:
        text.append(f" ({note})", style="dim")
    return text


def row_cells(row: Row) -> list[Any]:
    """key, metric, A, B, change, interval, verdict, evidence: one compare row as both screens
    show it."""
    return [
        row.key,
        ALL_METRICS[row.metric].label,
        fmt.num(row.a, 2),
        fmt.num(row.b, 2),
        "-" if row.change is None else f"{row.change:+.1f} {row.unit}",
        fmt_interval(row),
        verdict_text(row.verdict, row.note),
        row.evidence or row.test,
    ]


ROW_COLUMNS = (
    *("profile:phase", "metric", "A", "B", "change"),
    *("95 % interval", "verdict", "evidence"),
)

# Below this many columns a comparison table puts the verdict right after the change, so it is
# whole on 80 columns; the columns after it scroll sideways (Compare: its detail line).
NARROW = 100
NARROW_COLUMNS = (
    *("profile:phase", "metric", "change", "verdict", "A", "B"),
    *("95 % interval", "note", "evidence"),
)


def narrow_cells(row: Row) -> list[Any]:
    """`row_cells` in `NARROW_COLUMNS` order: the key cut to 20 characters (whole in Compare's
    detail line), the verdict's word alone and its note in a column of its own."""
    key, metric, a, b, change, interval, _, evidence = row_cells(row)
    note = Text(row.note, style="dim")
    verdict = verdict_text(row.verdict)
    return [fmt.clip(key, 20), metric, change, verdict, a, b, interval, note, evidence]


def aggregate_note(record: RunRecord) -> str:
    """What the summary's figures are: each phase's median over its runs (as the legacy's)."""
    n = record.get("runs_per_profile")
    if n == 1:
        return "each phase's figures: its one run"
    runs = f"its {n} runs" if n else "its runs"
    return f"each phase's figures: the median of {runs} (pass = share of runs that passed)"


def where_text(comparison: Comparison) -> str:
    """Where the non-stable verdicts are, so a header never hides them behind `p`."""
    parts = comparison.where()
    if not parts:
        return "nothing beyond noise"
    text = ", ".join(parts)
    hidden = any(r.place != "primary" and r.verdict != "STABLE" for r in comparison.rows)
    return text + (": press p" if hidden else "")


def status_text(record: RunRecord) -> Text:
    status = record.get("status") or "finished"
    if status != "finished":
        return Text(status.upper(), style="bold yellow")
    if record.get("overall_pass"):
        return Text("PASS", style="bold green")
    return Text("FAIL", style="bold red")


def fail_reasons(record: RunRecord) -> dict[str, list[str]]:
    """Per `profile:phase`, each failing run's reasons (`run 2: p95 … > …`)."""
    out: dict[str, list[str]] = {}
    for run in record.get("raw_runs") or []:
        for res in run.get("results") or []:
            if not res.get("pass"):
                key = f"{res.get('profile')}:{res.get('phase')}"
                reasons = "; ".join(res.get("fail_reasons") or []) or "failed"
                out.setdefault(key, []).append(f"run {run.get('run_index')}: {reasons}")
    return out


def run_title(record: RunRecord) -> str:
    tag = f" · tag {record['tag']}" if record.get("tag") else ""
    note = f" · {record['note']}" if record.get("note") else ""
    return (
        f"{record.get('run_id', '?')} · {fmt.short_stamp(record.get('started_at'))} · "
        f"{record.get('target')} · {', '.join(record.get('profiles') or [])} × "
        f"{record.get('runs_per_profile')}{tag}{note}"
    )


# The previous comparable run of a record (None: none) and the comparison with it.
AgainstPrevious = Callable[[RunRecord], "tuple[RunRecord | None, Comparison | None]"]


class ResultsScreen(Screen[None], ShowsWorkerErrors):
    """One run's outcome, and how it moved against the previous comparable run (found and
    compared in a thread worker when the screen is given `against_previous`)."""

    CSS_PATH = "results.tcss"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-tiny"), (28, "-tall")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "c",
            "compare",
            "Full compare",
            id="results.compare",
            tooltip="full compare with the previous run",
        ),
        Binding(
            "g",
            "timeline",
            "Timeline",
            id="results.timeline",
            tooltip="timeline of the phase under the cursor",
        ),
        Binding("t", "summary", "Summary", show=False, id="results.summary"),
        Binding(
            "n",
            "next_run",
            "Next run",
            show=False,
            id="results.next_run",
            tooltip="timeline: next run of that phase",
        ),
        Binding("f2", "app.history", "History", id="results.history"),
        Binding("escape", "app.back", "Back", id="results.back"),
    ]

    def __init__(
        self,
        record: RunRecord,
        previous: RunRecord | None = None,
        comparison: Comparison | None = None,
        against_previous: AgainstPrevious | None = None,
    ) -> None:
        super().__init__()
        self.record = record
        self.previous = previous
        self.comparison = comparison
        self._against_previous = against_previous
        self.pending = against_previous is not None  # the comparison with the previous run
        self.chart_key: str | None = next(iter(record.get("aggregated") or {}), None)
        self.chart_run = 0  # index into the key's runs that have a timeline
        self._narrow = False  # the vs-previous table's columns are NARROW_COLUMNS

    def compose(self) -> ComposeResult:
        title = Text.assemble("Results · ", status_text(self.record), " · ", run_title(self.record))
        yield Static(title, id="results-title")
        if self.record.get("hard_stop_reason"):
            yield Static(f"hard stop: {self.record['hard_stop_reason']}", classes="warning")
        with TabbedContent(id="results-tabs"):
            with TabPane("Summary", id="tab-summary"), Vertical(id="results-body"):
                yield Static(aggregate_note(self.record), id="aggregated-note")
                yield DataTable(id="aggregated", cursor_type="row", zebra_stripes=True)
                yield Static("", id="reasons")
                yield Static("", id="previous-title")
                yield DataTable(id="vs-previous", cursor_type="row", zebra_stripes=True)
            with TabPane("Timeline", id="tab-timeline"):
                yield Static("", id="timeline-key")
                yield PlotextPlot(id="tl-latency")
                with Horizontal(id="tl-row"):
                    yield PlotextPlot(id="tl-rate")
                    yield PlotextPlot(id="tl-heap")
        yield Footer()

    @when_composed
    def on_mount(self) -> None:
        self._fill_aggregated()
        if self.pending:
            self.query_one("#previous-title", Static).update(
                "comparing with the previous run of the same device, profiles and settings…"
            )
            self.query_one("#vs-previous", DataTable).loading = True
            self._comparing()
        else:
            self._fill_previous()
        self._draw_timeline()
        self.query_one("#aggregated", DataTable).focus()

    def _fill_aggregated(self) -> None:
        table = self.query_one("#aggregated", DataTable)
        table.add_columns(
            "profile:phase",
            "pass",
            "rps ok",
            "p50",
            "p95",
            "p99",
            "tail p95",
            "err %",
            "result",
            "reasons",
        )
        reasons = fail_reasons(self.record)
        for key, agg in (self.record.get("aggregated") or {}).items():
            passed = agg.get("pass_rate") == 1
            why = reasons.get(key, [])
            table.add_row(
                key,
                f"{agg.get('pass_rate', 0):.0%}",
                fmt.num(fmt.median(agg, "rps_ok")),
                fmt.ms(fmt.median(agg, "p50_ms")),
                fmt.ms(fmt.median(agg, "p95_ms")),
                fmt.ms(fmt.median(agg, "p99_ms")),
                fmt.ms(fmt.median(agg, "p95_tail_ms")),
                fmt.pct(fmt.median(agg, "error_rate")),
                Text("PASS", style="bold green") if passed else Text("FAIL", style="bold red"),
                "; ".join(why) or "-",
                key=key,
            )

    @on(DataTable.RowHighlighted, "#aggregated")
    def _show_reasons(self, event: DataTable.RowHighlighted) -> None:
        """The reasons of the row under the cursor, whole (the column is cut on 80 columns)."""
        key = event.row_key.value
        why = fail_reasons(self.record).get(key or "", [])
        text = Text.assemble((f"{key}: ", "bold"), "; ".join(why) if why else "all gates passed")
        for run_index, report in timeline.phase_reports(self.record, key or ""):
            notes = timeline.phase_notes(report)
            if notes:
                text.append(f"\nrun {run_index}: " + " · ".join(notes), style="")
        self.query_one("#reasons", Static).update(text)
        if key != self.chart_key:
            self.chart_key, self.chart_run = key, 0
            self._draw_timeline()

    def _draw_timeline(self) -> None:
        """The highlighted phase's timeline, one run at a time (`n` for the next run)."""
        key = self.chart_key or ""
        runs = timeline.phase_reports(self.record, key)
        plots = {
            name: self.query_one(f"#tl-{name}", PlotextPlot) for name in ("latency", "rate", "heap")
        }
        for widget in plots.values():
            widget.plt.clear_data()
            widget.plt.clear_figure()
        label = self.query_one("#timeline-key", Static)
        if not runs:
            label.update(f"[b]{key}[/b]: no timeline in this record (recorded by newer runs only)")
            plots["heap"].display = False
            for widget in plots.values():
                widget.refresh()
            return
        self.chart_run %= len(runs)
        run_index, report = runs[self.chart_run]
        notes = " · ".join(timeline.phase_notes(report))
        label.update(
            f"[b]{key}[/b] · run {run_index} ({self.chart_run + 1}/{len(runs)}, n: next) · "
            f"pick the phase on the Summary tab{' · ' + notes if notes else ''}"
        )
        timeline.draw_latency(plots["latency"].plt, report, key)
        timeline.draw_rate(plots["rate"].plt, report)
        plots["heap"].display = timeline.draw_heap(plots["heap"].plt, report)
        for widget in plots.values():
            widget.refresh()

    @work(thread=True, exclusive=True, group="previous", exit_on_error=False)
    def _comparing(self) -> None:
        assert self._against_previous is not None
        self.post_message(PreviousCompared(*self._against_previous(self.record)))

    @on(PreviousCompared)
    def _previous_compared(self, message: PreviousCompared) -> None:
        self.previous, self.comparison = message.previous, message.comparison
        self.pending = False
        self.query_one("#vs-previous", DataTable).loading = False
        self._fill_previous()

    def _fill_previous(self) -> None:
        title = self.query_one("#previous-title", Static)
        table = self.query_one("#vs-previous", DataTable)
        if self.previous is None or self.comparison is None:
            title.update(
                "No earlier run of the same device, profiles and settings to compare with."
            )
            table.display = False
            return
        c = self.comparison
        prev = self.previous
        title.update(
            Text.assemble(
                f"vs previous {prev.get('run_id')} ({fmt.short_stamp(prev.get('started_at'))}): ",
                verdict_text(c.verdict),
                f" · {', '.join(c.where()) or 'nothing changed beyond noise'}"
                " · press c for the full compare",
                *(("\n⚠ set up differently: " + "; ".join(c.mismatches),) if c.mismatches else ()),
            )
        )
        self._fill_previous_table()

    def _fill_previous_table(self) -> None:
        """The rows vs the previous run: below `NARROW` columns, the verdict before the values."""
        table = self.query_one("#vs-previous", DataTable)
        table.clear(columns=True)
        assert self.comparison is not None
        self._narrow = self.size.width < NARROW
        if self._narrow:
            names = [*NARROW_COLUMNS[:4], "previous", "this run", *NARROW_COLUMNS[6:]]
        else:
            names = ["profile:phase", "metric", "previous", "this run", *ROW_COLUMNS[4:]]
        table.add_columns(*names)
        for row in self.comparison.rows:
            if row.path is not None or row.metric not in SUMMARY_METRICS:
                continue
            table.add_row(*(narrow_cells(row) if self._narrow else row_cells(row)))

    def on_resize(self) -> None:
        narrow = self.size.width < NARROW
        if self.previous is not None and self.comparison is not None and narrow != self._narrow:
            self._fill_previous_table()

    def action_timeline(self) -> None:
        show_tab(self.query_one("#results-tabs", TabbedContent), "tab-timeline")

    def action_summary(self) -> None:
        show_tab(self.query_one("#results-tabs", TabbedContent), "tab-summary")
        self.query_one("#aggregated", DataTable).focus()

    def action_next_run(self) -> None:
        self.chart_run += 1
        self._draw_timeline()

    def action_compare(self) -> None:
        if self.pending:
            self.notify("Still comparing with the previous run.")
            return
        if self.previous is None:
            self.notify(
                "No previous run of the same device, profiles and settings.", severity="warning"
            )
            return
        self.post_message(OpenCompare(self.previous, self.record))
