"""End-to-end pilot tests: the real engine process against the real simulated device."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList, Select, Sparkline

from perftui.engine import lifecycle
from perftui.engine.lock import RunLock
from perftui.history.store import HistoryStore
from perftui.tui.app import PerftuiApp
from perftui.tui.factory import create_app
from perftui.tui.screens.compare import CompareScreen
from perftui.tui.screens.dialogs import ChoiceDialog, ConfirmDialog, HelpScreen, TextPrompt
from perftui.tui.screens.history import HistoryScreen
from perftui.tui.screens.live import LiveScreen
from perftui.tui.screens.results import ResultsScreen
from perftui.tui.screens.setup import SetupScreen
from tests.tui.conftest import fill_setup, wait_for


async def run_to_results(pilot: Pilot, app: PerftuiApp) -> ResultsScreen:
    await pilot.press("ctrl+s")
    return await wait_for_results(pilot, app)


async def wait_for_results(pilot: Pilot, app: PerftuiApp) -> ResultsScreen:
    await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen), timeout=45)
    await wait_for(pilot, lambda: app.screen.is_mounted)
    # The previous run is found and compared in a worker.
    await wait_for(pilot, lambda: not getattr(app.screen, "pending", False))
    await pilot.pause()
    return app.screen  # type: ignore[return-value]


async def start_long_run(pilot: Pilot, app: PerftuiApp) -> LiveScreen:
    """A 30 s burst (a test stops it long before), watched until its first heartbeats."""
    await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
    fill_setup(app.screen, **{"f-burst_duration": "30"})
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen))
    live: LiveScreen = app.screen  # type: ignore[assignment]
    await wait_for(pilot, lambda: live.beats >= 3)
    return live


async def test_abort_asks_and_keeps_the_partial_run(history_dir: Path) -> None:
    app = create_app(history_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        live = await start_long_run(pilot, app)
        spark = live.query_one("#spark-burst-p95", Sparkline)
        first = len(spark.data or [])
        await wait_for(pilot, lambda: len(spark.data or []) >= first + 2)
        assert live.refreshes >= 3
        assert "beat" in str(live.query_one("#beat").render())

        await pilot.press("a")  # asked first; "no" keeps the run going
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is live)
        beats = live.beats
        await wait_for(pilot, lambda: live.beats > beats)
        assert live.finished is None

        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        results = await wait_for_results(pilot, app)
        assert results.record["status"] == "stopped"
        assert "STOPPED" in str(results.query_one("#results-title").render())

    partial = json.loads((history_dir / "latest.partial.json").read_text())
    assert partial["status"] == "stopped"
    [stored] = HistoryStore(history_dir).list_runs()
    assert stored["status"] == "stopped"
    with RunLock(history_dir / ".perf_regression.lock"):  # released: a new run may take it
        pass


async def test_two_runs_history_compare_export(history_dir: Path, tmp_path: Path) -> None:
    app = create_app(history_dir)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        setup = app.screen
        fill_setup(setup, tag="first")
        first = await run_to_results(pilot, app)
        assert first.record["status"] == "finished"
        assert first.previous is None
        table = first.query_one("#aggregated", DataTable)
        assert table.row_count == 2  # c_static_only:burst and :long

        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is setup)
        setup.set_value("tag", "second")
        second = await run_to_results(pilot, app)
        assert second.previous is not None, (first.record["target"], second.record["target"])
        assert second.previous["tag"] == "first"
        assert second.record["device"] == "sim" and second.record["settings_fingerprint"]
        assert second.query_one("#vs-previous", DataTable).row_count > 0

        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        history: HistoryScreen = app.screen  # type: ignore[assignment]
        runs = history.query_one("#runs", DataTable)
        assert runs.row_count == 2
        await pilot.press("down", "space", "up", "space")  # the older run picked first
        assert len(history.selected) == 2
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        compare: CompareScreen = app.screen  # type: ignore[assignment]
        await wait_for(pilot, lambda: compare.comparison is not None)
        assert compare.comparison is not None
        assert compare.comparison.a["tag"] == "first"  # the run picked first is A
        assert compare.comparison.b["tag"] == "second"
        rows = compare.query_one("#compare-table", DataTable).row_count
        await pilot.press("p")
        assert compare.query_one("#compare-table", DataTable).row_count > rows
        await pilot.press("g")

        for name in ("report.md", "report.html", "report.json"):
            await pilot.press("e")
            await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt))
            app.screen.query_one("#answer", Input).value = str(tmp_path / name)
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.screen is compare)
            await wait_for(pilot, (tmp_path / name).exists, 5)  # written in a worker
        markdown = (tmp_path / "report.md").read_text()
        assert "## perftui comparison" in markdown
        assert compare.comparison.a["run_id"] in markdown
        assert "<html" in (tmp_path / "report.html").read_text().lower()
        assert json.loads((tmp_path / "report.json").read_text())["a"]["tag"] == "first"

    # `perftui attach RUN` after the run ended: straight to its Results
    viewer = create_app(history_dir, attach=second.record["run_id"])
    async with viewer.run_test(size=(160, 48)) as pilot:
        results = await wait_for_results(pilot, viewer)
        assert results.record["run_id"] == second.record["run_id"]
        assert results.record["tag"] == "second"


async def test_invalid_input_is_marked_before_start(history_dir: Path) -> None:
    app = create_app(history_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        setup: SetupScreen = app.screen  # type: ignore[assignment]
        for field, value in (("runs", "0"), ("f-max_p95_ms", "fast"), ("tag", "@@")):
            fill_setup(setup, **{field: value})
            await pilot.pause()
            assert setup.query_one(f"#{field}", Input).has_class("-invalid")
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert app.screen is setup
            assert "✗" in str(setup.query_one("#setup-error").render())
        fill_setup(setup)
        setup.query_one("#device", Select).clear()  # "other": the typed host:port
        await pilot.pause()
        assert not setup.query_one("#host", Input).disabled
        setup.set_value("host", "not a host")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is setup
        assert setup.query_one("#host", Input).has_class("-invalid")


async def test_lock_held_by_another_run(history_dir: Path) -> None:
    lock = RunLock(history_dir / ".perf_regression.lock")
    lock.acquire()
    try:
        app = create_app(history_dir)
        said: list[str] = []
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
            setup = app.screen
            fill_setup(setup)
            notify = app.notify
            app.notify = lambda message, **kw: (said.append(message), notify(message, **kw))[1]
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: any("another perftui run" in m for m in said))
            await wait_for(pilot, lambda: app.screen is setup)
    finally:
        lock.release()


async def test_help_and_command_palette(history_dir: Path) -> None:
    app = create_app(history_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "History" in titles and "Abort run" not in titles  # no run is going
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        await pilot.press(*"History")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))


async def quit_during_the_run(pilot: Pilot, app: PerftuiApp, answer: str) -> None:
    """ctrl+q, answer the stop-or-leave question, and wait for the app to exit."""
    await pilot.press("ctrl+q")
    await wait_for(pilot, lambda: isinstance(app.screen, ChoiceDialog))
    await pilot.press(answer)
    deadline = time.monotonic() + 30
    while app.is_running and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not app.is_running


async def test_quit_during_a_run_asks_and_keeps_the_partial_run(history_dir: Path) -> None:
    app = create_app(history_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await start_long_run(pilot, app)
        assert "Abort run" in [c.title for c in app.get_system_commands(app.screen)]
        await quit_during_the_run(pilot, app, "s")
    [stored] = HistoryStore(history_dir).list_runs()
    assert stored["status"] == "stopped"


async def test_quit_leaving_the_run_going_then_attach_from_setup(history_dir: Path) -> None:
    """ "Leave it running": the app exits, the run goes on without it; a new TUI lists it in
    Setup, attaches, sees it from its start, and stops it (kept as stopped)."""
    app = create_app(history_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        live = await start_long_run(pilot, app)
        seen = live.beats
        await quit_during_the_run(pilot, app, "l")
    [status] = lifecycle.runs_in_progress(history_dir)
    assert status["alive"]
    last_seen = live.beat.elapsed if live.beat else 0.0
    deadline = time.monotonic() + 10
    while lifecycle.runs_in_progress(history_dir)[0].get("elapsed", 0) <= last_seen + 1:
        assert time.monotonic() < deadline, "the run did not go on without its viewer"
        await asyncio.sleep(0.2)

    again = create_app(history_dir)
    async with again.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(again.screen, SetupScreen))
        listing = again.screen.query_one("#in-progress-list", OptionList)
        await wait_for(pilot, lambda: listing.option_count == 1)
        again.attach_run(status["run_id"])
        await wait_for(pilot, lambda: isinstance(again.screen, LiveScreen))
        watcher: LiveScreen = again.screen  # type: ignore[assignment]
        await wait_for(pilot, lambda: watcher.beats > seen)  # the whole run so far, and more
        assert watcher.phase is not None and watcher.phase.ordinal == 1
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(again.screen, ConfirmDialog))
        await pilot.press("y")
        results = await wait_for_results(pilot, again)
        assert results.record["status"] == "stopped"
    assert lifecycle.runs_in_progress(history_dir) == []
