"""The phase recorder and its timeline, with a fake clock and latencies whose answer is known."""

from __future__ import annotations

import pytest

from perftui.engine.metrics import (
    TIMELINE_MAX_POINTS,
    PhaseRecorder,
    clear,
    new_histogram,
    percentile_values,
    timeline_window_s,
)


def drive(rec: PhaseRecorder, seconds: float, step: float, per_step: list[tuple[str, int]]) -> None:
    """Record `per_step` responses (path, latency µs) in each `step` of fake time, then snapshot."""
    t = 0.0
    while t < seconds - 1e-9:
        for path, us in per_step:
            rec.paths[path].record(200, us)
        t = round(t + step, 6)
        rec.snapshot(t)


@pytest.mark.parametrize(
    ("duration", "window"), [(12, 1), (300, 1), (301, 2), (3600, 15), (8 * 3600, 120)]
)
def test_timeline_window_keeps_any_phase_within_the_point_budget(
    duration: int, window: int
) -> None:
    assert timeline_window_s(duration) == window
    assert duration / window <= TIMELINE_MAX_POINTS


def test_timeline_windows_hold_their_own_counts_rates_and_percentiles() -> None:
    rec = PhaseRecorder(["/a"], tail_start_s=7.5, duration=10)
    t = 0.0
    for second in range(10):  # second k answers in (k + 1) ms, 40 responses per 0.25 s
        for _ in range(4):
            for _ in range(40):
                rec.paths["/a"].record(200, (second + 1) * 1000)
            t = round(t + 0.25, 6)
            rec.snapshot(t)
    tl = rec.report(clients=4, duration=10, elapsed=10.0)["timeline"]
    assert tl["window_s"] == 1
    assert tl["t_s"] == [float(k) for k in range(1, 11)]
    assert tl["requests"] == [160] * 10
    assert tl["rps"] == [160.0] * 10
    assert tl["errors"] == [0] * 10
    assert tl["p95_ms"] == pytest.approx([k + 1.0 for k in range(10)], rel=1e-3)
    assert "heap_free" not in tl


def test_timeline_counts_failures_and_heap_in_their_window() -> None:
    rec = PhaseRecorder(["/a"], tail_start_s=1.5, duration=2)
    rec.paths["/a"].record(200, 5000)
    rec.paths["/a"].record_failure("timeout")
    rec.timeline.note_heap(1000)
    rec.snapshot(1.0)
    rec.paths["/a"].record(500, 5000)
    rec.snapshot(2.0)
    tl = rec.report(clients=1, duration=2, elapsed=2.0)["timeline"]
    assert tl["requests"] == [2, 1]
    assert tl["errors"] == [1, 1]
    assert tl["heap_free"] == [1000, None]


def test_timeline_of_a_long_phase_stays_bounded() -> None:
    rec = PhaseRecorder(["/a"], tail_start_s=3 * 3600, duration=4 * 3600)
    drive(rec, 4 * 3600, 5.0, [("/a", 2000)])
    tl = rec.report(clients=1, duration=4 * 3600, elapsed=4 * 3600)["timeline"]
    assert tl["window_s"] == 60
    assert len(tl["t_s"]) == 240 <= TIMELINE_MAX_POINTS
    assert sum(tl["requests"]) == rec.report(1, 4 * 3600, 4 * 3600)["requests_total"]


def test_a_partial_last_window_is_kept_with_its_own_rate() -> None:
    rec = PhaseRecorder(["/a"], tail_start_s=1.875, duration=2.5)
    drive(rec, 2.5, 0.25, [("/a", 1000)] * 10)
    tl = rec.report(clients=1, duration=2.5, elapsed=2.5)["timeline"]
    assert tl["t_s"] == [1.0, 2.0, 2.5]
    assert tl["requests"] == [40, 40, 20]
    assert tl["rps"] == [40.0, 40.0, 40.0]


def test_tail_quarter_and_rps_from_a_fake_clock() -> None:
    rec = PhaseRecorder(["/a", "/b"], tail_start_s=3.0, duration=4)
    t = 0.0
    for step in range(16):
        slow = step >= 12  # the last quarter answers in 9 ms, the rest in 1 ms
        for _ in range(10):
            rec.paths["/a"].record(200, 9000 if slow else 1000)
        rec.paths["/b"].record(200, 1000)
        t = round(t + 0.25, 6)
        rec.snapshot(t)
    report = rec.report(clients=2, duration=4, elapsed=4.0)
    assert report["requests_total"] == 176
    assert report["rps_total"] == 44.0
    assert report["path_metrics"]["/a"]["rps_ok"] == 40.0
    assert report["path_metrics"]["/b"]["rps_ok"] == 4.0
    assert report["tail_samples"] == 44
    assert report["p95_tail_ms"] == pytest.approx(9.0, rel=1e-3)
    assert report["p50_ms"] == pytest.approx(1.0, rel=1e-3)


def test_windows_are_cleared_and_reused_not_reallocated() -> None:
    """The engine-memory ramp: every snapshot used to allocate fresh 184 KiB histograms. Now each
    window is the same object, cleared, and still describes only its own requests."""
    rec = PhaseRecorder(["/a", "/b"], tail_start_s=100.0, duration=10.0)
    windows = {p: id(s.window) for p, s in rec.paths.items()}
    for _ in range(50):
        rec.paths["/a"].record(200, 10_000)
    first = rec.snapshot(0.25)
    for _ in range(50):
        rec.paths["/b"].record(200, 30_000)
    second = rec.snapshot(0.5)
    assert {p: id(s.window) for p, s in rec.paths.items()} == windows
    assert first["window_p50_ms"] == pytest.approx(10.0, rel=0.01)
    assert second["window_p50_ms"] == pytest.approx(30.0, rel=0.01)  # the old window is gone
    assert second["p99_ms"] == pytest.approx(30.0, rel=0.01)  # the cumulative one is not
    assert rec.paths["/a"].total.get_total_count() == 50
    assert rec.paths["/b"].window.get_total_count() == 0
    assert rec.paths["/b"].window.get_max_value() == 0


def test_clear_is_hdrh_reset() -> None:
    used, reset = new_histogram(), new_histogram()
    for h in (used, reset):
        for v in (5, 500, 50_000, 5_000_000):
            h.record_value(v)
    reset.reset()
    clear(used)
    assert {k: v for k, v in vars(used).items() if k not in ("counts", "encoder")} == {
        k: v for k, v in vars(reset).items() if k not in ("counts", "encoder")
    }
    assert list(used.counts) == list(reset.counts)
    used.record_value(700)
    assert percentile_values(used, (50.0,)) == [used.get_value_at_percentile(50.0)]
