"""Watching a run from a browser: textual-serve serves `perftui attach latest` (optional extra)."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from tests.faults.conftest import free_port

pytest.importorskip("textual_serve")

SERVE = """
import sys
from textual_serve.server import Server
Server(sys.argv[1], host="127.0.0.1", port=int(sys.argv[2]), title="perftui").serve()
"""


def test_textual_serve_starts_and_serves_the_attach_page(tmp_path) -> None:
    port = free_port()
    command = f"{sys.executable} -m perftui attach latest --history-dir {tmp_path}"
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, command, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        response = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert response is not None, proc.stderr.read() if proc.poll() is not None else "no answer"
        assert response.status_code == 200
        assert "perftui" in response.text
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()  # type: ignore[union-attr]
