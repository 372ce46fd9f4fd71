"""Typed events the engine emits; the headless printer and the TUI both consume this one stream.

Every event is a small picklable dataclass so it can cross the process boundary between the
engine process and the UI process through a multiprocessing queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from perftui.engine.schema import JsonObject, PhaseReport, RunRecord


class RunStatus(StrEnum):
    """How a run ended, as stored in its record and the index (a str: JSON and old records
    carry the plain text)."""

    FINISHED = "finished"
    STOPPED = "stopped"  # by the user (or a dying parent): the partial run is kept
    HARD_STOP = "hard_stop"  # the watchdog, an unreachable device, an engine error
    DIED = "died"  # the run's processes went without a word; its last partial is kept
    NOT_STARTED = "not_started"  # stopped before any phase gave a result: nothing measured


# The `le` bounds of the exported latency histogram, in ms (`perftui.exporter`).
LATENCY_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


@dataclass(slots=True)
class RunStarted:
    """The whole invocation began: what will be run and how many phases that makes."""

    target: str
    profiles: list[str]
    runs: int
    phases: list[str]
    total_phases: int
    started_at: str
    settings: JsonObject


@dataclass(slots=True)
class PhaseStarted:
    profile: str
    run_index: int
    phase: str
    clients: int
    duration: float
    budget_s: float
    ordinal: int
    total_phases: int
    rate: float | None = None  # open loop: req/s, `clients` then being the most connections


@dataclass(slots=True)
class PathCounts:
    """One path so far in the phase; percentiles only when the consumer asked for them
    (`RunConfig.path_percentiles_s`), as they cost the load's loop a little."""

    requests: int
    ok: int
    err: int
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


@dataclass(slots=True)
class Heartbeat:
    """A snapshot of a running phase, emitted several times a second.

    `window_*` values cover only the requests completed since the previous heartbeat; the others
    are cumulative over the phase so far.
    """

    profile: str
    run_index: int
    phase: str
    elapsed: float
    duration: float
    budget_s: float
    requests: int
    ok: int
    errors: int
    rps_now: float
    window_p50_ms: float | None
    window_p95_ms: float | None
    window_p99_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    errors_by_kind: dict[str, int]
    status_counts: dict[str, int]
    paths: dict[str, PathCounts] = field(default_factory=dict)
    target_rps: float | None = None  # open loop: the rate asked for (rps_now is the achieved)
    stalls: int = 0  # stalls so far in the phase
    ramp: bool = False  # `--stages`: target_rps is the ramp's target now, not the phase's
    client_bound: bool = False  # the engine's own loop lag or CPU is the bottleneck so far
    # Only when a metrics port is asked for: the phase's answered requests at or below each
    # `LATENCY_BUCKETS_MS` bound so far, then all of them (+Inf), and the sum of their latencies.
    latency_le: list[int] | None = None
    latency_sum_ms: float | None = None


@dataclass(slots=True)
class Stall:
    """Requests were outstanding and none completed for `duration_ms` from `at_s` (phase
    offset); emitted when the span ends."""

    profile: str
    run_index: int
    phase: str
    at_s: float
    duration_ms: float


@dataclass(slots=True)
class Telemetry:
    """Device heap/server stats read around (and, when available, during) a phase."""

    profile: str
    run_index: int
    phase: str
    moment: str  # "before", "during" or "after"
    memory: JsonObject | None
    server: JsonObject | None


@dataclass(slots=True)
class PhaseFinished:
    profile: str
    run_index: int
    phase: str
    passed: bool
    fail_reasons: list[str]
    report: PhaseReport
    ordinal: int
    total_phases: int


@dataclass(slots=True)
class Log:
    level: str  # "info", "warning" or "error"
    message: str


@dataclass(slots=True)
class RunFinished:
    """The invocation is over, for whatever reason; `exit_code` is what the CLI exits with."""

    status: RunStatus
    overall_pass: bool
    exit_code: int
    hard_stop_reason: str | None
    files: dict[str, str]
    payload: RunRecord | None
    run_id: str | None = None


Event = (
    RunStarted | PhaseStarted | Heartbeat | Stall | Telemetry | PhaseFinished | Log | RunFinished
)
