"""The History screen with more runs than it shows: the newest rows, and a filter over all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from perftui.history.store import HistoryStore
from perftui.tui.app import PerftuiApp
from perftui.tui.screens import history as history_screen
from perftui.tui.screens.history import HistoryScreen
from tests.history_factory import make_record
from tests.tui.conftest import wait_for

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
    app = PerftuiApp(history_dir)
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
