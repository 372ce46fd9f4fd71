"""The load's HTTP/1.1 connection against devices that answer in every valid (and some odd) way.

Each case is a real asyncio server on loopback speaking exact bytes, driven by `run_phase`.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from perftui.engine.load import run_phase
from perftui.profiles import parse_profile

OK5 = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


async def _phase(answer, method: str = "GET", duration: float = 0.6) -> dict:
    """Serve with `answer(request_head) -> (bytes, close_after)` and run a 2-client phase."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                raw, close = answer(head)
                writer.write(raw)
                await writer.drain()
                if close:
                    break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    profile = parse_profile(f'[[requests]]\npath = "/x"\nmethod = "{method}"\n', "t", "t.toml")
    async with server:
        outcome = await run_phase(
            f"http://127.0.0.1:{port}",
            profile,
            clients=2,
            duration=duration,
            timeout=2.0,
            budget_s=10.0,
            stop=asyncio.Event(),
            on_snapshot=lambda *_: None,
        )
    return outcome.recorder.report(2, duration, outcome.elapsed)


def test_silent_close_after_each_answer_is_not_an_error() -> None:
    """The idle-close race: the device drops a kept-alive socket without saying so."""
    report = asyncio.run(_phase(lambda head: (OK5, True)))
    assert report["requests_total"] > 20
    assert report["err"] == 0 and report["status_counts"] == {"200": report["ok"]}


def test_a_reset_is_still_a_reset() -> None:
    """Only a clean close before any byte is retried; garbage is an error of kind 'other'."""
    report = asyncio.run(_phase(lambda head: (b"HTTP/1.1 2xx nonsense\r\n\r\n", True)))
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
    report = asyncio.run(_phase(lambda head: (raw, False), method="HEAD"))
    assert report["requests_total"] > 20
    assert report["status_counts"] == {status: report["requests_total"]}


def test_interim_100_continue_is_skipped() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\n" + OK5
    report = asyncio.run(_phase(lambda head: (raw, False)))
    assert report["status_counts"] == {"200": report["requests_total"]} and report["err"] == 0


def test_bytes_after_a_response_do_not_leak_into_the_next() -> None:
    raw = OK5 + b"JUNK"
    report = asyncio.run(_phase(lambda head: (raw, False)))
    assert report["requests_total"] > 5
    assert report["status_counts"] == {"200": report["ok"]}
