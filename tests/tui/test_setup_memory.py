"""Setup remembers: the last setup per device and the device used last, in the user's settings
file; recent devices come from history, loopback included, the simulated device's runs not."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import Collapsible, Input, Select, SelectionList

from perftui.history.store import HistoryStore
from perftui.tui.factory import create_app
from perftui.tui.screens.dialogs import ConfirmDialog
from perftui.tui.settings import FILE_NAME, Settings
from tests.history_factory import make_record
from tests.tui.conftest import RecordingRuns, ready, wait_for


def test_a_damaged_settings_file_is_defaults_and_one_line(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    path.write_text("{not json")
    settings = Settings.load(path)
    assert settings.setups == {} and settings.problem and "using defaults" in settings.problem
    settings.remember_setup("10.0.0.5:80", {"runs": "2"})
    assert Settings.load(path).setups == {"10.0.0.5:80": {"runs": "2"}}


async def test_setup_remembers_the_last_device_and_its_setup(
    history_dir: Path, user_config_dir: Path
) -> None:
    store = HistoryStore(history_dir)
    store.add_run(make_record(20.0, runs=1, target="127.0.0.1:18190"))
    sim_run = make_record(20.0, runs=1, target="127.0.0.1:40001")
    sim_run["device"] = "sim"
    store.add_run(sim_run)

    runs = RecordingRuns()  # Start hands the run to it: recorded, nothing launched
    app = create_app(history_dir, runs=runs)
    async with app.run_test(size=(100, 30)) as pilot:
        setup = await ready(pilot, app)
        # A loopback device is a device; the simulated device's runs are its own entry.
        assert setup.recent == ["127.0.0.1:18190"]
        await pilot.press("tab")
        await pilot.press(*"127.0.0.1:9")
        setup.set_value("runs", "5")
        setup.set_value("f-burst_duration", "2.5")
        chosen = setup.query_one("#profiles", SelectionList)
        chosen.deselect_all()
        chosen.select("static")
        await pilot.pause()
        await pilot.press("ctrl+s")  # nothing answers on port 9: "Start anyway?"
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), 5)
        await pilot.press("y")
        await pilot.pause()
        assert [config.port for config in runs.started] == [9]
    saved = json.loads((user_config_dir / FILE_NAME).read_text())
    assert saved["last_device"] == "127.0.0.1:9"

    app = create_app(history_dir, runs=RecordingRuns())
    async with app.run_test(size=(100, 30)) as pilot:
        setup = await ready(pilot, app)
        assert setup.query_one("#host", Input).value == "127.0.0.1:9"
        assert setup.query_one("#runs", Input).value == "5"
        assert setup.query_one("#f-burst_duration", Input).value == "2.5"
        await pilot.pause()  # the panel's title says the remembered setup is not the defaults
        assert str(setup.query_one("#advanced", Collapsible).title).endswith("(1 changed)")
        assert setup.query_one("#profiles", SelectionList).selected == ["static"]
        assert "127.0.0.1:9" in setup.recent  # set up here, though never stored as a run
        request = setup.build_request()
        assert request is not None and request.config.runs == 5
        # Picking another device brings its own last setup (none yet: the form stays).
        setup.query_one("#device", Select).value = "127.0.0.1:18190"
        await pilot.pause()
        assert setup.query_one("#host", Input).value == "127.0.0.1:18190"
