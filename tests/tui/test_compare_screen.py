"""The Compare screen says where the non-stable verdicts are, and shows settings differences
and INCONCLUSIVE in its own word, on synthetic runs whose verdicts are known."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.widgets import DataTable, Static

from perftui.analysis.compare import compare_runs
from perftui.tui.app import PerftuiApp
from perftui.tui.comparison import CompareScreen
from tests.history_factory import make_record

SMALL = {"profiles": ("python_light",), "phases": ("burst",), "max_samples": 300}


def _text(widget: Static) -> str:
    content = widget.render()
    return content.plain if isinstance(content, Text) else str(content)


async def test_header_points_at_hidden_rows_and_settings(tmp_path: Path) -> None:
    a = make_record([20.0, 20.2, 19.9, 20.1], seed=1, **SMALL)
    b = make_record([20.1, 19.9, 20.0, 20.2], seed=2, settings={"timeout": 2.0}, **SMALL)
    for run in b["raw_runs"]:  # one path 3× slower; the phase as a whole does not move
        run["results"][0]["report"]["path_metrics"]["/deps"]["p50_ms"] *= 3
    comparison = compare_runs(a, b)
    app = PerftuiApp(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        app.push_screen(CompareScreen(comparison, a, b, tmp_path))
        await pilot.pause()
        screen = app.screen
        title = _text(screen.query_one("#compare-title", Static))
        assert "1 regression in per-path rows" in title and "press p" in title
        assert f"{comparison.tested} of {len(comparison.rows)} rows tested" in title
        mismatch = _text(screen.query_one("#compare-mismatch", Static))
        assert "timeout: A 6.0, B 2.0" in mismatch
        table = screen.query_one("#compare-table", DataTable)
        shown = table.row_count
        assert shown == sum(1 for r in comparison.rows if r.primary)
        await pilot.press("p")
        assert table.row_count == len(comparison.rows) > shown
        verdicts = {str(table.get_row_at(i)[7]).split(" ")[0] for i in range(table.row_count)}
        assert "REGRESSION" in verdicts  # the per-path row, now shown (column 7: after "path")
