"""The simulated device, exercised with real HTTP requests over loopback."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from perftui.config import EXIT_BAD_INPUT, EXIT_COULD_NOT_RUN
from perftui.profiles import builtin_names, resolve_profile
from perftui.sim import device as simmod
from perftui.sim import options as simopts
from perftui.sim.device import SimOptionError, SimOptions, SimProcess, SimServer
from perftui.sim.model import PY_TEMPLATE_S

MakeSim = Callable[..., SimServer]
SERVER_KEYS = {
    "requests_handled",
    "request_errors",
    "accepts_total",
    "accepts_rejected",
    "backpressure_503_sent",
    "workers_active",
    "workers_limit_min",
    "workers_limit_max",
}
HEAP_KEYS = {"psram_available", "internal_free", "internal_largest", "psram_free", "psram_largest"}
ROOT = Path(__file__).resolve().parent.parent


def client(server: SimServer | SimProcess, timeout: float = 5.0) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=timeout, trust_env=False)


def aclient(server: SimServer, timeout: float = 10.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.base_url,
        timeout=timeout,
        trust_env=False,
        limits=httpx.Limits(max_connections=32),
    )


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def server_stats(http: httpx.Client, reset: bool = False) -> dict[str, dict[str, int]]:
    response = http.get("/debug/server-stats", params={"reset": "1"} if reset else None)
    assert response.status_code == 200
    return response.json()


# --- what it serves ---


def test_every_builtin_profile_path_answers_200(sim: SimServer) -> None:
    paths = {p for name in builtin_names() for p in resolve_profile(name).paths}
    assert len(paths) == 8
    with client(sim) as http:
        for path in sorted(paths):
            assert http.get(path).status_code == 200, path


def test_bodies_have_the_right_size_and_shape(sim: SimServer) -> None:
    with client(sim) as http:
        assert len(http.get("/file").content) == 1024
        assert len(http.get("/static/large.txt").content) == 102_400
        typed = http.get("/query-typed?q=abc&page=2&ratio=1.5&active=true").json()
        assert typed == {"q": "abc", "page": 2, "ratio": 1.5, "active": True}
        assert http.get("/query-typed?page=two").status_code == 400
        page = http.get("/template-compat?name=Ana&count=2&role=user&roles=user,viewer&items=a,b,c")
        assert page.headers["content-type"].startswith("text/html")
        assert page.text.count("Hello, Ana!") == 2 and "<li>viewer</li>" in page.text
        assert "<script>" not in http.get("/template?name=<script>").text
        assert http.get("/api/ping").json() == {"ok": True}
        assert http.get("/nope").status_code == 404
        assert http.get("/debug/other").status_code == 404


def test_debug_telemetry_shapes(sim: SimServer) -> None:
    with client(sim) as http:
        stats = server_stats(http)
        assert set(stats["server"]) == SERVER_KEYS
        assert "ring_size" in stats["ipc"]
        for part in stats.values():
            assert all(type(v) is int for v in part.values())
        heap = http.get("/debug/memory-stats").json()["heap"]
        assert set(heap) == HEAP_KEYS
        assert heap["psram_available"] is True
        assert heap["internal_free"] == simmod.INTERNAL_FREE_START
        assert all(type(heap[k]) is int for k in HEAP_KEYS - {"psram_available"})


def test_stats_count_load_only_and_reset_after_answering(sim: SimServer) -> None:
    with client(sim) as http:
        for _ in range(3):
            http.get("/hello")
        http.get("/debug/memory-stats")
        before = server_stats(http, reset=True)["server"]
        assert before["requests_handled"] == 3
        assert before["accepts_total"] == 1  # one keep-alive connection
        assert before["workers_limit_min"] == before["workers_limit_max"] == 4
        assert server_stats(http)["server"]["requests_handled"] == 0
    with client(sim) as other:
        assert server_stats(other)["server"]["accepts_total"] == 1
    assert sim.stats.requests_handled == 0


# --- faults ---


def test_leak_lowers_internal_free_down_to_zero(make_sim: MakeSim) -> None:
    with client(make_sim(leak_bytes=1000)) as http:
        for _ in range(5):
            http.get("/file")
        heap = http.get("/debug/memory-stats").json()["heap"]
        assert heap["internal_free"] == simmod.INTERNAL_FREE_START - 5000
        assert heap["psram_free"] == simmod.PSRAM_FREE
    with client(make_sim(leak_bytes=100_000)) as http:
        for _ in range(3):
            http.get("/file")
        heap = http.get("/debug/memory-stats").json()["heap"]
        assert heap["internal_free"] == heap["internal_largest"] == 0


def test_error_rate_gives_that_share_of_500s(make_sim: MakeSim) -> None:
    with client(make_sim(error_rate=0.3, seed=7)) as http:
        statuses = [http.get("/file").status_code for _ in range(200)]
        share = statuses.count(500) / len(statuses)
        assert 0.18 <= share <= 0.42
        assert set(statuses) == {200, 500}
        assert server_stats(http)["server"]["request_errors"] == statuses.count(500)


def test_seed_makes_faults_repeatable(make_sim: MakeSim) -> None:
    runs = []
    for _ in range(2):
        with client(make_sim(error_rate=0.5, seed=42)) as http:
            runs.append([http.get("/file").status_code for _ in range(30)])
    assert runs[0] == runs[1]


def test_hang_after_accepts_but_never_answers(make_sim: MakeSim) -> None:
    with client(make_sim(hang_after=0.0), timeout=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.get("/hello")
        assert http.get("/debug/memory-stats").status_code == 200


def test_crash_after_refuses_and_drops_connections(make_sim: MakeSim) -> None:
    server = make_sim(crash_after=0.4)
    with client(server) as http:
        assert http.get("/hello").status_code == 200
        time.sleep(0.7)
        with pytest.raises(httpx.TransportError):
            http.get("/hello")  # the kept-alive connection is gone too
    assert refused(server.port)
    assert server.finish_reason == "crash" and not server.running


def test_max_lifetime_stops_the_server_by_itself(make_sim: MakeSim) -> None:
    server = make_sim(max_lifetime_s=0.3)
    time.sleep(0.6)
    assert refused(server.port)
    assert server.finish_reason == "lifetime"


def test_no_debug_gives_404(make_sim: MakeSim) -> None:
    with client(make_sim(no_debug=True)) as http:
        assert http.get("/debug/server-stats").status_code == 404
        assert http.get("/debug/memory-stats").status_code == 404
        assert http.get("/hello").status_code == 200


def test_close_connections_header(make_sim: MakeSim) -> None:
    server = make_sim(close_connections=True)
    with client(server) as http:
        for path in ("/hello", "/debug/memory-stats"):
            assert http.get(path).headers["connection"] == "close"
        assert server_stats(http)["server"]["accepts_total"] == 3


def test_reset_rate_aborts_without_answer(make_sim: MakeSim) -> None:
    server = make_sim(reset_rate=1.0)
    with client(server) as http, pytest.raises(httpx.TransportError):
        http.get("/hello")
    assert server.stats.request_errors == 1 and server.stats.requests_handled == 0


def test_drip_sends_the_body_slowly(make_sim: MakeSim) -> None:
    with client(make_sim(drip=0.01)) as http:
        started = time.perf_counter()
        response = http.get("/api/ping")
        elapsed = time.perf_counter() - started
    assert response.json() == {"ok": True}
    assert elapsed >= (len(response.content) - 1) * 0.01


def test_slowdown_multiplies_service_time(make_sim: MakeSim) -> None:
    with client(make_sim(slowdown=3.0)) as http:
        started = time.perf_counter()
        http.get("/template")
        assert time.perf_counter() - started >= PY_TEMPLATE_S * 3 * 0.9


@pytest.mark.parametrize(("mode", "check"), [("malformed", "invalid"), ("huge", "big")])
def test_debug_body_faults(make_sim: MakeSim, mode: str, check: str) -> None:
    with client(make_sim(debug_body=mode)) as http:
        body = http.get("/debug/server-stats").content
    if check == "invalid":
        with pytest.raises(json.JSONDecodeError):
            json.loads(body)
    else:
        assert len(body) >= simmod.HUGE_DEBUG_BODY


# --- worker pool and backpressure ---


async def _template_burst(server: SimServer, count: int) -> tuple[float, list[int]]:
    async with aclient(server) as http:
        started = time.perf_counter()
        responses = await asyncio.gather(*(http.get("/template") for _ in range(count)))
        return time.perf_counter() - started, [r.status_code for r in responses]


async def test_worker_pool_limits_concurrency(make_sim: MakeSim) -> None:
    service = PY_TEMPLATE_S * 5
    pooled, statuses = await _template_burst(make_sim(workers=2, slowdown=5.0), 8)
    assert statuses == [200] * 8
    assert pooled >= 4 * service * 0.9
    wide, _ = await _template_burst(make_sim(workers=8, slowdown=5.0), 8)
    assert wide < pooled / 2


async def test_queue_limit_answers_503(make_sim: MakeSim) -> None:
    server = make_sim(workers=1, queue_limit=1, slowdown=5.0)
    _, statuses = await _template_burst(server, 4)
    assert sorted(statuses) == [200, 200, 503, 503]
    assert server.stats.backpressure_503_sent == 2
    assert server.server_stats()["ipc"]["ring_size"] == 1


async def test_async_start_stop_in_the_callers_loop() -> None:
    async with SimServer(SimOptions(max_lifetime_s=30)) as server, aclient(server) as http:
        assert (await http.get("/hello")).status_code == 200
    assert refused(server.port) and server.finish_reason == "stopped"


# --- options and CLI ---


@pytest.mark.parametrize(
    "bad",
    [
        {"workers": 0},
        {"queue_limit": -1},
        {"slowdown": 0},
        {"leak_bytes": -5},
        {"error_rate": 1.5},
        {"reset_rate": float("nan")},
        {"hang_after": -1},
        {"drip": 2},
        {"debug_body": "weird"},
        {"max_lifetime_s": 0},
    ],
)
def test_bad_options_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(SimOptionError) as info:
        SimOptions(**bad)
    assert info.value.name == next(iter(bad))


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    simopts.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    "argv", [("--error-rate", "1.5"), ("--workers", "0"), ("--port", "70000"), ("--drip", "-1")]
)
def test_cli_bad_input_returns_2(argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert simmod.main(parse(*argv)) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("perftui sim: error: --") and err.count("\n") == 1


def test_cli_port_in_use_returns_3(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert simmod.main(parse("--port", str(busy.getsockname()[1]))) == EXIT_COULD_NOT_RUN
    assert "cannot listen" in capsys.readouterr().err


def test_cli_flags_map_onto_options() -> None:
    options = simopts.options_from_args(parse("--slowdown", "1.3", "--drip", "--no-debug"))
    assert options == SimOptions(slowdown=1.3, drip=0.001, no_debug=True)


CLI = (
    "import argparse, sys; from perftui.sim import device as sim, options; "
    "p = argparse.ArgumentParser(); options.add_arguments(p); sys.exit(sim.main(p.parse_args()))"
)


def test_cli_serves_until_sigterm_and_exits_0() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", CLI, "--port", "0", "--max-lifetime-s", "30"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            line = proc.stdout.readline()
            assert line.startswith("perftui sim: serving http://127.0.0.1:")
            base_url = line.split()[3]
            assert httpx.get(base_url + "/hello", trust_env=False).status_code == 200
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
            assert proc.stderr.read() == ""
        finally:
            proc.kill()


# --- in a child process ---


def test_sim_process_starts_serves_and_stops() -> None:
    with SimProcess(SimOptions(max_lifetime_s=30)) as device:
        assert device.port > 0 and device.is_alive()
        with client(device) as http:
            assert http.get("/file").status_code == 200
            assert server_stats(http)["server"]["requests_handled"] == 1
    assert not device.is_alive()
    assert refused(device.port)


def test_sim_server_reports_a_busy_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(OSError), SimServer(port=busy.getsockname()[1]):
            pass


def test_sim_process_reports_a_busy_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        device = SimProcess(port=busy.getsockname()[1])
        with pytest.raises(OSError):
            device.start()
    assert not device.is_alive()


def test_sim_process_does_not_outlive_its_parent(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            """
            import time
            from perftui.sim.device import SimOptions, SimProcess

            if __name__ == "__main__":
                device = SimProcess(SimOptions(max_lifetime_s=30))
                device.start()
                print(device.port, flush=True)
                time.sleep(60)
            """
        )
    )
    with subprocess.Popen(
        [sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    ) as parent:
        try:
            assert parent.stdout is not None
            port = int(parent.stdout.readline())
            assert not refused(port)
            os.kill(parent.pid, signal.SIGKILL)
            parent.wait()
            deadline = time.monotonic() + 5
            while not refused(port):
                assert time.monotonic() < deadline, "the child outlived its parent"
                time.sleep(0.1)
        finally:
            parent.kill()
