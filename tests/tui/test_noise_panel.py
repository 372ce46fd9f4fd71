"""The Compare screen's Noise tab names the runs of the noise model and the runs left out with
why; taking a run out judges again (in a worker) and the verdict follows."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.widgets import SelectionList, Static

from perftui.analysis.comparison import Row
from perftui.history.store import HistoryStore
from perftui.tui.factory import create_app
from perftui.tui.screens.compare import CompareScreen
from tests.history_factory import workflow_history
from tests.tui.conftest import wait_for


def _text(widget: Static) -> str:
    content = widget.render()
    return content.plain if isinstance(content, Text) else str(content)


def _p95(screen: CompareScreen) -> Row:
    return next(r for r in screen.comparison.rows if r.metric == "p95_ms" and r.path is None)


async def test_noise_tab_names_the_sample_and_judges_again(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    a, b, others = workflow_history(store, labelled=True)
    app = create_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        app.open_compare(a, b)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await wait_for(pilot, lambda: screen.comparison is not None, 20)
        await pilot.pause()
        sample = list(screen.comparison.noise_ids)
        assert len(sample) == 3 and not set(sample) & set(others)
        assert "history: 3 runs" in _p95(screen).evidence
        await pilot.press("n")
        await pilot.pause()
        summary = _text(screen.query_one("#noise-summary", Static))
        assert all(run_id in summary for run_id in sample)
        assert "build C, not A's" in summary  # the 1.5× build, left out with why
        runs = screen.query_one("#noise-runs", SelectionList)
        assert sorted(runs.selected) == sorted(sample)
        assert screen.focused is runs  # n goes to the list: space ticks a run
        await pilot.press("space")  # the newest candidate, B's other record: put in by hand
        await screen.query_one("#noise-panel").workers.wait_for_complete()
        await pilot.pause()
        assert others[-2] in screen.comparison.noise_ids
        options = [runs.get_option_at_index(i) for i in range(runs.option_count)]
        marks = {o.value: str(o.prompt)[0] for o in options}  # in text, not only colour
        assert marks[others[-2]] == "✓" and marks[others[0]] == "·"
        runs.deselect_all()  # no sample at all: the intervals lose the device's drift
        await pilot.pause()
        await screen.query_one("#noise-panel").workers.wait_for_complete()
        await pilot.pause()
        assert screen.comparison.noise_ids == []
        assert _p95(screen).evidence == "3 runs each"  # judged again: the runs alone
        assert "0 run(s) (none, by hand)" in _text(screen.query_one("#noise-summary", Static))
        runs.select(others[0])  # a run of the slower build, put in by hand
        await pilot.pause()
        await screen.query_one("#noise-panel").workers.wait_for_complete()
        await pilot.pause()
        assert screen.comparison.noise_ids == [others[0]]
        assert "Compare ·" in _text(screen.query_one("#compare-title", Static))
