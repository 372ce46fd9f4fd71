"""`--metrics-port`: Prometheus text served by the process reading the events, while the run
lasts; its request counter is the run's."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from perftui.cli.main import main
from tests.engine_helpers import FAST, NO_LATENCY_GATES, latest

SCRAPE_S = 0.2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _scrape(port: int) -> dict[str, list]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        text = resp.read().decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_scrape_during_a_run_parses_and_counts_the_run(device, tmp_path: Path) -> None:
    port = _free_port()
    scrapes: list[tuple[float, dict[str, list]]] = []
    done = threading.Event()

    def scraper() -> None:
        while not done.is_set():
            with contextlib.suppress(OSError):  # not listening yet, or closed already
                scrapes.append((time.monotonic(), _scrape(port)))
            done.wait(SCRAPE_S)

    thread = threading.Thread(target=scraper, daemon=True)
    thread.start()
    argv = ["run", "127.0.0.1", "--port", str(device.port), "--history-dir", str(tmp_path)]
    try:
        code = main(
            [
                *argv,
                *FAST,
                *NO_LATENCY_GATES,
                "--paths",
                "/hello,/api/ping",
                "--metrics-port",
                str(port),
            ]
        )
    finally:
        done.set()
        thread.join(5)
    assert code == 0
    assert len(scrapes) >= 3, "scraped during the run"
    report = latest(tmp_path)["raw_runs"][0]["results"][0]["report"]
    final = report["requests_total"]

    def requests(samples: dict[str, list]) -> float:
        found = samples.get("perftui_requests", [])
        return sum(s.value for s in found if s.name.endswith("_total"))

    counts = [requests(s) for _, s in scrapes]
    assert counts == sorted(counts)  # a counter never goes back
    last = counts[-1]
    per_scrape = max(b - a for a, b in itertools.pairwise(counts))
    assert last <= final and final - last <= 1.5 * per_scrape, (final, counts)
    by_path = {
        s.labels["path"] for s in scrapes[-1][1]["perftui_requests"] if s.name.endswith("_total")
    }
    assert by_path == {"/hello", "/api/ping"}
    histogram = scrapes[-1][1]["perftui_latency_seconds"]
    inf = next(s.value for s in histogram if s.labels.get("le") == "+Inf")
    assert 0 < inf <= final
    served = {sample.name for samples in scrapes[-1][1].values() for sample in samples}
    assert set(_dashboard_series()) <= served, "the Grafana dashboard queries what is served"


def _dashboard_series() -> list[str]:
    """Every series docs/grafana-perftui-soak.json queries (each filtered on `target`)."""
    doc = json.loads((Path(__file__).parents[1] / "docs/grafana-perftui-soak.json").read_text())
    exprs = [t["expr"] for panel in doc["panels"] for t in panel.get("targets", [])]
    assert all('target=~"$target"' in e for e in exprs)
    return sorted({name for e in exprs for name in re.findall(r"perftui_\w+", e)})


@pytest.mark.parametrize("detach", [[], ["--detach"]], ids=["attached", "detached host"])
def test_a_busy_metrics_port_stops_the_run_before_any_load(
    tmp_path: Path, capsys, detach: list[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        argv = ["run", "127.0.0.1", *detach, "--metrics-port", str(busy.getsockname()[1])]
        assert main([*argv, "--history-dir", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--metrics-port" in err
    # Nothing stored: no run took place. (The detached host's lock side file may outlive the
    # launcher's return by a moment: the host releases its lock as it exits.)
    assert not [p for p in tmp_path.rglob("*.json") if not p.name.endswith(".holder.json")]


def test_a_detached_run_serves_its_metrics_from_the_host(device, tmp_path: Path, capsys) -> None:
    """`run --detach`: the host process reads the events, so it serves the port."""
    port = _free_port()
    argv = ["run", "127.0.0.1", "--port", str(device.port), "--history-dir", str(tmp_path)]
    argv += [*FAST, *NO_LATENCY_GATES, "--long-duration", "0", "--paths", "/hello"]
    assert main([*argv, "--detach", "--metrics-port", str(port)]) == 0
    seen = 0.0
    deadline = time.monotonic() + 30
    while not (tmp_path / "latest.json").exists() and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            found = _scrape(port).get("perftui_requests", [])
            seen = max(seen, sum(s.value for s in found if s.name.endswith("_total")))
        time.sleep(SCRAPE_S)
    assert seen > 0, "the host served the run's requests"
    assert seen <= latest(tmp_path)["raw_runs"][0]["results"][0]["report"]["requests_total"]
