"""Snapshots of every screen at 80×24 and 160×48, from fixed records and fixed events.

Nothing on these screens comes from the clock or a random source: records are built with fixed
stamps and seeds, the live screen is fed a scripted event stream, and the health probe and the
simulated device are stubbed (the pilot tests exercise the real ones).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from perftui.config import PhaseSettings, RunConfig
from perftui.engine.events import (
    Event,
    Heartbeat,
    Log,
    PathCounts,
    PhaseFinished,
    PhaseStarted,
    RunStarted,
    Telemetry,
)
from perftui.history.store import HistoryStore
from perftui.profiles import resolve_profile
from perftui.tui import session
from perftui.tui.app import PerftuiApp
from perftui.tui.factory import create_app
from perftui.tui.screens.live import LiveScreen
from perftui.tui.screens.setup import SetupScreen
from perftui.tui.settings import FILE_NAME, Settings
from tests.history_factory import make_record
from tests.tui.conftest import wait_for

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
PROFILES = ("c_static_only", "python_light")


class FakeSim:
    base_url = "http://127.0.0.1:8080"
    port = 8080


class FrozenSim(session.SimDevice):
    """The simulated device at a fixed port, never started."""

    def ensure(self) -> Any:
        return FakeSim()


def snap_app(history_dir: Path) -> PerftuiApp:
    """The probe's answer and the sim's port are the only live values Setup shows: both fixed."""
    return create_app(
        history_dir,
        sim=FrozenSim(),
        probe=lambda base, path: (True, f"{base}{path} answered 200"),
    )


def store_runs(history_dir: Path) -> dict[str, dict[str, Any]]:
    """A baseline, a slower candidate with errors, and a stopped run."""
    store = HistoryStore(history_dir)
    runs = {
        "a": make_record(
            [20.0, 21.0, 19.5],
            profiles=PROFILES,
            seed=1,
            tag="baseline_v1",
            started_at=datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
            max_samples=4000,
        ),
        "b": make_record(
            [27.0, 28.5, 26.0],
            profiles=PROFILES,
            seed=2,
            tag="candidate",
            error_rate=3.0,
            started_at=datetime(2026, 11, 21, 14, 5, tzinfo=UTC),
            max_samples=4000,
        ),
        "c": make_record(
            20.0,
            runs=1,
            profiles=("python_heavy",),
            seed=3,
            status="stopped",
            target="192.168.0.140:8080",
            started_at=datetime(2026, 11, 22, 8, 0, tzinfo=UTC),
            max_samples=4000,
        ),
    }
    for record in runs.values():
        record["run_id"] = store.add_run(record)
    store.set_baseline(runs["a"]["run_id"], "default")
    store.set_note(runs["b"]["run_id"], "after the template cache change")
    return runs


def live_events() -> list[Event]:
    """A scripted run: burst done, long under way, heap going down, one warning."""
    paths = resolve_profile("python_light").paths
    events: list[Event] = [
        RunStarted("127.0.0.1:8080", ["python_light"], 2, ["burst", "long"], 4, "-", {}),
        Telemetry("python_light", 1, "burst", "before", {"heap": {"internal_free": 180000}}, None),
        PhaseStarted("python_light", 1, "burst", 12, 20.0, 45.0, 1, 4),
    ]

    def beat(phase: str, i: int, base: float) -> Heartbeat:
        per = 40 * i
        return Heartbeat(
            "python_light",
            1,
            phase,
            i * 0.25,
            20.0,
            45.0,
            per * len(paths),
            per * len(paths) - i // 10,
            i // 10,
            160.0 + (i % 7) * 3,
            base + (i % 5),
            base * 2 + (i % 9),
            base * 3,
            base + 2,
            base * 2 + 4,
            base * 3,
            {"timeout": 0, "refused": 0, "reset": 0, "http_4xx": 0, "http_5xx": i // 10},
            {"200": per * len(paths) - i // 10, "503": i // 10},
            {
                p: PathCounts(per, per - (i // 10 if n == 0 else 0), i // 10 if n == 0 else 0)
                for n, p in enumerate(paths)
            },
        )

    events += [beat("burst", i, 12.0) for i in range(1, 41)]
    report = {
        "requests_total": 6400,
        "rps_ok": 318.5,
        "p95_ms": 27.1,
        "path_metrics": {
            p: {
                "requests_total": 1600,
                "rps_ok": 79.6,
                "error_rate": 0.0,
                "p50_ms": 12.4,
                "p95_ms": 26.0 + n,
                "p99_ms": 38.0 + n,
                "status_counts": {"200": 1600},
            }
            for n, p in enumerate(paths)
        },
    }
    events += [
        Telemetry("python_light", 1, "burst", "after", {"heap": {"internal_free": 176000}}, None),
        PhaseFinished("python_light", 1, "burst", True, [], report, 1, 4),
        PhaseStarted("python_light", 1, "long", 8, 60.0, 45.0 + 132, 2, 4),
        Log("warning", "health probe /hello: attempt 1 failed (ConnectError); retrying"),
    ]
    events += [beat("long", i, 9.0) for i in range(1, 31)]
    events += [
        Telemetry(
            "python_light", 1, "long", "during", {"heap": {"internal_free": 171000 - k}}, None
        )
        for k in range(0, 3000, 500)
    ]
    return events


def live_config() -> RunConfig:
    return RunConfig(
        host="127.0.0.1",
        port=8080,
        profiles=[resolve_profile("python_light")],
        runs=2,
        burst=PhaseSettings(12, 20.0),
        long=PhaseSettings(8, 60.0),
    )


@pytest.mark.parametrize("size", SIZES)
def test_setup(snap_compare: Any, history_dir: Path, size: tuple[int, int]) -> None:
    store_runs(history_dir)

    async def settle(pilot: Pilot) -> None:
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, SetupScreen))
        await pilot.pause(0.8)  # the probe's debounce, then its worker
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(snap_app(history_dir), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_live(snap_compare: Any, history_dir: Path, size: tuple[int, int]) -> None:
    async def feed(pilot: Pilot) -> None:
        screen = LiveScreen(live_config(), autostart=False)
        await pilot.app.push_screen(screen)
        await pilot.pause()
        events = live_events()
        for start in range(0, len(events), 3):  # in batches, as the worker hands them over
            screen.apply(events[start : start + 3])
        await pilot.pause()

    assert snap_compare(snap_app(history_dir), terminal_size=size, run_before=feed)


@pytest.mark.parametrize("size", SIZES)
def test_results(snap_compare: Any, history_dir: Path, size: tuple[int, int]) -> None:
    runs = store_runs(history_dir)

    async def open_results(pilot: Pilot) -> None:
        app: PerftuiApp = pilot.app  # type: ignore[assignment]
        app.open_results(HistoryStore(history_dir).get(runs["b"]["run_id"]))
        await app.workers.wait_for_complete()  # judged in a worker, then shown
        await pilot.pause()
        # The previous run is found and compared in a worker.
        await wait_for(pilot, lambda: not getattr(app.screen, "pending", True))
        await pilot.pause()

    assert snap_compare(snap_app(history_dir), terminal_size=size, run_before=open_results)


@pytest.mark.parametrize("size", SIZES)
def test_history(snap_compare: Any, history_dir: Path, size: tuple[int, int]) -> None:
    store_runs(history_dir)

    async def open_history(pilot: Pilot) -> None:
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, SetupScreen))
        await pilot.press("f2")
        await pilot.pause()
        await pilot.press("space", "down", "space")

    assert snap_compare(snap_app(history_dir), terminal_size=size, run_before=open_history)


@pytest.mark.parametrize("charts", [False, True], ids=["table", "charts"])
@pytest.mark.parametrize("size", [*SIZES, pytest.param((100, 30), id="100x30")])
def test_compare(snap_compare: Any, history_dir: Path, size: tuple[int, int], charts: bool) -> None:
    runs = store_runs(history_dir)

    async def open_compare(pilot: Pilot) -> None:
        app: PerftuiApp = pilot.app  # type: ignore[assignment]
        app.open_compare(
            HistoryStore(history_dir).get(runs["a"]["run_id"]),
            HistoryStore(history_dir).get(runs["b"]["run_id"]),
        )
        # The comparison is made in a worker; the screen shows it (and drops its busy sign).
        await wait_for(pilot, lambda: getattr(app.screen, "comparison", None) is not None)
        await pilot.pause()
        if charts:
            await pilot.press("g")
            await pilot.pause(0.3)  # the tab switch settles before the plots are measured

    assert snap_compare(snap_app(history_dir), terminal_size=size, run_before=open_compare)


def test_light_theme(snap_compare: Any, history_dir: Path) -> None:
    """The same colours by meaning on a light terminal (theme variables only, no fixed colours)."""
    runs = store_runs(history_dir)

    async def open_results(pilot: Pilot) -> None:
        app: PerftuiApp = pilot.app  # type: ignore[assignment]
        app.theme = "textual-light"
        app.open_results(HistoryStore(history_dir).get(runs["b"]["run_id"]))
        await app.workers.wait_for_complete()  # judged in a worker, then shown
        await pilot.pause()
        # The previous run is found and compared in a worker.
        await wait_for(pilot, lambda: not getattr(app.screen, "pending", True))
        await pilot.pause()

    assert snap_compare(snap_app(history_dir), terminal_size=(80, 24), run_before=open_results)


def test_setup_remembered(snap_compare: Any, history_dir: Path, user_config_dir: Path) -> None:
    """Setup at 100×30 with the last device's setup filled in and the recent devices open:
    stored runs' targets (a loopback device among them), then one only set up here."""
    store_runs(history_dir)
    HistoryStore(history_dir).add_run(
        make_record(
            20.0,
            runs=1,
            target="127.0.0.1:18190",
            started_at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
            max_samples=500,
        )
    )
    settings = Settings.load(user_config_dir / FILE_NAME)
    settings.remember_setup("10.0.0.7:8080", {"runs": "2"})
    settings.remember_setup(
        "127.0.0.1:18190",
        {"profiles": ["static", "mixed"], "runs": "5", "fields": {"long_duration": "120"}},
    )

    async def open_devices(pilot: Pilot) -> None:
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, SetupScreen))
        await pilot.pause(0.8)  # the probe's debounce, then its worker
        await pilot.app.workers.wait_for_complete()
        await pilot.press("enter")  # the device dropdown, focused at start
        await pilot.pause()

    assert snap_compare(snap_app(history_dir), terminal_size=(100, 30), run_before=open_devices)
