"""Helpers for driving the real `perftui run` against a loopback server in tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perftui.cli.main import main
from perftui.engine.load import run_phase
from perftui.profiles import parse_profile

# answer(request_head, nth request on its connection) -> (bytes to send, close after), or None
# to never answer (the client times out and drops the connection).
Answer = Callable[[bytes, int], tuple[bytes, bool] | None]

FAST = [
    "--runs",
    "1",
    "--burst-duration",
    "1",
    "--long-duration",
    "0",
    "--burst-clients",
    "4",
    "--between-runs-sleep-ms",
    "0",
    "--post-phase-settle-ms",
    "0",
    "--heartbeat-ms",
    "500",
    "--probe-retries",
    "2",
    # One-second phases on a shared 2-core machine make the last quarter's p95 noisy; the tail
    # gate itself is proven in test_gates.py.
    "--max-tail-p95-ratio",
    "4",
]


def run_cli(port: int, history: Path, *extra: str, fast: bool = True) -> int:
    """`perftui run 127.0.0.1 --port PORT --history-dir HISTORY …` in-process (engine spawned)."""
    args = ["run", "127.0.0.1", "--port", str(port), "--history-dir", str(history)]
    return main([*args, *(FAST if fast else []), *extra])


def latest(history: Path) -> dict[str, Any]:
    return json.loads((history / "latest.json").read_text())


def first_report(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["raw_runs"][0]["results"][0]["report"]


async def scripted_phase(
    answer: Answer,
    method: str = "GET",
    duration: float = 0.6,
    timeout: float = 2.0,
    clients: int = 2,
) -> dict[str, Any]:
    """Run one real `run_phase` against a loopback server that speaks `answer`'s exact bytes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nth = 0
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                reply = answer(head, nth)
                nth += 1
                if reply is None:
                    await reader.read()  # hang until the client gives up and closes
                    break
                raw, close = reply
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
            clients=clients,
            duration=duration,
            timeout=timeout,
            budget_s=duration + timeout + 10.0,
            stop=asyncio.Event(),
            on_snapshot=lambda *_: None,
        )
    return outcome.recorder.report(clients, duration, outcome.elapsed)
