"""Targets: a name that does not resolve, a URL with a path or a foreign scheme, an IPv6 literal,
TLS against a plain-HTTP device. Clear error or correct handling, never a traceback.

(A port with nothing listening is `test_refused_from_the_start_sends_no_load_and_exits_3`.)
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from perftui.cli.main import main
from perftui.sim.device import SimOptions, SimServer
from tests.engine_helpers import FAST
from tests.faults.conftest import SIM_LIFETIME_S, ipv6_loopback_available


def _run(target: str, history: Path, *flags: str) -> int:
    return main(["run", target, "--history-dir", str(history), *FAST, *flags])


@pytest.mark.parametrize(
    ("target", "code", "message"),
    [
        ("no-such-host.invalid", 3, "could not run: cannot resolve host 'no-such-host.invalid'"),
        ("http://127.0.0.1:{port}/hello", 2, "error: 'http://127.0.0.1:{port}/hello': give the"),
        ("ftp://127.0.0.1:{port}", 2, "only http:// and https:// URLs can be tested"),
        ("127.0.0.1/hello", 2, "error: '127.0.0.1/hello' is not a host name or IP address"),
    ],
    ids=["unresolvable", "url_with_path", "ftp_scheme", "host_with_path"],
)
def test_bad_target_is_one_line_and_sends_nothing(
    target: str, code: int, message: str, sim, tmp_path: Path, capfd
) -> None:
    history = tmp_path / "h"
    started = time.monotonic()
    assert _run(target.format(port=sim.port), history) == code
    err = capfd.readouterr().err
    assert err.startswith("perftui: ") and err.count("\n") == 1, err
    assert message.format(port=sim.port) in err
    assert time.monotonic() - started < 5
    assert not history.exists()  # nothing written, not even the history dir
    assert sim.stats.accepts_total == 0  # and the device listening there never saw a request


def test_url_with_scheme_is_the_device(sim, tmp_path: Path) -> None:
    assert _run(f"http://127.0.0.1:{sim.port}/", tmp_path, "--paths", "/hello") == 0
    payload = json.loads((tmp_path / "latest.json").read_text())
    assert payload["target"] == f"127.0.0.1:{sim.port}"
    assert payload["raw_runs"][0]["results"][0]["report"]["ok"] > 0


def test_tls_against_a_plain_http_device_is_a_clear_hard_stop(sim, tmp_path: Path, capfd) -> None:
    assert _run(f"https://127.0.0.1:{sim.port}", tmp_path, "--paths", "/hello") == 3
    err = capfd.readouterr().err
    assert "Traceback" not in err
    reason = json.loads((tmp_path / "latest.json").read_text())["hard_stop_reason"]
    assert reason.startswith("health probe /hello failed before adhoc run 1 burst after 2 attempts")
    assert "SSL" in reason  # the TLS failure is named
    assert f"device 127.0.0.1:{sim.port} unreachable" in err


@pytest.fixture
def sim_v6() -> Iterator[SimServer]:
    if not ipv6_loopback_available():
        pytest.skip("this machine has no IPv6 loopback (::1 cannot be bound)")
    with contextlib.ExitStack() as stack:
        options = SimOptions(max_lifetime_s=SIM_LIFETIME_S)
        yield stack.enter_context(SimServer(options, host="::1", port=0))


def test_ipv6_literal_is_tested_over_ipv6(sim_v6: SimServer, tmp_path: Path) -> None:
    assert _run(f"[::1]:{sim_v6.port}", tmp_path, "--paths", "/hello") == 0
    payload = json.loads((tmp_path / "latest.json").read_text())
    report = payload["raw_runs"][0]["results"][0]["report"]
    assert report["ok"] == report["requests_total"] > 0
    assert report["mem_before"] is not None  # telemetry (httpx) went over IPv6 too
    assert sim_v6.stats.requests_handled >= report["ok"]
    assert payload["target"] in (f"::1:{sim_v6.port}", f"[::1]:{sim_v6.port}")
