"""Keys from the user's settings file take effect (by binding id), and the help screen is made
from the bindings: every screen's keys, the user's where set."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import Markdown

from perftui.tui.screens.dialogs import HelpScreen
from perftui.tui.screens.history import HistoryScreen
from perftui.tui.screens.setup import SetupScreen
from perftui.tui.settings import FILE_NAME
from tests.tui.conftest import quiet_app, wait_for


async def test_a_key_from_the_settings_file_takes_effect_and_shows_in_help(
    history_dir: Path, user_config_dir: Path
) -> None:
    user_config_dir.mkdir(parents=True)
    (user_config_dir / FILE_NAME).write_text(json.dumps({"keys": {"setup.history": "f6"}}))
    app = quiet_app(history_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        setup = app.screen
        await pilot.press("f2")  # the key it had: no longer bound
        await pilot.pause()
        assert app.screen is setup
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), 5)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is setup, 5)

        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), 5)
        text = app.screen.query_one(Markdown).source
        rows = [line for line in text.splitlines() if line.startswith("| `")]
        assert "| `f6` | Setup | History |" in rows
        # Keys the hand-written help missed: Setup's f3/f4, Results' g/n, Compare's o/m/[ ]/x,
        # Capacity's s and History's r.
        for key, where in [
            ("f3", "Setup"),
            ("f4", "Setup"),
            ("g", "Results"),
            ("n", "Results"),
            ("o", "Compare"),
            ("m", "Compare"),
            ("[", "Compare"),
            ("]", "Compare"),
            ("x", "Compare"),
            ("s", "Capacity"),
            ("r", "History"),
        ]:
            assert any(row.startswith(f"| `{key}` | {where} |") for row in rows), (key, where)
        # One row per action: the help's two keys share theirs, and no key is listed twice.
        assert "| `f1` / `?` | everywhere | this help |" in rows
        cells = [tuple(c.strip() for c in row.split("|")[1:3]) for row in rows]
        assert len(cells) == len(set(cells))
        assert any(row.startswith("| `esc` | Live run |") and "abort" in row for row in rows)
