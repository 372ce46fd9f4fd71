"""Compare screen: the settings that differ first; A and B per `profile:phase` (secondary and
per-path rows with `p`), change, its 95 % interval, coloured verdict and the evidence; plotext
charts of both latency distributions, of rps per key and of A over B along the phase (the
records' timelines; `m` picks the metric); the noise model's runs, to put in or take out (`n`);
export of the Markdown or HTML report to a file. The screen draws what the comparison service
made in a worker (`verdicts.CompareView`); it decodes no histogram, and writes the export in a
worker too (`services.write_report`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane
from textual_plotext import PlotextPlot

from perftui.analysis.metrics import ALL_METRICS
from perftui.engine.schema import RunRecord
from perftui.tui.messages import Compared
from perftui.tui.mounting import when_composed
from perftui.tui.screens.dialogs import TextPrompt
from perftui.tui.screens.results import (
    NARROW,
    NARROW_COLUMNS,
    narrow_cells,
    row_cells,
    verdict_text,
    where_text,
)
from perftui.tui.services import CURVE, Comparer, CompareView, Comparison, Row, write_report
from perftui.tui.view import fmt, timeline
from perftui.tui.view.timeline import OVERLAY_KEY
from perftui.tui.widgets.noise_panel import NoisePanel
from perftui.tui.widgets.tabs import show_tab
from perftui.tui.workers import ShowsWorkerErrors


def aggregate_of(row: Row, n: int) -> str:
    """What a side's value is: one run's, or the (geometric, for ratios) mean of its runs."""
    if n <= 1:
        return "1 run"
    return f"{'geometric mean' if ALL_METRICS[row.metric].log else 'mean'} of {n} runs"


def _run_line(role: str, side: str, record: RunRecord) -> str:
    tag = f", {record['tag']}" if record.get("tag") else ""
    tag += f", build {record['build']}" if record.get("build") else ""
    return (
        f"{side} = {role} {record.get('run_id')} "
        f"({fmt.short_stamp(record.get('started_at'))}{tag}, {record.get('status')})"
    )


# Screen sizes: from WIDE columns the charts sit side by side; below SHORT rows the header
# scrolls within a part of the screen; below TINY rows (and WIDE columns) the Charts tab shows
# one chart at a time, `g` going from one to the other.
WIDE, SHORT, TINY = 120, 40, 28


class Head(VerticalScroll):
    """The header (verdict, settings that differ, A and B, notes): on a short screen it keeps
    to a part of it and scrolls, focusable only then (mouse wheel, or Tab and the arrows)."""

    def allow_focus(self) -> bool:
        return self.allow_vertical_scroll


class CompareScreen(Screen[None], ShowsWorkerErrors):
    """A (the reference: the run picked first, the baseline, the previous run) against B (the
    candidate). Opens at once; the comparison (a bootstrap, the history's noise) is made in a
    thread worker while a busy sign shows. `x` swaps A and B."""

    CSS_PATH = "compare.tcss"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (WIDE, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [
        (0, "-tiny"),
        (TINY, "-short"),
        (SHORT, "-tall"),
    ]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "p",
            "toggle_paths",
            "All rows",
            id="compare.toggle_paths",
            tooltip="secondary and per-path rows on/off",
        ),
        Binding(
            "g",
            "charts",
            "Charts",
            id="compare.charts",
            tooltip="charts: latency distribution and rps per key (small screens: one, then "
            "the other)",
        ),
        Binding("t", "table", "Table", show=False, id="compare.table"),
        Binding(
            "left_square_bracket", "cycle_key(-1)", "Prev key", show=False, id="compare.prev_key"
        ),
        Binding(
            "right_square_bracket", "cycle_key(1)", "Next key", show=False, id="compare.next_key"
        ),
        Binding(
            "o",
            "over_time",
            "Over time",
            id="compare.over_time",
            tooltip="A over B along the phase, every run",
        ),
        Binding(
            "m",
            "overlay_metric",
            "Metric over time",
            show=False,
            id="compare.overlay_metric",
            tooltip="over time: next metric (p95, p99, p50, rps, errors, heap)",
        ),
        Binding(
            "x",
            "swap",
            "Swap A/B",
            id="compare.swap",
            tooltip="swap A and B: B becomes the reference",
        ),
        Binding(
            "n",
            "noise",
            "Noise runs",
            id="compare.noise",
            tooltip="the runs of the noise model: put runs in or take them out",
        ),
        Binding(
            "e",
            "export",
            "Export",
            id="compare.export",
            tooltip="export the report (.md, .json or .html)",
        ),
        Binding("escape", "app.back", "Back", id="compare.back"),
    ]

    def __init__(
        self,
        comparison: Comparison | CompareView | None,
        a: RunRecord,
        b: RunRecord,
        export_dir: Path,
        compare: Comparer | None = None,
    ) -> None:
        """`comparison` of `a` (reference) and `b`, or None to make it with `compare` in a
        worker (`compare` also remakes it when A and B are swapped or the noise sample is
        picked by hand)."""
        super().__init__()
        if isinstance(comparison, Comparison):
            comparison = CompareView(comparison, [], {})
        self.view = comparison
        self.comparison = comparison.comparison if comparison else None
        self.a = a
        self.b = b
        self.export_dir = export_dir
        self._compare = compare
        self.show_paths = False
        self.swapped = False  # A and B the other way round from how the screen was opened
        self.keys: list[str] = []
        self.chart_key: str | None = None
        self.overlay_metric = 0  # index into timeline.OVERLAY_METRICS
        self.table_layout: tuple[bool, bool, bool] | None = None  # paths, narrow, interval

    def compose(self) -> ComposeResult:
        with Head(id="compare-head"):
            yield Static("Compare · comparing…", id="compare-title")
            yield Static("", id="compare-mismatch")
            yield Static("", id="compare-runs")
        with TabbedContent(id="compare-tabs"):
            with TabPane("Table", id="tab-table"):
                yield DataTable(id="compare-table", cursor_type="row", zebra_stripes=True)
                yield Static("", id="compare-detail")
            with TabPane("Charts", id="tab-charts"):
                yield Static("", id="chart-key")
                yield PlotextPlot(id="latency-plot")
                with Vertical(id="rps-box"):
                    yield PlotextPlot(id="rps-plot")
                    yield Static("", id="rps-keys")
            with TabPane("Over time", id="tab-overlay"):
                yield Static(
                    f"A {OVERLAY_KEY['A']}, B {OVERLAY_KEY['B']}, every run · m metric · \\[ ] key",
                    id="overlay-key",
                )
                yield PlotextPlot(id="overlay-plot")
            with TabPane("Noise", id="tab-noise"):
                yield Static("comparing…", id="noise-wait")
        yield Footer()

    @when_composed
    def on_mount(self) -> None:
        self.query_one("#compare-mismatch", Static).display = False
        if self.comparison is not None:
            self._show()
        else:
            self._start_comparing()

    def _start_comparing(self) -> None:
        if self._compare is None:
            self.notify("This screen was given its comparison: it cannot make another.")
            return
        self.comparison = self.view = None
        self.query_one("#compare-title", Static).update(
            "Compare · comparing A (reference) with B… (bootstrap and history noise)"
        )
        self.query_one("#compare-runs", Static).update(self._runs_text())
        self.query_one("#compare-tabs", TabbedContent).loading = True
        self._comparing(self.a, self.b, self.swapped)

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def _comparing(self, a: RunRecord, b: RunRecord, swapped: bool) -> None:
        assert self._compare is not None
        self.post_message(Compared(self._compare(a, b, None), swapped))

    @on(Compared)
    async def _compared(self, message: Compared) -> None:
        if message.swapped != self.swapped:  # made before a swap: the newer one is on its way
            return
        self.view = message.view
        self.comparison = message.view.comparison
        self._show()
        await self._show_noise_panel()

    async def _show_noise_panel(self) -> None:
        """The Noise tab for this comparison (made again after a swap: another sample)."""
        assert self.view is not None
        pane = self.query_one("#tab-noise", TabPane)
        await pane.remove_children()
        recompute = None
        if self._compare is not None:
            a, b, make = self.a, self.b, self._compare

            def recompute(choice: str | Sequence[str]) -> CompareView:
                return make(a, b, choice)

        await pane.mount(NoisePanel(self.view, recompute, id="noise-panel"))

    def _title(self) -> Text:
        c = self.comparison
        assert c is not None
        if c.nothing_reason:
            return Text.assemble("Compare · ", verdict_text(c.verdict), f": {c.nothing_reason}")
        return Text.assemble(
            "Compare · ",
            verdict_text(c.verdict),
            f" · {where_text(c)} · {c.tested_text}",
        )

    def _runs_text(self) -> str:
        return f"{_run_line('reference', 'A', self.a)}  →  {_run_line('candidate', 'B', self.b)}"

    def _show(self) -> None:
        c = self.comparison
        assert c is not None
        self.keys = list(dict.fromkeys(r.key for r in c.rows))
        if self.chart_key not in self.keys:
            self.chart_key = self.keys[0] if self.keys else None
        self.query_one("#compare-title", Static).update(self._title())
        mismatch = self.query_one("#compare-mismatch", Static)
        mismatch.display = bool(c.mismatches)
        mismatch.update(
            Text("⚠ set up differently: " + "; ".join(c.mismatches), style="bold yellow")
        )
        lines = [self._runs_text(), self._aggregates_text()]
        lines += [f"⚠ {n}" for n in c.notes]
        if c.only_in_a or c.only_in_b:
            lines.append(
                f"only in A: {', '.join(c.only_in_a) or '-'} · "
                f"only in B: {', '.join(c.only_in_b) or '-'}"
            )
        self.query_one("#compare-runs", Static).update("\n".join(lines))
        self.query_one("#compare-tabs", TabbedContent).loading = False
        self._fill_table()
        self._draw_charts()
        # Focus moves the tabs to the table's: not when the user went to another while waiting.
        if self.query_one("#compare-tabs", TabbedContent).active == "tab-table":
            self.query_one("#compare-table", DataTable).focus()

    def _aggregates_text(self) -> str:
        """What A and B are when a side has several runs (the title's figures are these)."""
        c = self.comparison
        assert c is not None
        counts = [(r.n_a, r.n_b) for r in c.rows if r.primary and r.n_a and r.n_b]
        if not counts:
            return "A and B: each side's runs"
        n_a, n_b = max(counts)
        return (
            f"A: {_side_runs(n_a)}, B: {_side_runs(n_b)}; rps and latency are each side's "
            "geometric mean over its runs, error % and heap its mean (row detail below the table)"
        )

    def _fill_table(self) -> None:
        table = self.query_one("#compare-table", DataTable)
        table.clear(columns=True)
        if self.comparison is None:
            return
        # Per-path rows: one "where" column (the phase's key on its own row, its paths indented
        # under it), and below 110 columns the interval moves to the detail line, so every
        # column, the verdict too, fits 100 columns. Below NARROW columns the verdict comes
        # right after the change (A and B after it), so it is whole on 80 columns.
        self.table_layout = self._table_layout()
        _, narrow, with_interval = self.table_layout
        first = "where" if self.show_paths else "profile:phase"
        if narrow:
            columns = [first, *NARROW_COLUMNS[1:4], "A (ref)", "B"]
        else:
            columns = [first, "metric", "A (ref)", "B", "change", "95 % interval", "verdict"]
        if not with_interval and not narrow:
            columns.remove("95 % interval")
        table.add_columns(*columns)
        for i, row in enumerate(self.comparison.rows):
            if not row.primary and not self.show_paths:
                continue
            # The evidence and the verdict's note are in the detail line under the table: with
            # them the columns did not fit 100 columns (the verdict was cut off).
            if narrow:
                cells = narrow_cells(row)[:6]
            else:
                cells = [*row_cells(row)[:6], verdict_text(row.verdict)]
            if self.show_paths and row.path:
                cells[0] = "  " + fmt.clip(row.path, 18 if narrow else 22)
            if not with_interval and not narrow:
                del cells[5]
            table.add_row(*cells, key=str(i))
        first = next(iter(table.rows), None)
        self._show_detail(None if first is None else int(str(first.value)))

    def _table_layout(self) -> tuple[bool, bool, bool]:
        """Per-path rows shown, the narrow column order, the interval column shown."""
        narrow = self.size.width < NARROW
        interval = not narrow and (not self.show_paths or self.size.width >= 110)
        return self.show_paths, narrow, interval

    def on_resize(self) -> None:
        if self.comparison is not None and self._table_layout() != self.table_layout:
            self._fill_table()  # the columns follow the width
        self._show_chart_key()

    def _show_detail(self, index: int | None) -> None:
        """The row under the cursor in full: each side's value and what it is, the interval's
        evidence and the verdict's note."""
        detail = self.query_one("#compare-detail", Static)
        if self.comparison is None or index is None:
            detail.update("")
            return
        row = self.comparison.rows[index]
        where = f"{row.key}{' ' + row.path if row.path else ''} {ALL_METRICS[row.metric].label}"
        text = Text.assemble(
            (where, "bold"),
            f": A (reference) {fmt.num(row.a, 2)} = {aggregate_of(row, row.n_a)}; "
            f"B {fmt.num(row.b, 2)} = {aggregate_of(row, row.n_b)} · ",
            verdict_text(row.verdict, row.note),
            f" · interval {row_cells(row)[5]} · evidence: {row.evidence or row.test or '-'}",
        )
        detail.update(text)

    @on(DataTable.RowHighlighted, "#compare-table")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is None or self.comparison is None:
            return
        self._show_detail(int(event.row_key.value))
        key = self.comparison.rows[int(event.row_key.value)].key
        if key != self.chart_key:
            self.chart_key = key
            self._draw_latency()

    def _draw_charts(self) -> None:
        self._draw_latency()
        self._draw_rps()

    def _draw_latency(self) -> None:
        widget = self.query_one("#latency-plot", PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        key = self.chart_key
        self._show_chart_key()
        if key is not None:
            xs = list(range(len(CURVE)))
            curves = self.view.curves.get(key, (None, None)) if self.view else (None, None)
            for label, curve, marker in zip(("A", "B"), curves, ("dot", "braille"), strict=True):
                if curve is not None:
                    plt.plot(xs, curve, label=label, marker=marker)
            plt.xticks(xs, [f"p{q:g}" for q in CURVE])
            plt.title(f"{key}: latency (ms) by percentile, A vs B")
            plt.ylabel("ms")
        widget.refresh()
        self._draw_overlay()

    def _one_chart(self) -> bool:
        """The Charts tab shows one chart at a time (`g` for the other): a small screen."""
        return self.size.width < WIDE and self.size.height < TINY

    def _show_chart_key(self) -> None:
        """The line above the charts (under WIDE columns): which key, and the keys to press."""
        key = f"latency distribution of [b]{self.chart_key}[/b]"
        if not self._one_chart():
            text = f"{key} · \\[ and ] change the key · t back to the table"
        elif self.has_class("-rps"):
            text = "rps ok per key, A vs B · g: latency chart · t: table"
        else:
            text = f"{key} · \\[ ] key · g: rps chart · t: table"
        self.query_one("#chart-key", Static).update(text)

    def _draw_overlay(self) -> None:
        """A and B over the phase, every run, from the records' timelines."""
        widget = self.query_one("#overlay-plot", PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        key = self.chart_key or ""
        sides = {
            "A": timeline.phase_reports(self.a, key),
            "B": timeline.phase_reports(self.b, key),
        }
        if not timeline.draw_overlay(plt, sides, key, self.overlay_metric):
            plt.title(
                f"{key}: no timeline in {'either run' if not any(sides.values()) else 'one run'}"
            )
        widget.refresh()

    def _draw_rps(self) -> None:
        widget = self.query_one("#rps-plot", PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        if self.comparison is None:
            return
        rows = [r for r in self.comparison.rows if r.path is None and r.metric == "rps_ok"]
        if rows:
            # Numbered ticks: plotext places long text tick labels differently from one process
            # to the next (hash order), so the names go in the legend line under the chart.
            xs = list(range(1, len(rows) + 1))
            plt.multiple_bar(
                xs, [[r.a or 0.0 for r in rows], [r.b or 0.0 for r in rows]], labels=["A", "B"]
            )
            plt.xticks(xs, [str(x) for x in xs])
            plt.title("rps ok per key, A vs B")
        self.query_one("#rps-keys", Static).update(
            "  ".join(f"{i} {r.key}" for i, r in enumerate(rows, start=1))
        )
        widget.refresh()

    # ----- actions -----------------------------------------------------------------------

    def action_toggle_paths(self) -> None:
        self.show_paths = not self.show_paths
        self._fill_table()

    def action_swap(self) -> None:
        """B becomes the reference: the comparison is made again, the other way round."""
        if self._compare is None:
            self.notify("This screen was given its comparison: it cannot make another.")
            return
        self.a, self.b = self.b, self.a
        self.swapped = not self.swapped
        self._start_comparing()

    def action_charts(self) -> None:
        tabs = self.query_one("#compare-tabs", TabbedContent)
        if tabs.active == "tab-charts" and self._one_chart():
            self.toggle_class("-rps")  # the other chart
            self._show_chart_key()
        show_tab(tabs, "tab-charts")

    @on(TabbedContent.TabActivated, "#compare-tabs")
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """Off the table, a short screen's header keeps to a few lines: the charts' room."""
        self.set_class(event.pane.id != "tab-table", "-off-table")

    def action_table(self) -> None:
        show_tab(self.query_one("#compare-tabs", TabbedContent), "tab-table")
        self.query_one("#compare-table", DataTable).focus()

    def action_cycle_key(self, step: int) -> None:
        if not self.keys:
            return
        index = self.keys.index(self.chart_key) if self.chart_key in self.keys else 0
        self.chart_key = self.keys[(index + step) % len(self.keys)]
        self._draw_latency()

    def action_noise(self) -> None:
        show_tab(self.query_one("#compare-tabs", TabbedContent), "tab-noise")
        if self.query("#noise-runs"):
            self.query_one("#noise-runs").focus()

    @on(NoisePanel.Recompared)
    def _recompared(self, event: NoisePanel.Recompared) -> None:
        """The verdict with the user's noise sample: title, table and panel follow it."""
        self.view = event.view
        self.comparison = event.view.comparison
        self.query_one("#compare-title", Static).update(self._title())
        self.query_one(NoisePanel).show(event.view)
        self._fill_table()

    def action_over_time(self) -> None:
        show_tab(self.query_one("#compare-tabs", TabbedContent), "tab-overlay")

    def action_overlay_metric(self) -> None:
        self.overlay_metric = (self.overlay_metric + 1) % len(timeline.OVERLAY_METRICS)
        self._draw_overlay()

    def default_export_path(self) -> Path:
        a, b = self.a.get("run_id"), self.b.get("run_id")
        return self.export_dir / f"compare_{a}_vs_{b}.md"

    def action_export(self) -> None:
        if self.comparison is None:
            self.notify("Still comparing.")
            return

        def done(answer: str | None) -> None:
            if answer:
                self.export(Path(answer.strip()).expanduser())

        self.app.push_screen(
            TextPrompt(
                "Export the report to (.md = Markdown, .json = JSON, .html = HTML):",
                str(self.default_export_path()),
            ),
            done,
        )

    def export(self, path: Path) -> None:
        """Write the report in a worker; the format follows the file's extension."""
        assert self.comparison is not None
        self._exporting(self.comparison, (self.a, self.b), path)

    @work(thread=True, group="export", exit_on_error=False)
    def _exporting(
        self, comparison: Comparison, runs: tuple[RunRecord, RunRecord], path: Path
    ) -> None:
        try:
            said = write_report(comparison, runs, path)
        except ValueError as exc:
            self.notify(str(exc), severity="error")
        except OSError as exc:
            self.notify(f"could not write {path}: {exc.strerror}", severity="error")
        else:
            self.notify(said)


def _side_runs(n: int) -> str:
    return "1 run" if n == 1 else f"{n} runs"
