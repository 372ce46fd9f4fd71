"""Results' Timeline tab and Compare's overlay draw the records' timelines; the phase notes say
what a report adds (stalls, CO-corrected percentiles when they differ, client-bound)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Static, TabbedContent
from textual_plotext import PlotextPlot

from perftui.analysis.compare import compare_runs
from perftui.tui.factory import create_app
from perftui.tui.screens.compare import CompareScreen
from perftui.tui.screens.results import ResultsScreen
from perftui.tui.view import timeline
from perftui.tui.view.timeline import phase_notes
from tests.history_factory import make_record
from tests.tui.conftest import verdict_right_edge, wait_for

KW = {"profiles": ("python_light",), "max_samples": 2000}


def lines(plot: PlotextPlot) -> list[tuple[list[float], list[float]]]:
    """The (x, y) series drawn on a plot, as plotext's figure holds them (its monitor: there is
    no public getter; the plotted data is what this test is about)."""
    monitor = plot.plt._active.monitor
    return [(list(x), list(y)) for x, y in zip(monitor.x, monitor.y, strict=True)]


async def test_results_timeline_draws_the_highlighted_phase(tmp_path: Path) -> None:
    """`g` opens the Timeline whatever table of the Summary has the focus: with the comparison
    with the previous run there are two, and hiding the focused one handed the focus to the
    other, which switched the tab back, so `g` did nothing (Textual #4955). At 80×24, as the
    new-user trial had it."""
    previous = make_record([20.0, 24.0], seed=2, **KW)
    record = make_record([20.0, 25.0], seed=1, timeline=True, **KW)
    report = record["raw_runs"][0]["results"][0]["report"]
    report["stalls"] = {"count": 1, "longest_ms": 1020.0, "total_ms": 1020.0, "at": [5.0]}
    app = create_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = ResultsScreen(record, previous, compare_runs(previous, record))
        await app.push_screen(screen)
        await pilot.pause()
        table = screen.query_one("#vs-previous", DataTable)  # its verdicts whole on 80 columns
        assert verdict_right_edge(table) <= table.scrollable_content_region.width <= 80
        tabs = screen.query_one("#results-tabs", TabbedContent)
        for focus in ("#vs-previous", "#aggregated"):
            screen.query_one(focus).focus()
            await pilot.pause()
            await pilot.press("g")
            await pilot.pause()
            assert tabs.active == "tab-timeline", focus
            await pilot.press("t")  # back to the Summary, its first table focused
            await pilot.pause()
            assert tabs.active == "tab-summary" and app.focused is screen.query_one("#aggregated")
        await pilot.press("tab", "g")  # Tab: from the first table to the second, then g
        await pilot.pause()
        assert tabs.active == "tab-timeline" and isinstance(screen, ResultsScreen)
        latency = lines(screen.query_one("#tl-latency", PlotextPlot))
        timeline = report["timeline"]
        assert [x for x, _ in latency[:3]] == [timeline["t_s"]] * 3
        assert [y for _, y in latency[:3]] == [
            timeline["p50_ms"], timeline["p95_ms"], timeline["p99_ms"]
        ]  # fmt: skip
        assert "1 stall(s) marked" in str(
            screen.query_one("#tl-latency", PlotextPlot).plt._active.monitor.title
        )
        heap = lines(screen.query_one("#tl-heap", PlotextPlot))
        assert heap[0][1] == timeline["heap_free"]
        # n: the next run of the same phase.
        await pilot.press("n")
        await pilot.pause()
        second = record["raw_runs"][1]["results"][0]["report"]["timeline"]
        assert lines(screen.query_one("#tl-latency", PlotextPlot))[1][1] == second["p95_ms"]
        assert "run 2" in str(screen.query_one("#timeline-key", Static).render())


async def test_compare_overlays_a_and_b_over_the_phase(tmp_path: Path) -> None:
    a = make_record([20.0, 21.0], seed=1, timeline=True, **KW)
    b = make_record([27.0, 26.0, 28.0], seed=2, timeline=True, **KW)
    app = create_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        app.open_compare(a, b)  # judged in a worker, then shown
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await pilot.press("o")  # while the comparison is being made: the tab stays
        await wait_for(pilot, lambda: screen.comparison is not None)
        await pilot.pause()
        drawn = lines(screen.query_one("#overlay-plot", PlotextPlot))
        key = screen.chart_key
        expected = [
            res["report"]["timeline"]["p95_ms"]
            for rec in (a, b)
            for run in rec["raw_runs"]
            for res in run["results"]
            if f"{res['profile']}:{res['phase']}" == key
        ]
        assert screen.query_one("#compare-tabs", TabbedContent).active == "tab-overlay"
        assert [y for _, y in drawn] == expected  # 2 runs of A then 3 of B
        await pilot.press("m", "m", "m")  # p95 → p99 → p50 → rps
        await pilot.pause()
        assert (
            lines(screen.query_one("#overlay-plot", PlotextPlot))[0][1]
            == (a["raw_runs"][0]["results"][0]["report"]["timeline"]["rps"])
        )


def test_phase_notes_show_co_corrected_only_when_it_differs_by_more_than_ten_percent() -> None:
    base = {"p50_ms": 6.5, "p95_ms": 7.5, "p99_ms": 9.3}
    close = {**base, "co_corrected": {"p50_ms": 6.6, "p95_ms": 8.0, "p99_ms": 10.0}}
    assert phase_notes(close) == []
    far = {**base, "co_corrected": {"p50_ms": 6.6, "p95_ms": 500.0, "p99_ms": 944.0}}
    [note] = phase_notes(far)
    assert note.startswith("CO-corrected p95 7.5→500, p99 9.3→944 ms (higher):")
    assert "p50" not in note
    flagged = phase_notes({"client_bound": True, "stalls": {"count": 0}})
    assert flagged == ["client-bound: these numbers describe perftui, not the device"]


def test_a_last_window_cut_short_by_the_phase_end_is_not_drawn() -> None:
    """12 answers in the last 56 ms drew a cliff (or a spike) at every phase's end."""
    cut = {"window_s": 1, "t_s": [1.0, 2.0, 2.056], "rps": [294.0, 295.0, 216.0]}
    assert timeline._points(cut, "rps") == ([1.0, 2.0], [294.0, 295.0])
    whole = {"window_s": 1, "t_s": [1.0, 2.0, 2.9], "rps": [294.0, 295.0, 290.0]}
    assert timeline._points(whole, "rps") == ([1.0, 2.0, 2.9], [294.0, 295.0, 290.0])
