"""Device faults: whatever the device does, the run ends within its watchdog budget, the phase is
recorded as failed with the reason, every file stays valid JSON and the exit status is the
documented one (README, "Exit status")."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.faults.conftest import (
    DURATION_S,
    FAULT_FLAGS,
    PROBE_OUTSIDE_FAULTS,
    STARTUP_ALLOWANCE_S,
    TIMEOUT_S,
    Outcome,
    assert_clean_exit,
    free_port,
    perftui_argv,
    run_faulty,
    watchdog_budget,
)

Check = Callable[[Outcome, dict[str, Any]], None]


@dataclass
class Fault:
    options: dict[str, Any]
    flags: list[str]
    code: int
    check: Check
    kinds: dict[str, str] = field(default_factory=dict)


def _only_errors_of(kind: str, *, some_ok: bool) -> Check:
    def check(outcome: Outcome, report: dict[str, Any]) -> None:
        assert report["err"] > 0 and report["errors_by_kind"][kind] == report["err"]
        assert (report["ok"] > 0) is some_ok
        assert any(r.startswith("error_rate ") for r in outcome.results()[0]["fail_reasons"])

    return check


def _all_timeouts(outcome: Outcome, report: dict[str, Any]) -> None:
    _only_errors_of("timeout", some_ok=False)(outcome, report)
    assert report["requests_total"] == report["err"] and report["error_rate"] == 100.0


def _share_of_5xx(outcome: Outcome, report: dict[str, Any]) -> None:
    _only_errors_of("http_5xx", some_ok=True)(outcome, report)
    assert report["status_counts"]["500"] == report["err"]
    assert 10.0 < report["error_rate"] < 45.0  # the device answers 25 % with 500


def _resets(outcome: Outcome, report: dict[str, Any]) -> None:
    _only_errors_of("reset", some_ok=True)(outcome, report)
    assert 10.0 < report["error_rate"] < 50.0  # the device resets 25 %


def _telemetry_unavailable(why: str) -> Check:
    def check(outcome: Outcome, report: dict[str, Any]) -> None:
        assert report["telemetry_available"] is False
        assert report["mem_before"] is None and report["stats_after"] is None
        assert report["heap_internal_drop"] is None  # heap gates skipped, not failed
        assert report["err"] == 0 and outcome.results()[0]["pass"] is True
        assert f"device memory stats unavailable ({why}" in outcome.err

    return check


def _dripped(outcome: Outcome, report: dict[str, Any]) -> None:
    assert report["err"] == 0 and report["requests_total"] > 0
    # /hello is 23 bytes sent 1 ms apart: timing runs to the last body byte, so >= 22 ms.
    assert report["p50_ms"] >= 22.0


def _reconnects_every_request(outcome: Outcome, report: dict[str, Any]) -> None:
    assert report["err"] == 0 and report["ok"] == report["requests_total"] > 20
    # Every load request came on a new connection (plus the telemetry read itself).
    assert report["stats_after"]["server"]["accepts_total"] > report["requests_total"]


FAULTS = {
    "hangs": Fault(dict(hang_after=0), PROBE_OUTSIDE_FAULTS, 1, _all_timeouts),
    "slow_past_timeout": Fault(
        dict(slowdown=100), [*PROBE_OUTSIDE_FAULTS, "--timeout", "0.2"], 1, _all_timeouts
    ),
    "resets": Fault(dict(reset_rate=0.25, seed=3), PROBE_OUTSIDE_FAULTS, 1, _resets),
    "5xx_share": Fault(dict(error_rate=0.25, seed=5), PROBE_OUTSIDE_FAULTS, 1, _share_of_5xx),
    "malformed_debug_body": Fault(
        dict(debug_body="malformed"), [], 0, _telemetry_unavailable("malformed JSON")
    ),
    "huge_debug_body": Fault(dict(debug_body="huge"), [], 0, _telemetry_unavailable("body too")),
    "drip": Fault(dict(drip=0.001), ["--timeout", "2"], 0, _dripped),
    "drip_past_timeout": Fault(
        dict(drip=0.05), [*PROBE_OUTSIDE_FAULTS, "--timeout", "0.3"], 1, _all_timeouts
    ),
    "closes_every_connection": Fault(
        dict(close_connections=True), [], 0, _reconnects_every_request
    ),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_device_fault(name: str, make_sim, tmp_path: Path, capfd) -> None:
    fault = FAULTS[name]
    sim = make_sim(**fault.options)
    outcome = run_faulty(sim.port, tmp_path, capfd, "--paths", "/hello", *fault.flags)
    assert_clean_exit(outcome, fault.code)
    flags = dict(zip(fault.flags[::2], fault.flags[1::2], strict=True))
    timeout = float(flags.get("--timeout", TIMEOUT_S))
    assert outcome.elapsed < watchdog_budget(timeout=timeout) + STARTUP_ALLOWANCE_S
    payload = outcome.payload
    assert payload["status"] == "finished" and payload["hard_stop_reason"] is None
    [result] = outcome.results()
    report = result["report"]
    assert report["timed_out"] is False and report["stopped"] is False
    # A phase never outlives its duration by more than one request timeout (plus scheduling).
    assert report["elapsed"] <= DURATION_S + timeout + 1.0
    assert result["pass"] is (fault.code == 0)
    assert payload["overall_pass"] is (fault.code == 0)
    fault.check(outcome, report)


def test_refused_from_the_start_sends_no_load_and_exits_3(tmp_path: Path, capfd) -> None:
    outcome = run_faulty(free_port(), tmp_path, capfd, "--paths", "/hello")
    assert_clean_exit(outcome, 3)
    assert outcome.elapsed < STARTUP_ALLOWANCE_S
    payload = outcome.payload
    assert payload["status"] == "not_started" and payload["raw_runs"] == []
    assert payload["hard_stop_reason"].startswith("health probe /hello failed before adhoc run 1")
    assert "Connect" in payload["hard_stop_reason"]  # the transport error is named
    assert outcome.partials.valid == []  # no phase ran, so no partial file was ever written


@pytest.mark.parametrize("comes_back", [False, True], ids=["stays_dead", "comes_back"])
def test_device_boots_late_then_dies_mid_phase(
    comes_back: bool, late_sims, spawn, tmp_path: Path
) -> None:
    """Down at start (the probe retries until it boots), then `crash_after` kills it mid-phase.

    Without it the next run's probe fails: hard stop, exit 3. When a device comes back on the
    same port a second later, the probe's retries bring the run back: run 2 passes, exit 1
    (run 1 failed its gate).
    """
    port = free_port()
    run = spawn(
        perftui_argv(
            "127.0.0.1",
            tmp_path,
            "--port",
            str(port),
            "--paths",
            "/hello",
            "--runs",
            "2",
            "--burst-duration",
            "2",
            "--long-duration",
            "0",
            "--burst-clients",
            "4",
            "--timeout",
            "0.5",
            "--probe-retries",
            "5",
            "--between-runs-sleep-ms",
            "0",
            "--post-phase-settle-ms",
            "0",
            "--metrics-retries",
            "1",
            "--heartbeat-ms",
            "5000",
            "--max-tail-p95-ratio",
            "1000",  # run 2 must pass on its errors, not on scheduling noise in its tail
        )
    )
    started = time.monotonic()
    run.wait_line(lambda line: "probe /hello attempt 1/5 failed" in line)
    booted = threading.Event()
    late_sims(port, 0.0, crash_after=1.5)
    if comes_back:
        late_sims(port, 1.0, after=booted)  # boots a second after the crash (see below)
    line = run.wait_line(lambda line: "done adhoc/burst" in line)
    booted.set()  # the first device has crashed by the time its phase is over
    assert "FAIL" in line
    code, _out, err = run.finish()
    elapsed = time.monotonic() - started
    assert "Traceback" not in err
    assert elapsed < 2 * watchdog_budget(duration=2.0) + 2 * STARTUP_ALLOWANCE_S
    payload = _latest(tmp_path)
    first = payload["raw_runs"][0]["results"][0]
    report = first["report"]
    assert report["ok"] > 0  # the device served until it crashed ...
    kinds = report["errors_by_kind"]
    assert kinds["refused"] + kinds["reset"] > 0  # ... then refused and reset
    assert first["pass"] is False
    assert any(r.startswith("error_rate ") for r in first["fail_reasons"])
    assert not (tmp_path / "latest.partial.json").exists()
    if comes_back:
        assert code == 1, err
        assert payload["status"] == "finished" and payload["hard_stop_reason"] is None
        second = payload["raw_runs"][1]["results"][0]
        assert second["pass"] is True and second["report"]["err"] == 0
        assert "probe /hello attempt 1/5 failed" in err.split("done adhoc/burst")[1]
    else:
        assert code == 3, err
        assert payload["status"] == "hard_stop" and len(payload["raw_runs"]) == 1
        assert payload["hard_stop_reason"].startswith(
            "health probe /hello failed before adhoc run 2 burst after 5 attempts"
        )


def _latest(history: Path) -> dict[str, Any]:
    return json.loads((history / "latest.json").read_text(encoding="utf-8"))


async def _hello(_request: web.Request) -> web.Response:
    return web.Response(text="hello\n")


async def _endless_drip(request: web.Request) -> web.StreamResponse:
    """A JSON body that starts and never ends, one byte every 20 ms (each resets a read timeout)."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):
        await response.write(b'{"heap": {"internal_free": 1')
        while True:
            await asyncio.sleep(0.02)
            await response.write(b"0")
    return response


