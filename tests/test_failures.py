"""Failure accounting against real loopback servers: timed failures, refusals and backoff."""

from __future__ import annotations

import asyncio
import itertools
import socket

import pytest

from perftui.engine import backoff
from perftui.engine.load import run_phase
from perftui.profiles import parse_profile
from tests.engine_helpers import scripted_phase

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
HANG_SHARE = 0.019


def test_a_device_that_times_out_1_9_percent_shows_it_in_with_failures_p99() -> None:
    """Exactly 19 requests in 1000 are never answered: the legacy p99 (answered requests) stays
    small, the p99 of every attempt is the timeout."""
    counter = itertools.count(1)

    def answer(head: bytes, nth: int) -> tuple[bytes, bool] | None:
        n = next(counter)
        hang = int(n * HANG_SHARE) > int((n - 1) * HANG_SHARE)
        return None if hang else (OK, False)

    timeout = 0.3
    report = asyncio.run(scripted_phase(answer, duration=2.0, timeout=timeout, clients=4))
    share = report["errors_by_kind"]["timeout"] / report["requests_total"]
    assert report["requests_total"] > 500 and 0.015 < share < 0.025
    assert report["err"] == report["errors_by_kind"]["timeout"]
    assert report["p99_ms"] < timeout * 1000 / 3  # the legacy figure never sees the timeouts
    assert report["with_failures"]["p99_ms"] == pytest.approx(timeout * 1000, rel=0.01)
    assert report["with_failures"]["p95_ms"] < timeout * 1000 / 3
    assert report["path_metrics"]["/x"]["with_failures"] == report["with_failures"]


def expected_max_attempts(seconds: float) -> int:
    """The most requests one client can make against a refusing device in `seconds`: each pause
    at its shortest, (1 − jitter) × 10 ms × 1.6^k, capped at 1 s."""
    attempts, elapsed, base = 1, 0.0, backoff.INITIAL_S
    while (elapsed := elapsed + base * (1 - backoff.JITTER)) < seconds:
        attempts += 1
        base = min(base * backoff.MULTIPLIER, backoff.MAX_S)
    return attempts


def test_the_bound_of_the_backoff_schedule() -> None:
    # pauses ≥ 8, 12.8, 20.5, 32.8, 52.4, 83.9, 134, 215, 344, 550 ms (sum 1.45 s); the next,
    # 800 ms, ends after 2 s: at most 11 requests per client in a 2 s phase (was ~200)
    assert expected_max_attempts(2.0) == 11


def test_a_refusing_device_adds_a_bounded_number_of_errors() -> None:
    """A bound but not listening socket: every connect is refused at once."""
    clients, duration = 4, 2.0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # no listen(): the kernel refuses, and the port stays ours
        port = sock.getsockname()[1]
        profile = parse_profile('[[requests]]\npath = "/x"\n', "t", "t.toml")
        outcome = asyncio.run(
            run_phase(
                f"http://127.0.0.1:{port}",
                profile,
                clients=clients,
                duration=duration,
                timeout=2.0,
                budget_s=15.0,
                stop=asyncio.Event(),
                on_snapshot=lambda *_: None,
            )
        )
    report = outcome.recorder.report(clients, duration, outcome.elapsed)
    bound = clients * expected_max_attempts(duration)
    assert report["errors_by_kind"]["refused"] == report["err"] == report["requests_total"]
    assert clients * 5 <= report["err"] <= bound  # kept trying, but at a real client's pace
    assert outcome.elapsed < duration + 0.5  # a pause never outlasts the phase
    assert report["unavailable_s"] == pytest.approx(duration, abs=0.01)
    assert report["with_failures"]["p99_ms"] < 100  # a refusal fails fast, and is timed so
