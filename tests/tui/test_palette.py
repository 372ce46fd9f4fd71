"""The command palette opens a stored run by its tag or id."""

from __future__ import annotations

from pathlib import Path

from textual import events

from perftui.history.store import HistoryStore
from perftui.tui.screens.results import ResultsScreen
from perftui.tui.screens.setup import SetupScreen
from tests.history_factory import make_record
from tests.tui.conftest import quiet_app, wait_for


async def test_palette_opens_a_run_by_tag_and_by_id(history_dir: Path) -> None:
    store = HistoryStore(history_dir)
    ids = {}
    for n, tag in enumerate(("before_fix", "after_fix")):  # two devices: nothing to compare
        record = make_record(20.0, runs=1, tag=tag, max_samples=300, target=f"10.0.0.{n}:80")
        ids[tag] = store.add_run(record)
    app = quiet_app(history_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        for query, tag in (("before_fix", "before_fix"), (ids["after_fix"], "after_fix")):
            await pilot.press("ctrl+p")
            await pilot.pause(0.3)
            assert app._driver is not None
            app._driver.send_message(events.Paste(query))  # typed whole, as a paste
            await pilot.pause(0.5)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen), 5)
            screen = app.screen
            assert isinstance(screen, ResultsScreen) and screen.record["tag"] == tag
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen), 5)
