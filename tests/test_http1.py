"""The load's HTTP/1.1 connection against devices that answer in every valid (and some odd) way.

Each case is a real asyncio server on loopback speaking exact bytes, driven by `run_phase`.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.engine_helpers import scripted_phase as _phase

OK5 = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def test_silent_close_after_each_answer_is_not_an_error() -> None:
    """The idle-close race: the device drops a kept-alive socket without saying so."""
    report = asyncio.run(_phase(lambda head, nth: (OK5, True)))
    assert report["requests_total"] > 20
    assert report["err"] == 0 and report["status_counts"] == {"200": report["ok"]}


def _close_on_second(head: bytes, nth: int) -> tuple[bytes, bool]:
    """Answer a connection's first request; close cleanly, without a byte, on its second."""
    return (OK5, False) if nth == 0 else (b"", True)


def test_an_idempotent_request_hit_by_the_idle_close_race_is_resent_and_counted() -> None:
    report = asyncio.run(_phase(_close_on_second, method="GET"))
    assert report["err"] == 0 and report["ok"] > 20
    # every request but each client's first met the race once and was re-sent on a new connection
    assert report["retries"] == report["ok"] - 2
    assert report["path_metrics"]["/x"]["retries"] == report["retries"]


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_a_non_idempotent_request_hit_by_the_race_is_a_reset_never_resent(method: str) -> None:
    report = asyncio.run(_phase(_close_on_second, method=method))
    assert report["retries"] == 0
    assert report["err"] == report["errors_by_kind"]["reset"] > 10
    assert abs(report["err"] - report["ok"]) <= 2  # answered, raced, answered on a new one, …


def test_a_reset_is_still_a_reset() -> None:
    """Only a clean close before any byte is re-sent; garbage is an error of kind 'other'."""
    report = asyncio.run(_phase(lambda head, nth: (b"HTTP/1.1 2xx nonsense\r\n\r\n", True)))
    assert report["ok"] == 0 and report["errors_by_kind"]["other"] == report["err"] > 0


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"HTTP/1.1 204 No Content\r\n\r\n", "204"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "200"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "200"),  # the size a GET would get
    ],
)
def test_head_answers_are_read_without_a_body(raw: bytes, status: str) -> None:
    report = asyncio.run(_phase(lambda head, nth: (raw, False), method="HEAD"))
    assert report["requests_total"] > 20
    assert report["status_counts"] == {status: report["requests_total"]}


def test_interim_100_continue_is_skipped() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\n" + OK5
    report = asyncio.run(_phase(lambda head, nth: (raw, False)))
    assert report["status_counts"] == {"200": report["requests_total"]} and report["err"] == 0


def test_bytes_after_a_response_do_not_leak_into_the_next() -> None:
    raw = OK5 + b"JUNK"
    report = asyncio.run(_phase(lambda head, nth: (raw, False)))
    assert report["requests_total"] > 5
    assert report["status_counts"] == {"200": report["ok"]}
