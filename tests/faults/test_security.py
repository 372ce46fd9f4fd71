"""Security: credentials are sent but never stored or printed, redirects never leave the device,
and the simulated device listens on loopback only unless told otherwise."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from aiohttp import web

from perftui.sim.device import SimOptions, SimProcess, SimServer
from tests.faults.conftest import every_stored_byte, run_faulty

SECRETS = {
    "Authorization": "Bearer SECRET-AUTH-7f3a",
    "Cookie": "session=SECRET-COOKIE-91bc",
    "X-Device-Key": "SECRET-KEY-44d0",  # secret only because the profile says so
}
VISIBLE = ("X-Trace", "visible-trace-5e21")  # not secret: stored as given


def _profile(folder: Path) -> Path:
    headers = ", ".join(f'"{k}" = "{v}"' for k, v in (*SECRETS.items(), VISIBLE))
    path = folder / "authed.toml"
    path.write_text(
        'description = "authenticated device"\n'
        'secret_headers = ["X-Device-Key"]\n'
        f'[[requests]]\npath = "/hello"\nheaders = {{ {headers} }}\n'
        f'[[requests]]\npath = "/moved"\nheaders = {{ {headers} }}\n'
    )
    return path


def test_credentials_are_sent_never_stored_and_redirects_stay_home(
    loopback_app, tmp_path: Path, capfd
) -> None:
    async def anything(_request: web.Request) -> web.Response:
        return web.Response(text="elsewhere\n")

    elsewhere = loopback_app({"/{tail:.*}": anything})

    async def hello(_request: web.Request) -> web.Response:
        return web.Response(text="hello\n")

    async def moved(_request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{elsewhere.base_url}/hello")

    device = loopback_app({"/hello": hello, "/moved": moved})
    history = tmp_path / "history"
    outcome = run_faulty(device.port, history, capfd, "--profiles", str(_profile(tmp_path)))
    assert outcome.code == 0, outcome.err

    load = [s for s in device.seen if s.path in ("/hello", "/moved") and "X-Trace" in s.headers]
    assert len(load) > 20
    for seen in load:  # sent, exactly as the profile says
        assert {k: seen.headers.get(k) for k in SECRETS} == SECRETS
    assert elsewhere.seen == []  # the 302 was not followed: no request, no credential, elsewhere

    report = outcome.results()[0]["report"]
    moved_metrics = report["path_metrics"]["/moved"]
    assert set(moved_metrics["status_counts"]) == {"302"}  # 3xx is ok (REFERENCE.md)
    assert moved_metrics["ok"] == moved_metrics["requests_total"] > 0 and report["err"] == 0

    stored = every_stored_byte(history)
    assert any(p.name.endswith(".json.gz") for p in stored)  # the history DB's run document
    assert any(p.name.startswith("perf_") and p.suffix == ".md" for p in stored)
    # The scan reads what is stored (DB documents decompressed): the non-secret header is there.
    for name in ("latest.json", "perftui.json"):
        assert name in {p.name for p in stored}
    assert all(
        VISIBLE[1].encode() in data
        for path, data in stored.items()
        if path.name.endswith((".json.gz", "latest.json"))
    )
    for value in SECRETS.values():
        for path, data in stored.items():
            assert value.encode() not in data, f"{value} written to {path}"
        assert value not in outcome.out and value not in outcome.err
    headers = outcome.payload["profile_definitions"]["authed"]["requests"][0]["headers"]
    assert headers == {**dict.fromkeys(SECRETS, "***"), VISIBLE[0]: VISIBLE[1]}


def _listening(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp{,6} writes them) listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(address)
    return found


LOOPBACK_V4 = "0100007F"  # 127.0.0.1, little-endian hex


def test_simulated_device_binds_loopback_by_default(tmp_path: Path) -> None:
    with SimServer(SimOptions(max_lifetime_s=30)) as in_thread:
        assert _listening(in_thread.port) == {LOOPBACK_V4}
    with SimProcess(SimOptions(max_lifetime_s=30)) as child:  # what `perftui run --sim` starts
        assert _listening(child.port) == {LOOPBACK_V4}
    served = subprocess.Popen(
        [sys.executable, "-m", "perftui", "sim", "--port", "0", "--max-lifetime-s", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert served.stdout is not None
        line = served.stdout.readline()
        match = re.match(r"perftui sim: serving http://127\.0\.0\.1:(\d+) ", line)
        assert match, line
        assert _listening(int(match.group(1))) == {LOOPBACK_V4}
    finally:
        served.terminate()
        served.wait(10)
        served.stdout.close()
