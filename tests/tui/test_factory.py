"""The app uses the services `create_app` gives it, and only those: a fake history (no store
on disk), a run owner that records Start, a scripted probe. And the history service refuses
to block an event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Static

from perftui.engine.schema import IndexRow, RunRecord
from perftui.history.store import HistoryStore, summarize
from perftui.tui.factory import create_app
from perftui.tui.screens.history import HistoryScreen
from perftui.tui.screens.results import ResultsScreen
from perftui.tui.services import HistoryService, OnUILoop, StartInfo
from tests.history_factory import make_record
from tests.tui.conftest import RecordingRuns, ready, wait_for


class FakeHistory(HistoryService):
    """One run, held in memory; its store points at a folder that never exists."""

    def __init__(self, nowhere: Path) -> None:
        super().__init__(HistoryStore(nowhere))
        self.run = make_record(20.0, runs=1, run_id="fake-run", target="10.9.8.7:80", tag="fake")
        self.asked: list[str] = []

    def start_info(self) -> StartInfo:
        self.asked.append("start")
        return StartInfo(["10.9.8.7:80"], 0)

    def history(self) -> tuple[list[IndexRow], dict[str, str]]:
        self.asked.append("history")
        return [summarize(self.run, "fake-run.json.gz", "0")], {}

    def record(self, run_id: str) -> RunRecord:
        self.asked.append(f"record {run_id}")
        return self.run

    def against_previous(self, record: RunRecord) -> tuple[Any, Any]:
        self.asked.append("previous")
        return None, None


async def test_the_app_uses_the_services_it_is_given(tmp_path: Path) -> None:
    history_dir = tmp_path / "history"
    history = FakeHistory(tmp_path / "nowhere")
    runs = RecordingRuns()
    app = create_app(
        history_dir, history=history, runs=runs, probe=lambda base, path: (True, "scripted")
    )
    async with app.run_test(size=(100, 30)) as pilot:
        setup = await ready(pilot, app)
        assert setup.recent == ["10.9.8.7:80"]  # the fake's targets
        probe = setup.query_one("#probe", Static)
        await wait_for(pilot, lambda: "scripted" in str(probe.render()), 5)
        await pilot.press("ctrl+s")  # the simulated device: never doubtful, started at once
        await wait_for(pilot, lambda: len(runs.started) == 1, 5)
        assert runs.started[0].device == "sim"
        await wait_for(pilot, lambda: app.screen is setup, 5)  # not launched: back to Setup

        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), 5)
        table = app.screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, 5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen), 5)
        assert app.screen.record["tag"] == "fake"  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: "previous" in history.asked, 5)
    assert history.asked[0] == "start" and "record fake-run" in history.asked
    assert not history_dir.exists() and not (tmp_path / "nowhere").exists()


async def test_a_history_call_on_the_event_loop_raises(tmp_path: Path) -> None:
    """What keeps a stray call from freezing the UI: on a loop it fails, in a thread it runs."""
    history = HistoryService(HistoryStore(tmp_path))
    for call in (history.runs, history.warm_up):
        with pytest.raises(OnUILoop):
            call()
    assert await asyncio.to_thread(history.runs) == []


@pytest.mark.parametrize("opened", ["results", "history"])
async def test_quitting_while_a_screen_opens_is_no_traceback(tmp_path: Path, opened: str) -> None:
    """Results open by themselves when a run ends: a ctrl+q at that moment closed the app while
    the screen's widgets were not mounted, and its on_mount failed on them."""
    app = create_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, app)
        if opened == "results":
            app.push_screen(ResultsScreen(make_record(20.0, runs=1)))
        else:
            app.push_screen(HistoryScreen(app.history))
        app.exit()  # run_test re-raises what the app died of
