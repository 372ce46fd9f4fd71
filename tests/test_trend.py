"""Trend takes runs, not a store: synthetic run records whose step is known."""

from __future__ import annotations

from typing import Any

from perftui.analysis.trend import select, trends


def record(i: int, p95: float, key: str = "api:burst") -> dict[str, Any]:
    return {
        "run_id": f"r{i:02d}",
        "target": "dev:8080",
        "started_at": f"2026-01-{i + 1:02d}T00:00:00+00:00",
        "aggregated": {key: {"p95_ms": {"median": p95}}},
    }


def test_a_step_is_found_where_it_is() -> None:
    runs = [record(i, 100.0 + i % 2) for i in range(5)] + [
        record(i, 200.0 + i % 2) for i in range(5, 10)
    ]
    (t,) = trends(runs, metric="p95_ms")
    assert (t.target, t.key, t.verdict, t.change_at) == (
        "dev:8080",
        "api:burst",
        "degrading",
        "r05",
    )
    assert t.values == [r["aggregated"]["api:burst"]["p95_ms"]["median"] for r in runs]


def test_seven_runs_are_not_enough_and_flat_is_stable() -> None:
    (short,) = trends([record(i, 100.0 + 50 * (i > 3)) for i in range(7)])
    assert short.verdict == "insufficient data"
    (flat,) = trends([record(i, 100.0 + i % 2) for i in range(12)])
    assert flat.verdict == "stable"


def test_select_keeps_the_newest_runs_with_the_wanted_key() -> None:
    summaries = [
        {"run_id": "new", "keys": ["api:long"]},
        {"run_id": "mid", "keys": ["api:burst", "mixed:burst"]},
        {"run_id": "old", "keys": ["mixed:burst"]},
    ]
    assert [s["run_id"] for s in select(summaries, phase="burst", last=5)] == ["mid", "old"]
    assert [s["run_id"] for s in select(summaries, profile="mixed", last=1)] == ["mid"]
    assert [s["run_id"] for s in select(summaries)] == ["new", "mid", "old"]
