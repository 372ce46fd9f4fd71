"""The one registry of compared metrics: name, label, direction, regression threshold, scale.

`aggregate` summarises every metric here, `compare` judges those marked `compared`, `trend`
reads the direction and the threshold. A metric's `window` names the timeline column
(engine/metrics.py `Timeline`) that shows its spread within one run; `log` says whether its
change is a ratio (judged on the log scale) or a difference.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    label: str
    higher_is_better: bool
    threshold: float  # percent, or percentage points when `points`
    # Relative changes divide by max(|A|, floor), so near-zero values do not explode.
    floor: float = 0.0
    points: bool = False  # change and threshold in percentage points, not percent
    log: bool = False  # a positive quantity whose change is a ratio
    window: str | None = None  # the timeline column that resamples it within one run
    primary: bool = False  # gates CI (--fail-on-regression) when it is a whole-phase row
    compared: bool = True
    source: str | None = None  # a sub-dict of the phase report holding it (else top level)
    field: str | None = None  # its key in that sub-dict (else `name`)
    # A corrected variant of this metric: compared only where some run's value differs from it.
    variant_of: str | None = None
    # A rate of events among trials: the report's keys of both, whose sums bound the rate.
    counts: tuple[str, str] | None = None


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("rps_ok", "rps ok", True, 10.0, floor=1.0, log=True, window="rps", primary=True),
        Metric("p50_ms", "p50 ms", False, 20.0, floor=0.05, log=True, window="p50_ms"),
        Metric("p95_ms", "p95 ms", False, 20.0, 0.05, log=True, window="p95_ms", primary=True),
        Metric("p99_ms", "p99 ms", False, 30.0, 0.05, log=True, window="p99_ms", primary=True),
        Metric("p999_ms", "p99.9 ms", False, 30.0, floor=0.05, log=True),
        Metric("max_ms", "max ms", False, 50.0, floor=0.05, log=True, compared=False),
        Metric("p95_tail_ms", "tail p95 ms", False, 30.0, floor=0.05, log=True),
        Metric(
            "error_rate",
            "error %",
            False,
            1.0,
            points=True,
            window="error_rate",
            primary=True,
            counts=("err", "requests_total"),
        ),
        Metric("heap_internal_drop", "heap drop B", False, 15.0, floor=4096.0, primary=True),
        # A freeze of the device (stall) and the closed loop's coordinated-omission-corrected
        # tail: secondary rows, as they exist only in records made since they were measured.
        Metric(
            "stall_longest_ms",
            "longest stall ms",
            False,
            50.0,
            floor=200.0,  # the shortest stall there is: 0 → 300 ms reads +150 %, not infinite
            source="stalls",
            field="longest_ms",
        ),
        Metric(
            "co_p99_ms",
            "p99 ms CO-corrected",
            False,
            30.0,
            floor=0.05,
            log=True,
            source="co_corrected",
            field="p99_ms",
            variant_of="p99_ms",  # the same figure unless a stall was corrected
        ),
        *(
            Metric(
                f"{q}_with_failures_ms",
                f"{q} ms incl. failures",
                False,
                20.0 if q == "p50" or q == "p95" else 30.0,
                floor=0.05,
                log=True,
                source="with_failures",
                field=f"{q}_ms",
            )
            for q in ("p50", "p95", "p99", "p999")
        ),
    )
}
# What each path of a phase is compared on.
PATH_METRICS = ("rps_ok", "p50_ms", "p95_ms", "p99_ms", "error_rate")
# The record-level capacity (`perftui capacity`): a row of its own under the key "capacity".
CAPACITY = Metric("capacity_rps", "capacity rps", True, 10.0, floor=1.0, log=True, primary=True)
ALL_METRICS: dict[str, Metric] = {**METRICS, CAPACITY.name: CAPACITY}