def test_dripping_endless_telemetry_and_probe_bodies_do_not_hold_the_run(
    loopback_app, spawn, tmp_path: Path
) -> None:
    """No watchdog covers the probe and the telemetry reads, so each needs its own deadline."""
    device = loopback_app(
        {
            "/hello": _hello,
            "/slow-probe": _endless_drip,
            "/debug/server-stats": _endless_drip,
            "/debug/memory-stats": _endless_drip,
        }
    )
    started = time.monotonic()
    run = spawn(
        perftui_argv(
            "127.0.0.1",
            tmp_path,
            "--port",
            str(device.port),
            "--paths",
            "/hello",
            *FAULT_FLAGS,
            "--runs",
            "1",
            "--long-duration",
            "0",
            "--burst-clients",
            "2",
            "--probe-path",
            "/slow-probe",
            "--metrics-retries",
            "0",
            "--post-phase-settle-ms",
            "0",
        )
    )
    code, _out, err = run.finish(timeout=30)
    assert code == 0, err
    assert "Traceback" not in err
    assert "device memory stats unavailable (TimeoutError: no complete answer" in err
    assert time.monotonic() - started < 15
    report = _latest(tmp_path)["raw_runs"][0]["results"][0]["report"]
    assert report["telemetry_available"] is False and report["ok"] == report["requests_total"] > 0


