"""The Compare screen says where the non-stable verdicts are, and shows settings differences
and INCONCLUSIVE in its own word, on synthetic runs whose verdicts are known."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.widgets import DataTable, Static

from perftui.analysis.compare import compare_runs
from perftui.tui.factory import create_app
from perftui.tui.screens.compare import CompareScreen
from perftui.verdicts import CompareView
from tests.history_factory import make_record
from tests.tui.conftest import verdict_right_edge, wait_for

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
    app = create_app(tmp_path)
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
        verdicts = {str(table.get_row_at(i)[6]).split(" ")[0] for i in range(table.row_count)}
        assert "REGRESSION" in verdicts  # the per-path row, now shown
        where = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert "python_light:burst" in where and "  /deps" in where  # paths under their phase


async def test_opens_at_once_names_the_reference_swaps_and_fits_100x30(tmp_path: Path) -> None:
    a = make_record([20.0, 20.2, 19.9], seed=1, tag="first", **SMALL)
    b = make_record([26.0, 26.5, 25.9], seed=2, tag="second", **SMALL)
    gate = threading.Event()

    def held(a: dict[str, Any], b: dict[str, Any], noise: object) -> CompareView:
        """The comparison, held back until the test has seen the screen wait for it."""
        gate.wait(10)
        return CompareView(compare_runs(a, b), [], {})

    app = create_app(tmp_path, compare=held)
    async with app.run_test(size=(100, 30)) as pilot:
        app.open_compare(a, b)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        # At once, busy: the comparison is made in a worker.
        assert screen.comparison is None and screen.query_one("#compare-tabs").loading
        assert "comparing" in _text(screen.query_one("#compare-title", Static))
        gate.set()
        await wait_for(pilot, lambda: screen.comparison is not None, 20)
        await pilot.pause()
        assert not screen.query_one("#compare-tabs").loading
        runs = _text(screen.query_one("#compare-runs", Static))
        assert f"A = reference {a['run_id']}" in runs and f"B = candidate {b['run_id']}" in runs
        assert "geometric mean over its runs" in runs
        detail = _text(screen.query_one("#compare-detail", Static))
        assert "A (reference)" in detail and "= geometric mean of 3 runs" in detail
        assert "evidence: 3 runs each" in detail
        table = screen.query_one("#compare-table", DataTable)
        width = sum(c.get_render_width(table) for c in table.columns.values())
        assert width <= 100 - 2, width  # every column, the verdict too, within the screen
        assert str(table.get_row_at(1)[6]).startswith("REGRESSION")  # p95, slower B

        gate.clear()
        await pilot.press("x")  # B becomes the reference
        await pilot.pause()
        assert screen.comparison is None
        gate.set()
        await wait_for(pilot, lambda: screen.comparison is not None, 20)
        assert screen.comparison is not None
        assert screen.comparison.a["tag"] == "second" and screen.comparison.b["tag"] == "first"
        assert f"A = reference {b['run_id']}" in _text(screen.query_one("#compare-runs", Static))
        await pilot.pause()
        assert str(table.get_row_at(1)[6]).startswith("IMPROVEMENT")
        await pilot.press("p")  # per-path rows: still every column within 100 (the interval
        await pilot.pause()  # moves to the detail line below 110 columns)
        width = sum(c.get_render_width(table) for c in table.columns.values())
        assert width <= 100 - 2 and table.row_count > 3, width
        assert "interval [" in _text(screen.query_one("#compare-detail", Static))


async def test_at_80x24_the_verdict_is_whole_and_the_charts_have_room(tmp_path: Path) -> None:
    """The smallest common terminal: every verdict within the screen (the other columns after
    it, or in the detail line), and the Charts tab one usable chart at a time (`g`: the other)."""
    two = {**SMALL, "profiles": ("python_light", "python_heavy"), "phases": ("burst", "long")}
    a = make_record([20.0, 20.2, 19.9], seed=1, **two)
    b = make_record([26.0, 26.5, 25.9], seed=2, **two)
    app = create_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(CompareScreen(compare_runs(a, b), a, b, tmp_path))
        await pilot.pause()
        screen = app.screen
        table = screen.query_one("#compare-table", DataTable)
        for _ in ("primary rows", "all rows"):
            assert verdict_right_edge(table) <= table.scrollable_content_region.width
            assert table.region.right <= 80 and table.scroll_x == 0
            assert table.region.height >= 8  # the header scrolls within 40 % of the screen
            await pilot.press("p")
            await pilot.pause()
        assert "interval [" in _text(screen.query_one("#compare-detail", Static))

        latency, rps = screen.query_one("#latency-plot"), screen.query_one("#rps-plot")
        await pilot.press("g")
        await pilot.pause()
        assert latency.region.height >= 12 and latency.region.bottom <= 23  # above the footer
        assert not rps.region and "g: rps chart" in _text(screen.query_one("#chart-key", Static))
        await pilot.press("g")  # the other chart
        await pilot.pause()
        assert rps.region.height >= 10 and not latency.region

        await pilot.resize_terminal(100, 30)  # both again, one above the other
        await pilot.pause()
        assert latency.region.height >= 8 and rps.region.height >= 8
        assert latency.region.bottom <= rps.region.y and rps.region.bottom <= 29
