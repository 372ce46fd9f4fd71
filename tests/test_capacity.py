"""The capacity search against fake devices whose knee is known (the search is pure)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from perftui.config import RunConfig
from perftui.engine.capacity import (
    CapacityGates,
    SearchPlan,
    Step,
    StepAborted,
    StepResult,
    capacity_record,
    judge,
    search,
)
from perftui.history.store import HistoryStore
from perftui.profiles import adhoc_profile
from tests.history_factory import make_record

GATES = CapacityGates(max_p95_ms=100.0)
PLAN = SearchPlan(start_rate=10, step_s=1, confirm_s=3)


class KneeDevice:
    """p95 10 ms up to `knee` req/s, then it explodes (a queue that grows for the whole step).

    `jitter` moves the knee by up to ± that share on every step, like a real device's noise.
    """

    def __init__(self, knee: float, jitter: float = 0.0, seed: int = 1) -> None:
        self.knee = knee
        self.jitter = jitter
        self.rng = random.Random(seed)
        self.calls: list[tuple[float, float]] = []

    def __call__(self, rate: float, duration: float) -> StepResult:
        self.calls.append((rate, duration))
        knee = self.knee * (1 + self.rng.uniform(-self.jitter, self.jitter))
        over = max(0.0, rate - knee)
        p95 = 10.0 + 10_000.0 * duration * over / knee  # the backlog grows with overload × time
        achieved = min(rate, knee * 1.02)
        return StepResult(
            rate, duration, int(achieved * duration), 5.0, p95, p95 * 1.2, 0.0, achieved
        )


def test_finds_the_knee_within_ten_percent_by_doubling_then_bisection() -> None:
    device = KneeDevice(knee=300)
    seen: list[Step] = []
    result = search(device, GATES, PLAN, seen.append)
    assert result.status == "found" and result.found
    assert result.capacity_rps is not None
    assert 270 <= result.capacity_rps <= 300
    rates = [rate for rate, _ in device.calls]
    assert rates[:6] == [10, 20, 40, 80, 160, 320]  # doubling until 320 fails
    kinds = [s.kind for s in result.steps]
    assert kinds[:6] == ["ramp"] * 6 and "bisect" in kinds and kinds[-1] == "confirm"
    confirm = result.steps[-1]
    assert confirm.result.duration_s == 3 and confirm.passed
    assert confirm.result.rate == result.capacity_rps
    assert seen == result.steps  # every step reported as it finishes
    bisect = [s.result.rate for s in result.steps if s.kind == "bisect"]
    assert all(160 < r < 320 for r in bisect)


def test_repeatable_on_a_noisy_device() -> None:
    first = search(KneeDevice(300, jitter=0.03, seed=1), GATES, PLAN)
    second = search(KneeDevice(300, jitter=0.03, seed=2), GATES, PLAN)
    assert first.capacity_rps and second.capacity_rps
    assert abs(first.capacity_rps - second.capacity_rps) / second.capacity_rps <= 0.10
    for result in (first, second):
        assert 0.85 * 300 <= result.capacity_rps <= 1.03 * 300


def test_lowest_rate_failing_means_no_capacity() -> None:
    device = KneeDevice(knee=5)
    result = search(device, GATES, PLAN)
    assert result.status == "none" and not result.found
    assert result.capacity_rps is None
    assert [(s.kind, s.result.rate, s.result.duration_s) for s in result.steps] == [
        ("ramp", 10, 1),
        ("confirm", 10, 3),  # "no capacity" is confirmed like an answer
    ]
    assert "even 10 req/s fails" in result.note and "p95" in result.note


def test_a_first_step_failing_on_warm_up_alone_is_not_the_answer() -> None:
    device = KneeDevice(knee=300)

    def warming(rate: float, duration: float) -> StepResult:
        result = device(rate, duration)
        if len(device.calls) == 1:
            result.p95_ms = 250.0  # connections opening, a cold cache: the first step only
        return result

    result = search(warming, GATES, PLAN)
    assert not result.steps[0].passed and result.steps[1].kind == "confirm"
    assert result.status == "found" and 270 <= (result.capacity_rps or 0) <= 300


def test_failed_confirm_backs_off_and_confirms_lower() -> None:
    """A short step can pass by luck; the longer confirm step decides (here the knee is lower
    for long steps: the backlog needs time to build)."""

    def device(rate: float, duration: float) -> StepResult:
        knee = 300 if duration < 2 else 250
        p95 = 10.0 if rate <= knee else 500.0
        return StepResult(rate, duration, 100, 5.0, p95, p95, 0.0, rate)

    result = search(device, GATES, PLAN)
    confirms = [s for s in result.steps if s.kind == "confirm"]
    assert len(confirms) >= 2 and not confirms[0].passed and confirms[-1].passed
    assert result.capacity_rps is not None and 225 <= result.capacity_rps <= 250


def test_errors_and_a_rate_not_sustained_fail_a_step() -> None:
    ok = StepResult(100, 1, 100, 5.0, 20.0, 30.0, 0.0, 99.0)
    assert judge(ok, GATES) == []
    errors = StepResult(100, 1, 100, 5.0, 20.0, 30.0, 5.0, 99.0)
    assert judge(errors, GATES) == ["error_rate 5.00% > 2%"]
    short = StepResult(100, 1, 80, 5.0, 20.0, 30.0, 0.0, 80.0)
    assert judge(short, GATES) == ["achieved 80.0 of 100 req/s (< 90%)"]
    nothing = StepResult(100, 1, 0, None, None, None, None, 0.0)
    assert judge(nothing, GATES) == ["no request completed"]


def test_client_bound_stops_the_climb_and_says_so() -> None:
    def device(rate: float, duration: float) -> StepResult:
        return StepResult(rate, duration, 100, 5.0, 10.0, 12.0, 0.0, rate, client_bound=rate >= 80)

    result = search(device, GATES, PLAN)
    assert result.status == "client_bound" and result.found
    assert result.capacity_rps == 80
    assert "saturated at 80 req/s" in result.note
    assert max(s.result.rate for s in result.steps) == 80


def test_max_rate_ceiling() -> None:
    result = search(KneeDevice(10_000), GATES, SearchPlan(start_rate=10, max_rate=50))
    assert result.status == "ceiling" and result.capacity_rps == 50


def test_a_stop_keeps_the_steps_so_far() -> None:
    calls = []

    def device(rate: float, duration: float) -> StepResult:
        calls.append(rate)
        if len(calls) == 3:
            raise StepAborted("stopped", "stopped by the user")
        return StepResult(rate, duration, 100, 5.0, 10.0, 12.0, 0.0, rate)

    result = search(device, GATES, PLAN)
    assert result.status == "stopped" and result.capacity_rps is None
    assert [s.result.rate for s in result.steps] == [10, 20]


@pytest.mark.parametrize("found", [True, False])
def test_record_holds_the_answer_and_the_curve(found: bool) -> None:
    def device(rate: float, duration: float) -> StepResult:
        p95 = 10.0 if rate <= 300 else 900.0
        phase = {
            "profile": "adhoc",
            "phase": "burst",
            "pass": True,
            "fail_reasons": [],
            "report": {"p95_ms": p95, "rate": rate},
        }
        return StepResult(rate, duration, 10, 5.0, p95, p95, 0.0, rate, phase_result=phase)

    plan = PLAN if found else SearchPlan(start_rate=400, step_s=1, confirm_s=3)
    result = search(device, GATES, plan)
    config = RunConfig(host="127.0.0.1", profiles=[adhoc_profile("/api/ping")])
    rec = capacity_record(config, GATES, plan, result, datetime.now(UTC))
    cap = rec["capacity"]
    assert cap["capacity_rps"] == result.capacity_rps
    assert cap["gates"] == {"max_p95_ms": 100.0, "max_error_rate": 2.0, "min_achieved_ratio": 0.9}
    assert [s["rate"] for s in cap["steps"]] == [s.result.rate for s in result.steps]
    assert rec["overall_pass"] is found and rec["status"] == "finished"
    [run] = rec["raw_runs"]
    [phase] = run["results"]
    # the deciding step: the passing confirm step, else the (failing) last step
    assert phase["report"]["rate"] == (result.capacity_rps if found else 400)
    assert phase["pass"] is found


def test_previous_of_never_mixes_searches_and_runs(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    first_search = make_record(profiles=("api",), phases=("burst",), runs=1, seed=1)
    first_search["capacity"] = {"capacity_rps": 120.0, "steps": [], "gates": {}}
    suite = make_record(profiles=("api",), phases=("burst",), runs=1, seed=2)
    second_search = make_record(profiles=("api",), phases=("burst",), runs=1, seed=3)
    second_search["capacity"] = {"capacity_rps": 100.0, "steps": [], "gates": {}}
    for rec in (first_search, suite, second_search):
        store.add_run(rec)
    assert store.previous_of(second_search)["run_id"] == first_search["run_id"]
    later_suite = make_record(profiles=("api",), phases=("burst",), runs=1, seed=4)
    assert store.previous_of(later_suite)["run_id"] == suite["run_id"]
