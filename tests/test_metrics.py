"""The phase recorder and its timeline, with a fake clock and latencies whose answer is known."""

from __future__ import annotations

import pytest

from perftui.engine.hdr import clear, new_histogram, percentile_values
from perftui.engine.metrics import UNAVAILABLE_MIN_S, PhaseRecorder
from perftui.engine.timeline import TIMELINE_MAX_POINTS, timeline_window_s


def drive(rec: PhaseRecorder, seconds: float, step: float, per_step: list[tuple[str, int]]) -> None:
    """Record `per_step` responses (path, latency µs) in each `step` of fake time, then snapshot."""
    t = 0.0
    while t < seconds - 1e-9:
        for path, us in per_step:
            rec.paths[path].record(200, us, t)
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
    rec = PhaseRecorder(["/a"], tail_start_s=7.5, duration=10, started=0.0)
    t = 0.0
    for second in range(10):  # second k answers in (k + 1) ms, 40 responses per 0.25 s
        for _ in range(4):
            for _ in range(40):
                rec.paths["/a"].record(200, (second + 1) * 1000, t)
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
    rec = PhaseRecorder(["/a"], tail_start_s=1.5, duration=2, started=0.0)
    rec.paths["/a"].record(200, 5000, 0.5)
    rec.paths["/a"].record_failure("timeout", 6_000_000, 0.5)
    rec.timeline.note_heap(1000)
    rec.snapshot(1.0)
    rec.paths["/a"].record(500, 5000, 1.5)
    rec.snapshot(2.0)
    tl = rec.report(clients=1, duration=2, elapsed=2.0)["timeline"]
    assert tl["requests"] == [2, 1]
    assert tl["errors"] == [1, 1]
    assert tl["heap_free"] == [1000, None]


def test_timeline_of_a_long_phase_stays_bounded() -> None:
    rec = PhaseRecorder(["/a"], tail_start_s=3 * 3600, duration=4 * 3600, started=0.0)
    drive(rec, 4 * 3600, 5.0, [("/a", 2000)])
    tl = rec.report(clients=1, duration=4 * 3600, elapsed=4 * 3600)["timeline"]
    assert tl["window_s"] == 60
    assert len(tl["t_s"]) == 240 <= TIMELINE_MAX_POINTS
    assert sum(tl["requests"]) == rec.report(1, 4 * 3600, 4 * 3600)["requests_total"]


def test_a_partial_last_window_is_kept_with_its_own_rate() -> None:
    rec = PhaseRecorder(["/a"], tail_start_s=1.875, duration=2.5, started=0.0)
    drive(rec, 2.5, 0.25, [("/a", 1000)] * 10)
    tl = rec.report(clients=1, duration=2.5, elapsed=2.5)["timeline"]
    assert tl["t_s"] == [1.0, 2.0, 2.5]
    assert tl["requests"] == [40, 40, 20]
    assert tl["rps"] == [40.0, 40.0, 40.0]


def test_tail_quarter_and_rps_from_a_fake_clock() -> None:
    rec = PhaseRecorder(["/a", "/b"], tail_start_s=3.0, duration=4, started=0.0)
    t = 0.0
    for step in range(16):
        slow = step >= 12  # the last quarter answers in 9 ms, the rest in 1 ms
        for _ in range(10):
            rec.paths["/a"].record(200, 9000 if slow else 1000, t)
        rec.paths["/b"].record(200, 1000, t)
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
    rec = PhaseRecorder(["/a", "/b"], tail_start_s=100.0, duration=10.0, started=0.0)
    windows = {p: id(s.window) for p, s in rec.paths.items()}
    for _ in range(50):
        rec.paths["/a"].record(200, 10_000, 0.1)
    first = rec.snapshot(0.25)
    for _ in range(50):
        rec.paths["/b"].record(200, 30_000, 0.3)
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


# --- failures: timed, with_failures percentiles, retries, unavailable_s -----------------------


def test_failures_are_timed_apart_from_the_answers() -> None:
    """98 answers at 10 ms and 2 timeouts at 6 s: with failures, p99 is the timeout."""
    rec = PhaseRecorder(["/a", "/b"], tail_start_s=0.75, duration=1, started=0.0)
    for i in range(98):
        rec.paths["/a"].record(200, 10_000, 0.01 * (i + 1))
    for _ in range(2):
        rec.paths["/a"].record_failure("timeout", 6_000_000, 0.5)
    for _ in range(10):
        rec.paths["/b"].record(500, 10_000, 0.9)  # answered errors are in the legacy figures
    rec.snapshot(1.0)
    report = rec.report(clients=1, duration=1, elapsed=6.5)
    a = report["path_metrics"]["/a"]
    assert a["p99_ms"] == pytest.approx(10.0, rel=1e-3)  # legacy: answered requests only
    assert a["mean_ms"] == pytest.approx(10.0, rel=1e-3)
    assert a["with_failures"]["p99_ms"] == pytest.approx(6000.0, rel=1e-3)
    assert a["with_failures"]["p95_ms"] == pytest.approx(10.0, rel=1e-3)
    assert set(a["with_failures"]) == {"p50_ms", "p95_ms", "p99_ms", "p999_ms"}
    assert "with_failures" not in report["path_metrics"]["/b"]  # every request answered
    # the phase: 108 answered at 10 ms + 2 timeouts → 2/110 = 1.8 % beyond p99
    assert report["p99_ms"] == pytest.approx(10.0, rel=1e-3)
    assert report["with_failures"]["p99_ms"] == pytest.approx(6000.0, rel=1e-3)
    assert report["with_failures"]["p50_ms"] == pytest.approx(10.0, rel=1e-3)
    assert report["errors_by_kind"]["timeout"] == 2 and report["err"] == 12


