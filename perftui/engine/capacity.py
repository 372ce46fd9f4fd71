"""Capacity search: the highest constant request rate at which the device still meets its gates.

The search itself (`search`) is pure: it asks a `measure(rate, duration) -> StepResult` callable
for each step, so it is tested against a fake device whose knee is known. `EngineMeasure` is
the real `measure`: every step is one short open-loop phase run by the real engine
(`EngineProcess` and `Suite`, a RunConfig whose phase has a `rate`), so a step is measured exactly
as `perftui run --rate R` would measure it.

The plan: one step at the start rate (if it fails, and a longer step there fails too, there is
no capacity to report: exit 1), then
doubling until a step fails, then bisection until the bracket is within `precision`, then a
longer confirm step at the best passing rate. A confirm step that fails backs off by `backoff`
and confirms again (a short step can pass by luck; the longer one is the answer).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from perftui.config import RunConfig
from perftui.engine import record
from perftui.engine.events import Event
from perftui.engine.runner import EngineProcess
from perftui.engine.schema import JsonObject, PhaseReport, PhaseResult, RunRecord
from perftui.engine.timeline import window_spans
from perftui.settings import default

# A result's status: "found" (confirmed), "client_bound" (confirmed, but the load generator
# stopped the climb, so the device can do at least this much), "ceiling" (confirmed at
# `max_rate`), "none" (even the start rate fails), "unconfirmed" (no confirm step passed),
# "stopped" (by the user) and "hard_stop" (a step could not be run).
FOUND_STATUSES = frozenset({"found", "client_bound", "ceiling"})


@dataclass(slots=True, frozen=True)
class CapacityGates:
    """What a step must meet. A rate the device cannot even sustain (achieved below
    `min_achieved_ratio` × target) fails too: its latency only covers what got through."""

    max_p95_ms: float
    max_error_rate: float = default("max_error_rate")  # percent, as the run gates
    min_achieved_ratio: float = 0.9

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclass(slots=True, frozen=True)
class SearchPlan:
    start_rate: float = default("start_rate")  # req/s
    step_s: float = default("step_s")
    confirm_s: float = default("confirm_s")
    precision: float = 0.05  # bisection stops when high / low <= 1 + precision
    max_rate: float = default("max_rate")
    confirm_attempts: int = 3
    backoff: float = 0.1  # a failed confirm step retries 10 % lower


@dataclass(slots=True)
class StepResult:
    """What one step measured; `report` is the engine's phase result (kept for the record)."""

    rate: float
    duration_s: float
    requests: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    error_rate: float | None  # percent
    achieved_rps: float | None
    client_bound: bool = False
    phase_result: PhaseResult | None = field(default=None, repr=False)


@dataclass(slots=True)
class Step:
    index: int
    kind: str  # "ramp", "bisect" or "confirm"
    result: StepResult
    passed: bool
    reasons: list[str]

    def line(self) -> str:
        """The step in one line, as the CLI prints it and the TUI shows it."""
        r = self.result
        verdict = "pass" if self.passed else "FAIL: " + "; ".join(self.reasons)
        achieved = "-" if r.achieved_rps is None else f"{r.achieved_rps:.1f}"
        errors = "-" if r.error_rate is None else f"{r.error_rate:.2f}"
        return (
            f"step {self.index} {self.kind:7s} {r.rate:g} req/s × {r.duration_s:g} s: achieved "
            f"{achieved}, p50 {_ms(r.p50_ms)} p95 {_ms(r.p95_ms)} p99 {_ms(r.p99_ms)} ms, "
            f"errors {errors} % → {verdict}{' [client-bound]' if r.client_bound else ''}"
        )

    def as_dict(self) -> JsonObject:
        """One point of the latency-vs-rate curve, as printed by --json and stored."""
        r = self.result
        return {
            "index": self.index,
            "kind": self.kind,
            "rate": r.rate,
            "duration_s": r.duration_s,
            "requests": r.requests,
            "achieved_rps": r.achieved_rps,
            "p50_ms": r.p50_ms,
            "p95_ms": r.p95_ms,
            "p99_ms": r.p99_ms,
            "error_rate": r.error_rate,
            "client_bound": r.client_bound,
            "pass": self.passed,
            "reasons": self.reasons,
        }


