"""Helpers for driving the real `perftui run` against a loopback server in tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from perftui.cli.main import main

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
