"""Setup's per-phase clients/rate choice, and the capacity screen drawing a search step by step."""

from __future__ import annotations

import threading
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static
from textual_plotext import PlotextPlot

from perftui.engine.capacity import (
    CapacityGates,
    CapacityResult,
    SearchPlan,
    StepResult,
    search,
)
from perftui.tui.app import PerftuiApp
from perftui.tui.factory import create_app
from perftui.tui.screens.capacity import CapacityScreen
from perftui.tui.screens.setup import SetupScreen
from tests.tui.conftest import fill_setup, wait_for


async def test_rate_field_builds_an_open_loop_phase(history_dir: Path) -> None:
    app = create_app(history_dir)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        setup: SetupScreen = app.screen  # type: ignore[assignment]
        fill_setup(setup)
        rate_box = setup.query_one("#f-burst_rate", Input)
        assert rate_box.disabled  # closed loop by default: clients, no rate
        request = setup.build_request()
        assert request is not None
        profile = request.config.profiles[0]
        assert request.config.phase_settings(profile, "burst").rate is None

        setup.query_one("#mode-burst", Select).value = "rate"
        await pilot.pause()
        assert not rate_box.disabled
        setup.set_value("f-burst_rate", "")
        assert setup.build_request() is None  # rate chosen but not given: marked, no run
        assert "burst rate" in str(setup.query_one("#setup-error", Static).render())

        setup.set_value("f-burst_rate", "75.5")
        request = setup.build_request()
        assert request is not None
        burst = request.config.phase_settings(profile, "burst")
        assert burst.rate == 75.5 and burst.clients == 4  # clients: the most open connections
        assert request.config.phase_settings(profile, "long").rate is None

        setup.query_one("#mode-burst", Select).value = "clients"
        await pilot.pause()
        request = setup.build_request()
        assert request is not None
        assert request.config.phase_settings(profile, "burst").rate is None


class ScriptedJob:
    """A search against a fake device with a knee at 300 req/s, released step by step."""

    def __init__(self) -> None:
        self.gates = CapacityGates(max_p95_ms=100.0)
        self.go = threading.Semaphore(0)
        self.stopped = False

    def measure(self, rate: float, duration: float) -> StepResult:
        self.go.acquire(timeout=10)
        p95 = 10.0 if rate <= 300 else 900.0
        return StepResult(rate, duration, 100, 5.0, p95, p95 * 1.1, 0.0, min(rate, 300.0))

    def run(self, on_step: object, on_beat: object = None) -> CapacityResult:
        plan = SearchPlan(start_rate=100, step_s=1, confirm_s=2)
        return search(self.measure, self.gates, plan, on_step)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.stopped = True


async def open_capacity(pilot: Pilot, app: PerftuiApp, job: ScriptedJob) -> CapacityScreen:
    await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
    app.show_capacity(job)
    await wait_for(pilot, lambda: isinstance(app.screen, CapacityScreen))
    return app.screen  # type: ignore[return-value]


async def test_capacity_screen_adds_a_point_per_step(history_dir: Path) -> None:
    app = create_app(history_dir)
    job = ScriptedJob()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_capacity(pilot, app, job)
        table = screen.query_one("#cap-steps", DataTable)
        assert table.row_count == 0
        for expected in (1, 2, 3):  # 100, 200 pass; 400 fails
            job.go.release()
            await wait_for(pilot, lambda n=expected: table.row_count == n)
        assert [s.result.rate for s in screen.steps] == [100, 200, 400]
        assert "FAIL" in str(table.get_row_at(2)[-1])
        assert screen.running
        status = str(screen.query_one("#cap-status", Static).render())
        assert "400 req/s" in status and "FAIL" in status
        table.move_cursor(row=2)  # the step under the cursor whole (its reasons run past 80)
        await pilot.pause()
        detail = str(screen.query_one("#cap-detail", Static).render())
        assert "FAIL: " + "; ".join(screen.steps[2].reasons) in detail

        for _ in range(20):
            job.go.release()
        await wait_for(pilot, lambda: not screen.running)
        assert screen.result is not None
        assert screen.result.capacity_rps is not None
        assert 280 <= screen.result.capacity_rps <= 300
        assert table.row_count == len(screen.result.steps)
        assert "capacity" in str(screen.query_one("#cap-status", Static).render())
        chart = screen.query_one("#cap-chart", PlotextPlot).plt.build()
        assert "p95 latency (ms) vs rate" in chart

        await pilot.press("escape")  # finished: back without asking
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))


async def test_escape_asks_before_stopping_a_search(history_dir: Path) -> None:
    app = create_app(history_dir)
    job = ScriptedJob()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_capacity(pilot, app, job)
        await pilot.press("escape")
        await pilot.press("y")
        await wait_for(pilot, lambda: job.stopped)
        for _ in range(20):
            job.go.release()
        await wait_for(pilot, lambda: not screen.running)


async def test_f4_starts_a_real_search_and_s_stops_it(history_dir: Path) -> None:
    """Setup's device and profile, the real engine and sim. Before the open-loop engine is
    merged the first step ends the search as hard_stop ("no open-loop phases"); after, `s`
    stops it during a step. Either way the screen says so and the lock is released."""
    app = create_app(history_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        fill_setup(app.screen)
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, CapacityScreen))
        screen: CapacityScreen = app.screen  # type: ignore[assignment]
        await pilot.pause(1.0)
        await pilot.press("s")
        await wait_for(pilot, lambda: not screen.running, timeout=60)
        assert screen.result is not None
        assert screen.result.status in ("stopped", "hard_stop")
        assert "no capacity" in str(screen.query_one("#cap-status", Static).render())


async def test_palette_brings_a_running_search_back(history_dir: Path) -> None:
    app = create_app(history_dir)
    job = ScriptedJob()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_capacity(pilot, app, job)
        await pilot.press("f1")  # another screen on top while the search runs
        await wait_for(pilot, lambda: app.screen is not screen)
        app.action_capacity()
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.running
        job.go.release()
        table = screen.query_one("#cap-steps", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        assert table.size.height >= 3 and screen.query_one("#cap-chart").size.height >= 8
        job.stopped = True
        for _ in range(20):
            job.go.release()
        await wait_for(pilot, lambda: not screen.running)
