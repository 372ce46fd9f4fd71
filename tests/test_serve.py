"""`perftui serve`: the TUI in a browser through textual-serve, on loopback by default, behind a
token when bound beyond it (tested by forcing the token on a loopback bind)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import httpx
import pytest

from perftui.cli.serve import command, is_loopback, token_for
from tests.faults.conftest import free_port


@pytest.mark.parametrize(
    "host,loopback",
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.0.20", False),
        ("::", False),
        ("bench-pc", False),
    ],
)
def test_a_token_is_made_up_only_beyond_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    assert (token_for(host, None) is None) is loopback
    assert token_for(host, "given") == "given"


def test_each_tab_runs_the_tui_or_attach(tmp_path: Path) -> None:
    assert command(tmp_path, None).endswith(f"-m perftui --history-dir {tmp_path}")
    assert command(tmp_path, "latest").endswith(f"--history-dir {tmp_path} attach latest")


async def _first_screen(url: str, token: str) -> bytes:
    """What the TUI sends a browser tab first, over the page's websocket (cookie from the page);
    a page of another origin is refused even with the cookie."""
    # unsafe: keep cookies of an IP address, as a browser does (aiohttp's jar drops them)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(f"{url}/?token={token}") as page:
            assert page.status == 200
        ws_url = f"{url.replace('http', 'ws')}/ws?width=80&height=24"
        with pytest.raises(aiohttp.WSServerHandshakeError) as foreign:  # another site's page
            await session.ws_connect(ws_url, origin="http://evil.example")
        assert foreign.value.status == 403
        async with session.ws_connect(ws_url, origin=url) as ws:
            data = b""
            while b"perftui" not in data:
                message = await asyncio.wait_for(ws.receive(), 45)  # a loaded machine
                assert message.type == aiohttp.WSMsgType.BINARY, message
                data += message.data
            return data


def test_serve_fetches_the_page_and_refuses_requests_without_the_token(tmp_path: Path) -> None:
    port = free_port()
    serve = ["serve", "--port", str(port), "--token", "s3cret"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "perftui", "--history-dir", str(tmp_path), *serve],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(f"perftui serve: open {url}/?token=s3cret")
        deadline = time.monotonic() + 10
        while True:
            try:
                refused = httpx.get(f"{url}/", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.1)
        assert refused.status_code == 403 and "token" in refused.text
        assert httpx.get(f"{url}/ws", timeout=2).status_code == 403
        assert httpx.get(f"{url}/?token=wrong", timeout=2).status_code == 403
        page = httpx.get(f"{url}/?token=s3cret", timeout=2)
        assert page.status_code == 200 and "<div>perftui</div>" in page.text
        assert f"ws://127.0.0.1:{port}/ws" in page.text
        assert page.cookies.get("perftui_token") == "s3cret"
        assert b"perftui" in asyncio.run(_first_screen(url, "s3cret"))
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()  # type: ignore[union-attr]
