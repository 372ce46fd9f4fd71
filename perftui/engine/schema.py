"""The shapes that cross rooms: a run's record (engine → history → analysis), the history index's
row, a run in progress's status file, and the record's own schema version.

They are `TypedDict`s, not classes: records are JSON on disk (`runs/*.json.gz`, `latest.json`,
the legacy runner's `perf_*.json`), read back by older and newer versions alike, so every key is
optional (`total=False`) and a reader still says what it does when one is missing.

The record's schema version is its own, apart from the index's (`history.store.INDEX_SCHEMA`).
Records stored before the two were split had the index's version (2) stamped on them when they
carried none; that 2 means record schema 1 (see `readable_record`), so the record's next version
is 3.
"""

from __future__ import annotations

from typing import TypedDict

RECORD_SCHEMA = 1
_MISSTAMPED = 2  # a record schema-1 record stamped with the index's version before the split


def readable_record(schema: object) -> bool:
    """Whether this version reads a record that says it is of `schema` (none: the legacy's)."""
    return isinstance(schema, int) and (schema <= RECORD_SCHEMA or schema == _MISSTAMPED)


Number = int | float
Json = str | int | float | bool | None | list["Json"] | dict[str, "Json"]
JsonObject = dict[str, Json]


class Summary(TypedDict, total=False):
    """One metric over a phase's runs (`analysis.aggregate.summary`); all None without values."""

    median: float | None
    best: float | None
    worst: float | None
    mean: float | None
    stdev: float | None


class PathReport(TypedDict, total=False):
    requests_total: int
    ok: int
    err: int
    rps_ok: float
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    histogram: str


class Stalls(TypedDict, total=False):
    """A phase's stalls (`engine.stalls.StallDetector.to_dict`); the report keeps it as JSON."""

    count: int
    longest_ms: float
    total_ms: float
    at: list[float]  # seconds into the phase


class PhaseReport(TypedDict, total=False):
    """What one phase measured (`engine.metrics.PhaseRecorder.report`)."""

    mode: str  # "closed" or "open"
    clients: int
    duration: float
    elapsed: float
    requests_total: int
    ok: int
    err: int
    retries: int
    rps_ok: float
    rps_total: float
    error_rate: float
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    p95_tail_ms: float | None
    max_ms: float | None
    mean_ms: float | None
    histogram: str
    status_counts: dict[str, int]
    errors_by_kind: dict[str, int]
    path_metrics: dict[str, PathReport]
    timeline: JsonObject
    stalls: JsonObject
    unavailable_s: float
    target_rps: float
    achieved_rps: float
    arrivals: str
    late: int
    max_lag_ms: float
    co_corrected: JsonObject
    tail_samples: list[float]
    client_bound: bool
    loop_lag_ms: dict[str, float | None]
    loop_busy_pct: float
    engine_cpu_pct: float
    heap_slope_b_per_h: float | None
    ramp: JsonObject  # a `--stages` phase: unit, stages, the mean target per timeline window
    # added by the suite: https handshakes of new connections; response checks that failed
    tls_handshake_ms: dict[str, float]
    checks_failed: dict[str, JsonObject]  # path → {count, first (reason)}
    # the device around the phase (added by the suite)
    stats_after: JsonObject | None
    mem_before: JsonObject | None
    mem_after: JsonObject | None
    telemetry_available: bool
    heap_internal_drop: int | None
    heap_psram_drop: int | None
    watchdog_budget_s: float
    timed_out: bool
    stopped: bool


# One phase of one run: its report and its gates' verdict, in the legacy runner's keys ("pass"
# is a keyword, hence the functional form).
PhaseResult = TypedDict(
    "PhaseResult",
    {
        "profile": str,
        "phase": str,
        "pass": bool,
        "fail_reasons": list[str],
        "report": PhaseReport,
    },
    total=False,
)


class RawRun(TypedDict, total=False):
    profile: str
    run_index: int
    results: list[PhaseResult]


class Aggregate(TypedDict, total=False):
    """One `profile:phase` over the runs: pass rate and a `Summary` per metric (more keys, one
    per metric in `analysis.metrics.METRICS`, read by name)."""

    profile: str
    phase: str
    sample_count: int
    pass_rate: float
    path_metrics: dict[str, dict[str, Summary]]


class RunRecord(TypedDict, total=False):
    """A run as `perf_<stamp>.json`, `latest.json` and the history store keep it."""

    timestamp_utc: str
    target: str
    profiles: list[str]
    runs_per_profile: int
    overall_pass: bool
    raw_runs: list[RawRun]
    aggregated: dict[str, Aggregate]
    comparison_to_previous: dict[str, dict[str, float | None]]
    hard_stop_reason: str | None
    thresholds: dict[str, Number | None]
    schema: int
    run_id: str
    status: str  # a RunStatus
    started_at: str
    finished_at: str | None
    tag: str
    build: str
    flagged: str  # why a stored comparison marked it a regression
    note: str
    settings: JsonObject
    profile_definitions: JsonObject
    measurement: JsonObject
    settings_fingerprint: str
    device: str | None
    metadata: dict[str, str | None]
    source: str
    content_hash: str
    capacity: JsonObject


class IndexRow(TypedDict, total=False):
    """The history index's entry for a run: all that list, filter and resolve read."""

    run_id: str
    started_at: str | None
    finished_at: str | None
    target: str | None
    device: str | None
    settings_fingerprint: str | None
    profiles: list[str]
    runs_per_profile: int | None
    tag: str
    build: str
    flagged: str
    note: str
    status: str
    overall_pass: bool | None
    failed_keys: list[str]
    hard_stop_reason: str | None
    keys: list[str]
    source: str
    kind: str  # "run" or "capacity"
    content_hash: str
    doc: str


class LiveStatus(TypedDict, total=False):
    """`HISTORY/live/<run_id>.json`: where a run in progress is, for `ps` and the TUI."""

    run_id: str
    pid: int | None
    engine_pid: int | None
    target: str
    profiles: list[str]
    phase: str
    progress: str
    started: str
    events: str
    config: JsonObject
    elapsed: float
    duration: float
    alive: bool