@dataclass(slots=True)
class CapacityResult:
    capacity_rps: float | None
    status: str
    note: str
    steps: list[Step]

    @property
    def found(self) -> bool:
        return self.status in FOUND_STATUSES


class StepAborted(Exception):
    """`measure` could not finish a step: `status` is "stopped" (the user) or "hard_stop"."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


Measure = Callable[[float, float], StepResult]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def judge(result: StepResult, gates: CapacityGates) -> list[str]:
    """Why a step fails the gates; empty when it passes. No answer at all is never a pass."""
    if result.requests == 0 or result.p95_ms is None:
        return ["no request completed"]
    reasons = []
    if result.p95_ms > gates.max_p95_ms:
        reasons.append(f"p95 {result.p95_ms:.1f} ms > {gates.max_p95_ms:g} ms")
    if result.error_rate is not None and result.error_rate > gates.max_error_rate:
        reasons.append(f"error_rate {result.error_rate:.2f}% > {gates.max_error_rate:g}%")
    floor = gates.min_achieved_ratio * result.rate
    if result.achieved_rps is not None and result.achieved_rps < floor:
        reasons.append(
            f"achieved {result.achieved_rps:.1f} of {result.rate:g} req/s "
            f"(< {gates.min_achieved_ratio:.0%})"
        )
    return reasons


def _rate(value: float) -> float:
    """Rates to 0.1 req/s: finer steps are below any device's noise."""
    return max(0.1, round(value, 1))


def search(
    measure: Measure,
    gates: CapacityGates,
    plan: SearchPlan,
    on_step: Callable[[Step], None] | None = None,
) -> CapacityResult:
    """Find the highest rate that passes `gates`: start, double, bisect, confirm longer."""
    steps: list[Step] = []

    def run(rate: float, duration: float, kind: str) -> Step:
        result = measure(rate, duration)
        reasons = judge(result, gates)
        step = Step(len(steps) + 1, kind, result, not reasons, reasons)
        steps.append(step)
        if on_step is not None:
            on_step(step)
        return step

    try:
        return _search(run, plan, steps)
    except StepAborted as exc:
        return CapacityResult(None, exc.status, exc.reason, steps)


def _search(
    run: Callable[[float, float, str], Step], plan: SearchPlan, steps: list[Step]
) -> CapacityResult:
    low = _rate(min(plan.start_rate, plan.max_rate))
    first = run(low, plan.step_s, "ramp")
    if not first.passed:
        # "No capacity" is an answer too, so it is confirmed like one: a first step can fail on
        # warm-up alone (connections opening, a cold device cache).
        first = run(low, plan.confirm_s, "confirm")
        if not first.passed:
            why = "; ".join(first.reasons)
            note = f"even {low:g} req/s fails the gates: {why}"
            return CapacityResult(None, "none", note, steps)
    high: float | None = None
    status, note = "found", ""
    last = first
    while high is None:  # doubling
        if last.result.client_bound:
            status = "client_bound"
            note = f"the load generator is saturated at {last.result.rate:g} req/s"
            break
        if low >= plan.max_rate:
            status, note = "ceiling", f"every rate up to --max-rate {plan.max_rate:g} passed"
            break
        last = run(_rate(min(low * 2, plan.max_rate)), plan.step_s, "ramp")
        if last.passed:
            low = last.result.rate
        elif last.result.client_bound:  # a failure perftui may have caused says nothing
            status = "client_bound"
            note = f"the load generator is saturated at {last.result.rate:g} req/s"
            break
        else:
            high = last.result.rate
    while high is not None and high / low > 1 + plan.precision:  # bisection
        step = run(_rate((low + high) / 2), plan.step_s, "bisect")
        if step.result.client_bound:
            status = "client_bound"
            note = f"the load generator is saturated at {step.result.rate:g} req/s"
            break
        if step.passed:
            low = step.result.rate
        else:
            high = step.result.rate
    candidate = low
    for _ in range(plan.confirm_attempts):
        step = run(candidate, plan.confirm_s, "confirm")
        if step.passed:
            return CapacityResult(candidate, status, note, steps)
        candidate = _rate(candidate * (1 - plan.backoff))
    return CapacityResult(
        None,
        "unconfirmed",
        f"no confirm step passed ({plan.confirm_attempts} tried, down to "
        f"{_rate(candidate / (1 - plan.backoff)):g} req/s)",
        steps,
    )


