"""Start asks "start anyway?" (default no) when the device is doubtful: a host of digits only,
a probe that failed, a probe answered 4xx/5xx. A device that answers starts at once."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Static

from perftui.sim.device import SimServer
from perftui.tui.factory import create_app
from perftui.tui.screens.dialogs import ConfirmDialog
from perftui.tui.screens.setup import SetupScreen
from tests.tui.conftest import RecordingRuns, wait_for


async def test_a_doubtful_device_asks_before_it_starts(history_dir: Path, sim: SimServer) -> None:
    runs = RecordingRuns()  # Start hands the run to it: recorded, nothing launched
    STARTED = runs.started
    app = create_app(history_dir, runs=runs)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        setup = app.screen
        assert isinstance(setup, SetupScreen)
        setup.probe_debounce_s = 0.001
        host = setup.query_one("#host", Input)

        async def start_with(target: str, probe_path: str = "/hello") -> str | None:
            """Start on `target`; the dialog's question, or None if it started at once."""
            await wait_for(pilot, lambda: app.screen is setup)  # the last one went back
            setup.set_value("f-probe_path", probe_path)
            host.value = target
            await pilot.pause(0.05)
            await app.workers.wait_for_complete()
            await pilot.pause()
            await pilot.press("ctrl+s")
            await pilot.pause()
            if not isinstance(app.screen, ConfirmDialog):
                return None
            return app.screen.question

        question = await start_with("18190")
        assert question is not None and "'18190' is a number, not a device" in question
        await pilot.press("enter")  # the focused answer is No
        await pilot.pause()
        assert app.screen is setup and not STARTED

        question = await start_with("127.0.0.1:9")  # nothing listens there
        assert question is not None and "does not answer" in question
        await pilot.press("escape")
        await pilot.pause()
        assert not STARTED

        question = await start_with(f"127.0.0.1:{sim.port}", "/no-such-page")
        assert question is not None and "answered 404" in question
        line = setup.query_one("#probe", Static).render()
        assert "answers, but 404: check the host and the probe path" in str(line)  # not green
        await pilot.press("y")
        await pilot.pause()
        assert len(STARTED) == 1 and STARTED[0].port == sim.port

        assert await start_with(f"127.0.0.1:{sim.port}") is None  # answers 200: no question
        assert len(STARTED) == 2
