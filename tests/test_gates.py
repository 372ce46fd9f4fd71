"""The legacy gates on a phase report: each threshold, and the report that passes them all.

The reason strings are the legacy runner's, character for character (scripts grep them)."""

from __future__ import annotations

from perftui.config import GateLimits
from perftui.engine.gates import evaluate

GOOD = {
    "error_rate": 0.5,
    "p95_ms": 100.0,
    "p99_ms": 150.0,
    "p95_tail_ms": 120.0,
    "heap_internal_drop": 1000,
    "heap_psram_drop": None,
    "timed_out": False,
    "stopped": False,
}


def test_good_report_passes() -> None:
    assert evaluate(GOOD, GateLimits()) == []


def test_each_gate_fails_on_its_own() -> None:
    cases = {
        "error_rate": (2.5, "error_rate 2.50% > 2.00%"),
        "p95_ms": (2100.456, "p95 2100.46ms > 2000.00ms"),
        "p99_ms": (3100.0, "p99 3100.00ms > 3000.00ms"),
        "p95_tail_ms": (181.0, "tail ratio 1.81 > 1.80"),
        "heap_internal_drop": (131073, "internal_free drop 131073 > 131072"),
        "heap_psram_drop": (524289, "psram_free drop 524289 > 524288"),
    }
    for key, (value, reason) in cases.items():
        assert evaluate({**GOOD, key: value}, GateLimits()) == [reason], key


def test_boundaries_pass_and_unknowns_are_skipped() -> None:
    edge = {**GOOD, "error_rate": 2.0, "p95_tail_ms": 180.0, "heap_internal_drop": 131072}
    assert evaluate(edge, GateLimits()) == []
    unknown = {**GOOD, "p95_ms": None, "p99_ms": None, "p95_tail_ms": None}
    assert evaluate({**unknown, "heap_internal_drop": None}, GateLimits()) == []


def test_watchdog_and_stop_are_failures() -> None:
    reasons = evaluate({**GOOD, "timed_out": True, "watchdog_budget_s": 45}, GateLimits())
    assert reasons == ["watchdog: phase exceeded its 45 s budget"]
    assert evaluate({**GOOD, "stopped": True}, GateLimits()) == [
        "stopped before the phase finished"
    ]


def test_a_silent_last_quarter_fails() -> None:
    silent = {**GOOD, "tail_samples": 0, "requests_total": 900, "p95_tail_ms": None}
    assert evaluate(silent, GateLimits()) == [
        "no response completed in the last quarter of the phase"
    ]
    stopped = {**silent, "stopped": True}
    assert evaluate(stopped, GateLimits()) == ["stopped before the phase finished"]


def test_gate_defaults_are_written_once() -> None:
    """The flags, their defaults and the TUI's fields all come from the settings registry."""
    from dataclasses import asdict, fields

    from perftui.cli.main import build_parser
    from perftui.cli.run import config_from_args
    from perftui.settings import GATES
    from perftui.tui.screens.setup import ADVANCED

    GATE_LIMIT_TYPES = [g for g in GATES if g != "max_heap_slope"]  # the opt-in one: no field
    assert list(GATES) == [f.name for f in fields(GateLimits)]
    args = build_parser().parse_args(["run", "127.0.0.1"])
    assert config_from_args(args).gate_limits == GateLimits()
    given = build_parser().parse_args(["run", "127.0.0.1", "--max-p95-ms", "150"])
    assert config_from_args(given).gate_limits.max_p95_ms == 150.0
    tui = {f.name: f.default for f in ADVANCED if f.name in GATE_LIMIT_TYPES}
    assert tui == {k: v for k, v in asdict(GateLimits()).items() if k in GATE_LIMIT_TYPES}
