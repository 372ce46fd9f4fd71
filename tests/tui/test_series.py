"""The whole-run series: an 8-hour soak folded into fixed memory keeps what it must."""

from __future__ import annotations

import sys

import pytest

from perftui.tui.view.series import WholeRunSeries

FIELDS = {"p95": "max", "rps": "mean", "errors": "sum", "heap": "last"}


def test_eight_hours_at_5_hz_stay_bounded_and_keep_minute_one() -> None:
    s = WholeRunSeries(FIELDS, buckets=240)
    dt = 0.2
    n = int(8 * 3600 / dt)
    for i in range(n):
        t = i * dt
        p95 = 999.0 if i == 300 else 10.0  # one spike at t = 60 s, in minute 1
        heap = 200_000 - int(t)  # a leak of 1 B/s
        s.add(t, {"p95": p95, "rps": 100.0, "errors": 1.0, "heap": heap}, dt)
    for name in FIELDS:
        assert len(s.points(name)) <= 240
    assert s.width_s * 240 >= 8 * 3600 and s.width_s == 128  # 1 s doubled 7 times
    # The first bucket still covers minute 1 and its worst window.
    assert s.points("p95")[0] == 999.0
    assert max(s.points("p95")[1:]) == 10.0
    # Sums add up over the whole run; the last heap is the latest reading.
    assert sum(s.points("errors")) == n
    assert s.points("heap")[-1] == 200_000 - int((n - 1) * dt)
    assert s.points("heap")[0] == 200_000 - int((128 / dt - 1) * dt)
    assert s.points("rps") == pytest.approx([100.0] * len(s.points("rps")))


def test_rps_mean_is_weighted_by_time() -> None:
    s = WholeRunSeries({"rps": "mean"}, buckets=4, base_s=10.0)
    s.add(0.0, {"rps": 100.0}, 9.0)  # 9 s at 100/s
    s.add(9.0, {"rps": 10.0}, 1.0)  # then 1 s at 10/s
    assert s.points("rps") == [pytest.approx(91.0)]
    # Folding keeps the weighting: bucket 1 (10-20 s) at 1000/s for 1 s.
    s.add(15.0, {"rps": 1000.0}, 1.0)
    s.add(45.0, {"rps": 0.0}, 1.0)  # beyond 4 × 10 s: halve to 20 s buckets
    assert s.width_s == 20.0
    assert s.bucket("rps", 0) == pytest.approx((900 + 10 + 1000) / 11)


def test_gaps_repeat_the_previous_point_and_none_is_skipped() -> None:
    s = WholeRunSeries({"heap": "last", "p95": "max"}, buckets=8)
    s.add(0.5, {"heap": 100.0, "p95": None})
    s.add(3.5, {"heap": 90.0, "p95": 5.0})
    assert s.points("heap") == [100.0, 100.0, 100.0, 90.0]
    assert s.points("p95") == [0.0, 0.0, 0.0, 5.0]
    assert s.bucket("p95", 0) is None


def test_memory_does_not_grow_with_run_length() -> None:
    s = WholeRunSeries(FIELDS, buckets=64)
    for i in range(2000):
        s.add(i * 0.2, dict.fromkeys(FIELDS, 1.0), 0.2)
    size_short = sum(sys.getsizeof(c) for c in s._acc.values())
    for i in range(2000, 100_000):
        s.add(i * 0.2, dict.fromkeys(FIELDS, 1.0), 0.2)
    assert sum(sys.getsizeof(c) for c in s._acc.values()) == size_short


def test_bad_bucket_count_is_refused() -> None:
    with pytest.raises(ValueError):
        WholeRunSeries(FIELDS, buckets=3)


def test_running_slope_matches_polyfit_over_hours() -> None:
    import numpy as np

    from perftui.engine.gates import RunningSlope

    rng = np.random.default_rng(3)
    t = np.arange(0, 8 * 3600, 2.0)
    y = 250_000 - 0.5 * t + rng.normal(0, 300, t.size)  # -1800 B/h under noise
    fit = RunningSlope()
    assert fit.slope() is None
    for ti, yi in zip(t, y, strict=True):
        fit.add(float(ti), float(yi))
    assert fit.slope() == pytest.approx(np.polyfit(t, y, 1)[0], rel=1e-9)
    assert fit.slope() * 3600 == pytest.approx(-1800, rel=0.01)
