"""The History screen with more runs than it shows: the newest rows, and a filter over all;
a write waiting for the store's file lock does not freeze it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from filelock import FileLock
from textual.widgets import DataTable, Static

from perftui.history.store import HistoryStore
from perftui.tui.factory import create_app
from perftui.tui.screens import history as history_screen
from perftui.tui.screens.dialogs import TextPrompt
from perftui.tui.screens.history import LOCK_WAIT, HistoryScreen
from perftui.tui.screens.setup import SetupScreen
from tests.history_factory import make_record
from tests.tui.conftest import quiet_app, wait_for

NAMES = ("alpha", "bravo", "charlie", "delta", "echo")


async def test_newest_rows_shown_and_filter_reaches_older(
    history_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_screen, "MAX_ROWS", 3)
    store = HistoryStore(history_dir)
    start = datetime(2026, 9, 1, tzinfo=UTC)
    ids = [
        store.add_run(
            make_record(
                seed=i,
                runs=1,
                phases=["burst"],
                tag=NAMES[i],
                started_at=start + timedelta(days=20 * i),
            )
        )
        for i in range(5)
    ]
    app = create_app(history_dir)
    async with app.run_test(size=(120, 30)) as pilot:
        await app.run_action("history")
        await wait_for(
            pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.is_mounted
        )
        await pilot.pause()
        screen: HistoryScreen = app.screen  # type: ignore[assignment]
        table = screen.query_one("#runs", DataTable)
        assert [k.value for k in table.rows] == ids[:1:-1]  # the newest three
        assert "newest 3 of 5 matching" in str(screen.query_one("#selection", Static).render())
        await pilot.press("slash", *NAMES[0])
        await pilot.pause()
        assert [k.value for k in table.rows] == [ids[0]]  # the oldest, found by its tag
        assert "1 of 5 runs" in str(screen.query_one("#selection", Static).render())


def test_a_run_that_never_started_reads_so_not_as_partial() -> None:
    summary_status = history_screen.summary_status
    assert str(summary_status({"status": "not_started"})) == "never started"
    assert str(summary_status({"status": "stopped"})) == "stopped (partial)"


async def test_a_held_history_lock_does_not_freeze_the_screen(history_dir: Path) -> None:
    """Marking a baseline waits for the store's file lock (another process writing) in a
    worker: meanwhile the screen says so and answers keys; once the lock is free, the mark is
    written."""
    store = HistoryStore(history_dir)
    run_id = store.add_run(make_record(20.0, runs=1, max_samples=300))
    app = quiet_app(history_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        history = app.screen
        other = FileLock(str(store.db_path) + ".lock")  # another writer's hold
        other.acquire()
        try:
            await pilot.press("b")
            await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), 5)
            await pilot.press("enter")  # the name offered: "default"
            await wait_for(pilot, lambda: app.screen is history, 5)
            selection = history.query_one("#selection", Static)
            await wait_for(pilot, lambda: LOCK_WAIT in str(selection.render()), 5)
            await pilot.press("n")  # the screen still answers while the write waits
            await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), 5)
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is history, 5)
            assert store.baselines() == {}
        finally:
            other.release()
        await wait_for(pilot, lambda: history.baselines == {"default": run_id}, 10)
        assert LOCK_WAIT not in str(selection.render())
    assert HistoryStore(history_dir).baselines() == {"default": run_id}