def test_with_failures_is_absent_when_every_request_was_answered() -> None:
    rec = PhaseRecorder(["/a"], tail_start_s=0.75, duration=1, started=0.0)
    rec.paths["/a"].record(200, 1000, 0.5)
    rec.snapshot(1.0)
    report = rec.report(clients=1, duration=1, elapsed=1.0)
    assert "with_failures" not in report and report["retries"] == 0
    assert report["unavailable_s"] == 0.0


def test_retries_are_counted_per_path_and_for_the_phase() -> None:
    rec = PhaseRecorder(["/a", "/b"], tail_start_s=0.75, duration=1, started=0.0)
    rec.paths["/a"].record(200, 1000, 0.1, retries=1)
    rec.paths["/a"].record(200, 1000, 0.2)
    rec.paths["/b"].record_failure("timeout", 500_000, 0.2, retries=1)
    rec.paths["/b"].record(200, 1000, 0.8, retries=1)
    rec.snapshot(1.0)
    report = rec.report(clients=1, duration=1, elapsed=1.0)
    assert report["retries"] == 3
    assert [report["path_metrics"][p]["retries"] for p in ("/a", "/b")] == [1, 2]


def _script(rec: PhaseRecorder, late_success: bool) -> None:
    """A 10 s phase, fake times: fine, refused for 2 s, a lone error, a slow second, a hang."""
    a = rec.paths["/a"]
    for k in range(1, 21):  # answers every 0.1 s up to 2.0
        a.record(200, 1000, k / 10)
    for k in range(40):  # 2.0–4.0: every request is refused (sent at 2.00, 2.05, …)
        a.record_failure("refused", 200, 2.0 + k * 0.05)
    for k in range(40, 51):  # answers again from 4.0 to 5.0
        a.record(200, 1000, k / 10)
    a.record_failure("reset", 300, 5.05)  # one error between two answers: 0.1 s, below the floor
    for k in range(51, 61):  # … to 6.0
        a.record(200, 1000, k / 10)
    a.record(200, 1000, 7.0)  # a slow second (6.0–7.0) with no failure seen yet
    for k in range(71, 81):  # answers to 8.0
        a.record(200, 1000, k / 10)
    a.record_failure("timeout", 6_000_000, 8.01)  # the device hangs at 8.0 (fires at 14.01)
    assert rec.availability.seconds(14.1) == pytest.approx(2.0 + 2.0)
    if late_success:  # an answer long after the load ended does not extend the span
        a.record(200, 5_000_000, 13.0)
    a.record_failure("timeout", 6_000_000, 6.5)  # sent in the slow second, timed out at 12.5


@pytest.mark.parametrize("late_success", [False, True])
def test_unavailable_s_from_a_scripted_phase(late_success: bool) -> None:
    rec = PhaseRecorder(["/a"], tail_start_s=7.5, duration=10, started=0.0)
    _script(rec, late_success)
    rec.snapshot(14.1)
    report = rec.report(clients=1, duration=10, elapsed=14.1)
    # refused 2.0–4.0, the slow second claimed by its timeout 6.0–7.0, the hang 8.0–10.0
    assert report["unavailable_s"] == pytest.approx(5.0)


def test_unavailable_s_ignores_spans_below_the_floor_and_spans_without_failures() -> None:
    rec = PhaseRecorder(["/a"], tail_start_s=7.5, duration=10, started=0.0)
    a = rec.paths["/a"]
    a.record(200, 1000, 1.0)
    a.record_failure("refused", 100, 1.1)
    a.record(200, 1000, 1.0 + UNAVAILABLE_MIN_S * 0.9)  # an error-only span just below the floor
    a.record(200, 1000, 9.0)  # a long span with no failure: slow, not unavailable
    a.record(200, 1000, 10.0)
    assert rec.report(clients=1, duration=10, elapsed=10.0)["unavailable_s"] == 0.0


def test_a_phase_without_any_success_was_unavailable_throughout() -> None:
    rec = PhaseRecorder(["/a"], tail_start_s=1.5, duration=2, started=0.0)
    for k in range(10):
        rec.paths["/a"].record_failure("refused", 150, 0.2 * k)
    report = rec.report(clients=1, duration=2, elapsed=2.0)
    assert report["unavailable_s"] == 2.0 and report["error_rate"] == 100.0
    assert report["with_failures"]["p50_ms"] == pytest.approx(0.15, rel=1e-2)
    assert report["p50_ms"] is None  # no answer: the legacy percentiles stay empty
