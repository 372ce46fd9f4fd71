"""The Live screen fed a scripted event stream: per-path rates, stalls, rate targets, the whole
run's series and the heap slope, read back from the widgets a person sees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rich.text import Text
from textual.widgets import DataTable, RichLog, Sparkline

from perftui.config import GateLimits, PhaseSettings, RunConfig
from perftui.engine.events import Heartbeat, PathCounts, PhaseStarted, Stall, Telemetry
from perftui.engine.pacing import Ramp
from perftui.profiles import resolve_profile
from perftui.tui.factory import create_app
from perftui.tui.screens.live import PATH_COLUMNS, LiveScreen, LiveText, PathTable
from perftui.tui.widgets.ramp_chart import RampChart

PROFILE = resolve_profile("c_static_only")


def config(**limits: float) -> RunConfig:
    return RunConfig(
        host="127.0.0.1",
        profiles=[PROFILE],
        runs=1,
        burst=PhaseSettings(4, 20.0),
        long=PhaseSettings(4, 3600.0),
        gate_limits=GateLimits(**limits),
    )


def beat(phase: str, elapsed: float, per_path: list[int], **extra: object) -> Heartbeat:
    total = sum(per_path)
    return Heartbeat(
        PROFILE.name,
        1,
        phase,
        elapsed,
        20.0,
        60.0,
        total,
        total,
        0,
        100.0,
        5.0,
        9.0,
        12.0,
        5.0,
        9.0,
        12.0,
        {},
        {},
        {
            p: PathCounts(n, n, 0)
            for p, n in zip(dict.fromkeys(PROFILE.paths), per_path, strict=False)
        },
        **extra,  # type: ignore[arg-type]
    )


def started(phase: str, ordinal: int) -> PhaseStarted:
    return PhaseStarted(PROFILE.name, 1, phase, 4, 20.0, 60.0, ordinal, 2)


def text(screen: LiveScreen, selector: str) -> str:
    """What the line says, without its markup."""
    return Text.from_markup(screen.query_one(selector, LiveText).text).plain


async def open_live(tmp_path: Path, cfg: RunConfig | None = None):
    app = create_app(tmp_path)
    return app, LiveScreen(cfg or config(), autostart=False)


async def test_per_path_rps_is_its_count_over_elapsed(tmp_path: Path) -> None:
    app, screen = await open_live(tmp_path)
    paths = list(dict.fromkeys(PROFILE.paths))
    async with app.run_test(size=(160, 48)) as pilot:
        await app.push_screen(screen)
        # Uneven windows: a burst of 236 in the last 0.2 s must not read as 90 req/s beside
        # a path with more requests at a lower rate (the reported bug).
        screen.apply([started("burst", 1), beat("burst", 3.8, [228] * len(paths))])
        screen.apply([beat("burst", 4.0, [240] + [236] * (len(paths) - 1))])
        await pilot.pause()
        table = screen.query_one("#paths", DataTable)
        for path, count in zip(paths, [240] + [236] * (len(paths) - 1), strict=True):
            shown_count = table.get_cell(path, "requests")
            shown_rps = table.get_cell(path, "rps")
            assert shown_count == f"{count:,}"
            assert float(shown_rps) == pytest.approx(count / 4.0, abs=0.05)


async def test_stall_target_rate_and_client_bound_show_live(tmp_path: Path) -> None:
    app, screen = await open_live(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.push_screen(screen)
        screen.apply([started("burst", 1), beat("burst", 1.0, [50], target_rps=100.0)])
        screen.apply([Stall(PROFILE.name, 1, "burst", 1.2, 1020.0)])
        screen.apply([beat("burst", 2.0, [150], target_rps=100.0, stalls=1, client_bound=True)])
        await pilot.pause()
        log = "\n".join(line.text for line in screen.query_one("#log", RichLog).lines)
        assert "⚠ stall 1.02 s at 1.2 s" in log
        assert "⚠ 1 stall" in text(screen, "#beat")
        assert "rps 75.0/100 target" in text(screen, "#beat")  # 150 requests in 2 s
        assert "client-bound" in text(screen, "#where")
        # A constant target is not a ramp: no ramp chart, the target sparkline as before.
        assert not screen.query_one(RampChart).display and screen.query_one(RampChart).draws == 0
        assert screen.query_one("#whole-target").display
        # The stall is drawn into the p95 line where it happened, as a spike of its length.
        assert list(screen.sparks["burst"][1]) == [9.0, 1020.0]
        assert max(screen.query_one("#spark-burst-p95", Sparkline).data) == 1020.0


async def test_whole_run_keeps_minute_one_and_the_heap_slope(tmp_path: Path) -> None:
    app, screen = await open_live(tmp_path, config(max_heap_slope=10_000))
    async with app.run_test(size=(160, 48)) as pilot:
        await app.push_screen(screen)
        events: list = [started("long", 1)]
        # An hour at 4 beats/s, with one bad window in minute 1, heap falling 36 000 B/h.
        for i in range(1, 4 * 3600 + 1):
            t = i / 4
            p95 = 500.0 if i == 20 else 9.0  # t = 5 s
            events.append(beat("long", t, [i * 10]))
            events[-1].window_p95_ms = p95
            if i % 8 == 0:
                free = 200_000 - int(10 * t)
                events.append(
                    Telemetry(
                        PROFILE.name, 1, "long", "during", {"heap": {"internal_free": free}}, None
                    )
                )
        for start in range(0, len(events), 50):
            screen.apply(events[start : start + 50])
        await pilot.pause()
        assert len(screen.sparks["long"][1]) == 600  # recent beats: the bounded deque
        whole = screen.query_one("#whole-p95", Sparkline).data
        assert whole is not None and len(whole) <= 240
        assert whole[0] == 500.0 and max(whole[1:]) == 9.0  # second 5 still on screen at 1 h
        assert screen.heap_slope_per_hour() == pytest.approx(-36_000, rel=0.01)
        assert "-35.2 KiB/h" in text(screen, "#heap")
        assert "1h00m" in text(screen, "#whole-span")


async def test_path_table_render_caches_stay_small_over_many_redraws(
    tmp_path: Path,
) -> None:
    """Every heartbeat updates the path table's cells, which makes all of DataTable's cached
    renders stale; its stock caches (10 000 cells) then filled with dead renders for minutes,
    growing a viewer's RSS by ~3 MB (issue 11's viewer soak). Two screens of rows are enough."""
    app, screen = await open_live(tmp_path)
    paths = list(dict.fromkeys(PROFILE.paths))
    # Enough redraws that the rows drawn outnumber the bound 2.5×: stock caches would fail.
    redraws = 5 * PathTable.CACHE_ROWS // (2 * len(paths))
    async with app.run_test(size=(160, 48)) as pilot:
        await app.push_screen(screen)
        screen.apply([started("long", 1)])
        table = screen.query_one("#paths", PathTable)
        for i in range(1, redraws + 1):
            screen.apply([beat("long", i / 5, [i * 7] * len(paths))])
            await pilot.pause()
        cells = PathTable.CACHE_ROWS * len(PATH_COLUMNS)
        # The table was redrawn with new cells hundreds of times (each render is read back from
        # the cache once): far more than the bound, so a stock-sized cache would hold more.
        assert table._cell_render_cache.hits > 2 * cells
        assert len(table._cell_render_cache) <= cells
        assert len(table._row_render_cache) <= PathTable.CACHE_ROWS
        assert len(table._line_cache) <= PathTable.CACHE_ROWS
        assert table.get_cell(paths[0], "requests") == f"{redraws * 7:,}"  # and it still shows


async def test_a_rate_ramp_draws_target_and_achieved_in_one_chart(tmp_path: Path) -> None:
    """A 2 s ramp (0 → 40 req/s in 1 s, then to 80) fed at the TUI's 0.2 s heartbeat by a
    device that tops out at 50 req/s: one chart holds the ramp's target (its corners, on
    which every heartbeat's target lies) and the achieved rate per second; it is rebuilt per
    new point, not per heartbeat, and the constant-target sparkline stays hidden."""
    stages = ((1.0, 40.0), (1.0, 80.0))
    cfg = RunConfig(host="127.0.0.1", profiles=[PROFILE], runs=1, stages=stages)
    ramp = Ramp(stages)
    app, screen = await open_live(tmp_path, cfg)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.push_screen(screen)
        chart = screen.query_one(RampChart)
        assert not chart.display  # nothing until a ramp phase starts
        screen.apply([started("long", 1)])
        beats = []
        for i in range(1, 11):
            t = i / 5
            beats.append(beat("long", t, [i * 8], target_rps=ramp.at(t), ramp=True))
            beats[-1].rps_now = min(ramp.mean(t - 0.2, t), 50.0)
            screen.apply([beats[-1]])
            await pilot.pause()
        assert chart.display and chart.target == [(0.0, 0.0), (1.0, 40.0), (2.0, 80.0)]
        xs, ys = zip(*chart.target, strict=True)
        for b in beats:  # the drawn target is the one the engine paced by
            assert b.target_rps == pytest.approx(float(np.interp(b.elapsed, xs, ys)))
        # Second 1 achieves its mean target (20); in second 2 the windows' 44, then 50 × 4.
        achieved = chart.points()
        assert [x for x, _ in achieved] == [0.5, 1.5]
        assert [y for _, y in achieved] == pytest.approx([20.0, 48.8])
        assert 2 <= chart.draws <= 4  # a figure per new second (and the start), not per beat
        figure = chart.plt.build()
        assert "target" in figure and "achieved" in figure
        assert not screen.query_one("#whole-target").display
