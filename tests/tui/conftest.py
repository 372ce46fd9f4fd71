"""Helpers for the TUI's pilot and snapshot tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, SelectionList

from perftui.config import RunConfig
from perftui.tui.app import PerftuiApp
from perftui.tui.factory import create_app
from perftui.tui.screens.capacity import CapacityJob
from perftui.tui.screens.setup import SetupScreen
from perftui.tui.services import RunService
from perftui.tui.session import RunSession, SessionError, SimDevice
from perftui.tui.settings import ENV_DIR

# One-second phases, no pauses: a whole run of one profile takes about three seconds.
FAST = {
    "f-burst_duration": "1",
    "f-long_duration": "1",
    "f-burst_clients": "4",
    "f-long_clients": "4",
    "runs": "1",
    "f-between_runs_sleep_ms": "0",
    "f-post_phase_settle_ms": "0",
    # One-second phases on a shared 2-core machine make the tail ratio noisy; not tested here.
    "f-max_tail_p95_ratio": "100",
}


def fill_setup(
    screen: SetupScreen, profiles: tuple[str, ...] = ("c_static_only",), **values: str
) -> None:
    """Short phases (the advanced section) and the chosen profiles only."""
    for field, value in {**FAST, **values}.items():
        screen.set_value(field, value)
    chosen = screen.query_one("#profiles", SelectionList)
    chosen.deselect_all()
    for name in profiles:
        chosen.select(name)


async def wait_for(pilot: Pilot, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Let the app run until `condition()` holds and the screen on view is mounted (a mode's
    screen is on view as soon as it is switched to, and composed a moment later); fail the
    test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (condition() and pilot.app.screen.is_mounted):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {condition}")
        await pilot.pause(0.05)


def verdict_right_edge(table: DataTable) -> int:
    """Where a comparison table's verdict column ends, in cells from the table's left edge."""
    right = 0
    for column in table.ordered_columns:
        right += column.get_render_width(table)
        if str(column.label) == "verdict":
            return right
    raise AssertionError("no verdict column")


@pytest.fixture
def history_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "history"
    folder.mkdir()
    return folder


@pytest.fixture(autouse=True)
def user_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's settings file in a temp dir: no test reads or writes the real one."""
    folder = tmp_path / "config"
    monkeypatch.setenv(ENV_DIR, str(folder))
    return folder


class ClosedPortSim(SimDevice):
    """The simulated device's stand-in (no process: a second to start, more to stop); Setup
    probes it at start, and nothing listens on port 9."""

    base_url = "http://127.0.0.1:9"
    port = 9

    def ensure(self) -> Any:
        return self


def quiet_app(history_dir: Path, **services: Any) -> PerftuiApp:
    """The app with no simulated device's process (its stand-in), and the services given."""
    return create_app(history_dir, sim=ClosedPortSim(), **services)


class NotLaunched(RunSession):
    """A run that never launches: its Live screen says so and goes back to Setup."""

    def start(self) -> None:
        raise SessionError("a test's run: recorded, not launched")


class RecordingRuns(RunService):
    """The run owner's stand-in: each Start's config is recorded, and nothing is launched."""

    def __init__(self) -> None:
        super().__init__(ClosedPortSim(), CapacityJob)
        self.started: list[RunConfig] = []

    def session(self, config: RunConfig, use_sim: bool) -> RunSession:
        self.started.append(config)
        return NotLaunched(config, use_sim, self.sim)


async def ready(pilot: Pilot, app: PerftuiApp) -> SetupScreen:
    """The app once start-up has read the history and Setup shows."""
    await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
    await pilot.pause()
    return app.screen  # type: ignore[return-value]