# --- a stored rate ramp, read as steps ----------------------------------------------------------


class NotARateRamp(ValueError):
    """A phase without a stored `--stages` rate ramp (or one of clients) has no knee to read."""


def ramp_steps(report: PhaseReport, gates: CapacityGates) -> tuple[list[StepResult], int]:
    """A stored rate ramp's timeline windows as capacity steps at their mean target, in time
    order, and how many windows were left out: those whose target is too low for one request
    more or less to stay within the achieved-rate gate (`min_achieved_ratio`: 10 % by
    default), so that a window counts only where it can tell."""
    ramp = report.get("ramp") or {}
    if ramp.get("unit") != "rps":
        unit = ramp.get("unit")
        raise NotARateRamp(
            f"a ramp of {unit}, not of req/s" if unit else "no --stages ramp in this phase"
        )
    timeline = report.get("timeline") or {}
    tolerance = 1 - gates.min_achieved_ratio
    steps: list[StepResult] = []
    left_out = 0
    rows = zip(
        window_spans(timeline),
        ramp.get("target") or [],
        *(timeline.get(c) or [] for c in ("requests", "errors", "rps")),
        *(timeline.get(f"p{q}_ms") or [] for q in (50, 95, 99)),
        strict=False,  # a record cut short keeps its full rows only
    )
    for (start, end), target, requests, errors, rps, p50, p95, p99 in rows:
        if target * (end - start) * tolerance < 1 - 1e-9:  # 10 requests at 10 % can tell
            left_out += 1
            continue
        steps.append(
            StepResult(
                rate=target,
                duration_s=round(end - start, 3),
                requests=requests,
                p50_ms=p50,
                p95_ms=p95,
                p99_ms=p99,
                error_rate=100.0 * errors / requests if requests else None,
                achieved_rps=rps,
                client_bound=bool(report.get("client_bound")),
            )
        )
    return steps, left_out


def knee(report: PhaseReport, gates: CapacityGates) -> CapacityResult:
    """The capacity a stored rate ramp shows: each window judged by `judge`, the live search's
    own decision; the answer is the highest target that passed before the first window that
    failed (a ramp coming down after it is still draining the queue it built, so later windows
    say nothing about the rate). "ceiling" when no window failed (the ramp's top is a lower
    bound), "none" when the first judged window failed, "client_bound" when the phase was."""
    results, left_out = ramp_steps(report, gates)
    steps: list[Step] = []
    for result in results:
        reasons = judge(result, gates)
        steps.append(Step(len(steps) + 1, "window", result, not reasons, reasons))
    skipped = f"; {left_out} window(s) too light to judge left out" if left_out else ""
    failed = next((s for s in steps if not s.passed), None)
    before = steps[: failed.index - 1] if failed is not None else steps
    if not before:
        why = "; ".join(failed.reasons) if failed is not None else "no window to judge"
        rate = f" at {failed.result.rate:g} req/s" if failed is not None else ""
        return CapacityResult(None, "none", f"the first window{rate} fails: {why}{skipped}", steps)
    best = max(s.result.rate for s in before)
    if report.get("client_bound"):
        status, note = "client_bound", "the load generator was saturated in this phase"
    elif failed is None:
        status, note = "ceiling", f"every window up to the ramp's {best:g} req/s passed"
    else:
        at = failed.result
        status = "found"
        note = f"falls behind at {at.rate:g} req/s ({at.duration_s:g} s window): " + "; ".join(
            failed.reasons
        )
    return CapacityResult(best, status, note + skipped, steps)


# --- the real measure: one engine process per step --------------------------------------------


