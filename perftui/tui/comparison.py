"""Compare screen: the settings that differ first; A and B per `profile:phase` (secondary and
per-path rows with `p`), change, its 95 % interval, coloured verdict and the evidence; plotext
charts of both latency distributions, of rps per key and of A over B along the phase (the
records' timelines; `m` picks the metric); the noise model's runs, to put in or take out (`n`);
export of the Markdown or HTML report to a file. The screen draws what the comparison service
made in a worker (`verdicts.CompareView`); it decodes no histogram.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane
from textual_plotext import PlotextPlot

from perftui.analysis import reports
from perftui.analysis.compare import Comparison
from perftui.analysis.curves import CURVE
from perftui.history.files import atomic_write_text
from perftui.tui import fmt, timeline
from perftui.tui.dialogs import TextPrompt
from perftui.tui.noise_panel import NoisePanel, Recompute
from perftui.tui.results import ROW_COLUMNS, row_cells, verdict_text, where_text
from perftui.verdicts import CompareView


class CompareScreen(Screen[None]):
    """A (reference, older) against B (candidate)."""

    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (120, "-wide")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "toggle_paths", "All rows"),
        Binding("g", "charts", "Charts"),
        Binding("t", "table", "Table", show=False),
        Binding("left_square_bracket", "cycle_key(-1)", "Prev key", show=False),
        Binding("right_square_bracket", "cycle_key(1)", "Next key", show=False),
        Binding("o", "over_time", "Over time"),
        Binding("m", "overlay_metric", "Metric over time", show=False),
        Binding("n", "noise", "Noise runs"),
        Binding("e", "export", "Export"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(
        self,
        comparison: Comparison | CompareView,
        a: dict[str, Any],
        b: dict[str, Any],
        export_dir: Path,
        recompute: Recompute | None = None,
    ) -> None:
        super().__init__()
        if isinstance(comparison, Comparison):
            comparison = CompareView(comparison, [], {})
        self.view, self.recompute = comparison, recompute
        self.comparison = comparison.comparison
        self.a = a
        self.b = b
        self.export_dir = export_dir
        self.show_paths = False
        self.keys = list(dict.fromkeys(r.key for r in self.comparison.rows))
        self.chart_key = self.keys[0] if self.keys else None
        self.overlay_metric = 0  # index into timeline.OVERLAY_METRICS

    def _title(self) -> Text:
        c = self.comparison
        if c.nothing_reason:
            return Text.assemble("Compare · ", verdict_text(c.verdict), f": {c.nothing_reason}")
        return Text.assemble(
            "Compare · ",
            verdict_text(c.verdict),
            f" · {where_text(c)} · {c.tested} of {len(c.rows)} rows tested",
        )

    def compose(self) -> ComposeResult:
        c = self.comparison
        yield Static(self._title(), id="compare-title")
        if c.mismatches:
            yield Static(
                Text("⚠ set up differently: " + "; ".join(c.mismatches), style="bold yellow"),
                id="compare-mismatch",
            )
        lines = [
            f"A {c.a.get('run_id')} ({fmt.short_stamp(c.a.get('started_at'))}"
            f"{', ' + c.a['tag'] if c.a.get('tag') else ''}, {c.a.get('status')})  →  "
            f"B {c.b.get('run_id')} ({fmt.short_stamp(c.b.get('started_at'))}"
            f"{', ' + c.b['tag'] if c.b.get('tag') else ''}, {c.b.get('status')})"
        ]
        lines += [f"⚠ {n}" for n in c.notes]
        if c.only_in_a or c.only_in_b:
            lines.append(
                f"only in A: {', '.join(c.only_in_a) or '-'} · "
                f"only in B: {', '.join(c.only_in_b) or '-'}"
            )
        yield Static("\n".join(lines), id="compare-runs")
        with TabbedContent(id="compare-tabs"):
            with TabPane("Table", id="tab-table"):
                yield DataTable(id="compare-table", cursor_type="row", zebra_stripes=True)
            with TabPane("Charts", id="tab-charts"):
                yield Static("", id="chart-key")
                yield PlotextPlot(id="latency-plot")
                with Vertical(id="rps-box"):
                    yield PlotextPlot(id="rps-plot")
                    yield Static("", id="rps-keys")
            with TabPane("Over time", id="tab-overlay"):
                yield Static("A blue, B red, every run · m metric · \\[ ] key", id="overlay-key")
                yield PlotextPlot(id="overlay-plot")
            with TabPane("Noise", id="tab-noise"):
                yield NoisePanel(self.view, self.recompute, id="noise-panel")
        yield Footer()

    def on_mount(self) -> None:
        self._fill_table()
        self._draw_charts()
        self.query_one("#compare-table", DataTable).focus()

    def _fill_table(self) -> None:
        table = self.query_one("#compare-table", DataTable)
        table.clear(columns=True)
        columns = list(ROW_COLUMNS)
        if self.show_paths:
            columns.insert(1, "path")
        table.add_columns(*columns)
        for i, row in enumerate(self.comparison.rows):
            if not row.primary and not self.show_paths:
                continue
            cells = row_cells(row)
            if self.show_paths:
                cells.insert(1, fmt.clip(row.path, 28) if row.path else "(all)")
            table.add_row(*cells, key=str(i))

    @on(DataTable.RowHighlighted, "#compare-table")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is None:
            return
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
        self.query_one("#chart-key", Static).update(
            f"latency distribution of [b]{key}[/b] · \\[ and ] change the key · t back to the table"
        )
        if key is not None:
            xs = list(range(len(CURVE)))
            curves = self.view.curves.get(key, (None, None))
            for label, curve, marker in zip(("A", "B"), curves, ("dot", "braille"), strict=True):
                if curve is not None:
                    plt.plot(xs, curve, label=label, marker=marker)
            plt.xticks(xs, [f"p{q:g}" for q in CURVE])
            plt.title(f"{key}: latency (ms) by percentile, A vs B")
            plt.ylabel("ms")
        widget.refresh()
        self._draw_overlay()

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

    def action_charts(self) -> None:
        self.query_one("#compare-tabs", TabbedContent).active = "tab-charts"

    def action_table(self) -> None:
        self.query_one("#compare-tabs", TabbedContent).active = "tab-table"
        self.query_one("#compare-table", DataTable).focus()

    def action_cycle_key(self, step: int) -> None:
        if not self.keys:
            return
        index = self.keys.index(self.chart_key) if self.chart_key in self.keys else 0
        self.chart_key = self.keys[(index + step) % len(self.keys)]
        self._draw_latency()

    def action_noise(self) -> None:
        self.query_one("#compare-tabs", TabbedContent).active = "tab-noise"
        self.query_one("#noise-runs").focus()

    @on(NoisePanel.Recompared)
    def _recompared(self, event: NoisePanel.Recompared) -> None:
        """The verdict with the user's noise sample: title, table and panel follow it."""
        self.comparison = event.view.comparison
        self.query_one("#compare-title", Static).update(self._title())
        self.query_one(NoisePanel).show(event.view)
        self._fill_table()

    def action_over_time(self) -> None:
        self.query_one("#compare-tabs", TabbedContent).active = "tab-overlay"

    def action_overlay_metric(self) -> None:
        self.overlay_metric = (self.overlay_metric + 1) % len(timeline.OVERLAY_METRICS)
        self._draw_overlay()

    def default_export_path(self) -> Path:
        a, b = self.comparison.a.get("run_id"), self.comparison.b.get("run_id")
        return self.export_dir / f"compare_{a}_vs_{b}.md"

    def action_export(self) -> None:
        def done(answer: str | None) -> None:
            if answer:
                self.export(Path(answer.strip()).expanduser())

        self.app.push_screen(
            TextPrompt(
                "Export the report to (.md = Markdown, .html = HTML):",
                str(self.default_export_path()),
            ),
            done,
        )

    def export(self, path: Path) -> bool:
        """Write the report; the format follows the file's extension."""
        if path.suffix.lower() in (".html", ".htm"):
            text = reports.comparison_html(self.comparison, (self.a, self.b))
        elif path.suffix.lower() in (".md", ".markdown", ".txt"):
            text = reports.comparison_markdown(self.comparison)
        else:
            self.notify(f"{path.name}: use .md or .html", severity="error")
            return False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, text)
        except OSError as exc:
            self.notify(f"could not write {path}: {exc.strerror}", severity="error")
            return False
        self.notify(f"report written to {path}")
        return True