RAW_RESPONSES = {
    # Chunked transfer encoding, as a device streaming its answer sends it.
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"6\r\nhello \r\n6\r\ndevice\r\n0\r\n\r\n",
    # No Content-Length, no chunking: the body ends when the device closes (HTTP/1.0 style,
    # common on tiny embedded servers).
    "http10_close_delimited": b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello device\n",
}


@pytest.mark.parametrize(
    "shape",
    [
        "chunked",
        "http10_close_delimited",
    ],
)
def test_valid_response_shapes_are_ok(shape: str, tmp_path: Path, capfd) -> None:
    """Every valid HTTP/1.x framing is a response, not an error (the legacy runner's clients
    read them all)."""
    raw = RAW_RESPONSES[shape]
    close = b"HTTP/1.0" in raw

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(raw)
                await writer.drain()
                if close:
                    break
        writer.close()

    ready, done = threading.Event(), threading.Event()
    port: list[int] = []

    async def serve() -> None:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        async with server:
            await asyncio.get_running_loop().run_in_executor(None, done.wait, 30)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        outcome = run_faulty(port[0], tmp_path, capfd, "--paths", "/hello")
    finally:
        done.set()
        thread.join(10)
    report = outcome.results()[0]["report"]
    assert report["err"] == 0 and report["ok"] == report["requests_total"] > 0, report[
        "errors_by_kind"
    ]
    assert outcome.code == 0, outcome.err