def step_config(base: RunConfig, rate: float, duration: float, step_dir: Path) -> RunConfig:
    """One open-loop phase ("burst") at `rate` for `duration`, nothing else.

    The step's own files go to `step_dir` (a scratch dir): only the search's record is stored in
    history. The lock stays the caller's, so an orphaned step engine never writes past a new run.
    """
    clients = base.phase_settings(base.profiles[0], "burst").clients
    return dataclasses.replace(
        base,
        runs=1,
        phase_overrides={
            "burst": {"clients": clients, "duration": duration, "rate": rate},
            "long": {"duration": 0.0},
        },
        history_dir=step_dir,
        lock_file=base.lock_path,
        write_history_db=False,
        between_runs_sleep_ms=0,
        tag="",
    )


class EngineMeasure:
    """`measure` against the real device. Thread-safe `stop()`: the current step ends early
    and the search ends as "stopped"."""

    def __init__(self, base: RunConfig, on_event: Callable[[Event], None] | None = None) -> None:
        self.base = base
        self.on_event = on_event
        self.engine: EngineProcess | None = None
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True
        if self.engine is not None:
            self.engine.stop()

    def kill(self) -> None:
        self.stopped = True
        if self.engine is not None:
            self.engine.kill()

    def __call__(self, rate: float, duration: float) -> StepResult:
        if self.stopped:
            raise StepAborted("stopped", "stopped by the user")
        with tempfile.TemporaryDirectory(prefix="perftui-capacity-") as scratch:
            engine = EngineProcess(step_config(self.base, rate, duration, Path(scratch)))
            self.engine = engine
            engine.start()
            if self.stopped:  # a stop that landed between the check above and the start
                engine.stop()
            for event in engine.events():
                if self.on_event is not None:
                    self.on_event(event)
            self.engine = None
        finished = engine.finished
        assert finished is not None
        if self.stopped or finished.status == "stopped":
            raise StepAborted("stopped", "stopped by the user")
        payload = finished.payload or {}
        results = [r for run in payload.get("raw_runs") or [] for r in run["results"]]
        if not results:
            raise StepAborted(
                "hard_stop", finished.hard_stop_reason or f"the {rate:g} req/s step did not run"
            )
        report = results[0]["report"]
        if report.get("mode") != "open":
            raise StepAborted(
                "hard_stop", "this engine runs no open-loop phases (no 'mode' in its report)"
            )
        return StepResult(
            rate=rate,
            duration_s=duration,
            requests=report.get("requests_total") or 0,
            p50_ms=report.get("p50_ms"),
            p95_ms=report.get("p95_ms"),
            p99_ms=report.get("p99_ms"),
            error_rate=report.get("error_rate"),
            achieved_rps=report.get("achieved_rps"),
            client_bound=bool(report.get("client_bound")),
            phase_result=results[0],
        )


def capacity_record(
    config: RunConfig,
    gates: CapacityGates,
    plan: SearchPlan,
    result: CapacityResult,
    started: datetime,
) -> RunRecord:
    """A run record for history: the legacy keys describe the step that decided (the passing
    confirm step, else the last step), and `record["capacity"]` holds the answer and the curve.

    Only that one step goes into `raw_runs`: aggregating steps at different rates into one
    median would describe no rate at all.
    """
    deciding = next(
        (s for s in reversed(result.steps) if s.kind == "confirm" and s.passed),
        result.steps[-1] if result.steps else None,
    )
    raw_runs = []
    if deciding is not None and deciding.result.phase_result is not None:
        phase = dict(deciding.result.phase_result)
        phase["pass"], phase["fail_reasons"] = deciding.passed, list(deciding.reasons)
        raw_runs.append({"profile": phase["profile"], "run_index": 1, "results": [phase]})
    status = {"stopped": "stopped", "hard_stop": "hard_stop"}.get(result.status, "finished")
    payload = record.build(
        config,
        run_id=record.new_run_id(started),
        started=started,
        finished=datetime.now(UTC),
        status=status,
        raw_runs=raw_runs,
        hard_stop_reason=result.note if status == "hard_stop" else None,
        previous=None,
        meta=record.metadata(),
    )
    payload["overall_pass"] = result.found
    payload["runs_per_profile"] = 1
    payload["capacity"] = {
        "capacity_rps": result.capacity_rps,
        "status": result.status,
        "note": result.note,
        "steps": [s.as_dict() for s in result.steps],
        "gates": gates.as_dict(),
        "plan": dataclasses.asdict(plan),
    }
    return payload
