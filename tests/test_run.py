"""`perftui run` end to end: real engine process, real simulated device, real files."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from perftui.cli.main import main
from perftui.config import RunConfig
from perftui.engine.events import (
    Heartbeat,
    PhaseFinished,
    PhaseStarted,
    RunFinished,
    RunStarted,
    Telemetry,
)
from perftui.engine.hdr import decode
from perftui.engine.runner import EngineProcess
from perftui.history.store import HistoryStore
from perftui.profiles import adhoc_profile, resolve_profiles
from tests.engine_helpers import first_report, latest, phase_config, run_cli

LEGACY_KEYS = {
    "timestamp_utc",
    "target",
    "profiles",
    "runs_per_profile",
    "overall_pass",
    "raw_runs",
    "aggregated",
    "comparison_to_previous",
    "hard_stop_reason",
    "thresholds",
}
REPORT_KEYS = {
    "clients",
    "duration",
    "elapsed",
    "requests_total",
    "ok",
    "err",
    "error_rate",
    "rps_total",
    "rps_ok",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "p95_tail_ms",
    "mean_ms",
    "status_counts",
    "path_metrics",
    "stats_after",
    "mem_before",
    "mem_after",
}
PATH_KEYS = {
    "requests_total",
    "ok",
    "err",
    "error_rate",
    "rps_ok",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "mean_ms",
    "status_counts",
}


def test_full_run_writes_every_legacy_file_and_key(device, tmp_path: Path, capsys) -> None:
    code = run_cli(
        device.port,
        tmp_path,
        "--profiles",
        "python_light,c_static_only",
        "--runs",
        "2",
        "--long-duration",
        "1",
        "--long-clients",
        "2",
        "--tag",
        "base line!",
        "--build",
        "fw-1.4",
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "tag cleaned to 'baseline'" in out.err
    assert "heartbeat" not in out.err  # heartbeat lines are the progress lines themselves
    assert "python_light/burst" in out.err
    payload = latest(tmp_path)
    assert set(payload) >= LEGACY_KEYS
    assert payload["overall_pass"] is True and payload["status"] == "finished"
    assert payload["target"] == f"127.0.0.1:{device.port}"
    assert payload["build"] == "fw-1.4"  # and in the index, where a noise sample is picked
    assert HistoryStore(tmp_path).list_runs()[0]["build"] == "fw-1.4"
    assert [(r["profile"], r["run_index"]) for r in payload["raw_runs"]] == [
        ("python_light", 1),
        ("python_light", 2),
        ("c_static_only", 1),
        ("c_static_only", 2),
    ]
    for run in payload["raw_runs"]:
        assert [r["phase"] for r in run["results"]] == ["burst", "long"]
        for result in run["results"]:
            report = result["report"]
            assert set(report) >= REPORT_KEYS
            assert report["requests_total"] > 20 and report["err"] == 0
            assert 0 < report["p50_ms"] <= report["p95_ms"] <= report["p99_ms"] <= report["max_ms"]
            assert report["p95_tail_ms"] is not None and report["tail_samples"] > 0
            for metrics in report["path_metrics"].values():
                assert set(metrics) >= PATH_KEYS
            hist = decode(report["histogram"])
            assert hist.get_total_count() == report["requests_total"]
            assert report["mem_before"]["heap"]["internal_free"] > 0
            assert report["stats_after"]["server"]["requests_handled"] >= report["ok"]
    agg = payload["aggregated"]["python_light:burst"]
    assert agg["sample_count"] == 2 and agg["pass_rate"] == 1.0
    for metric in ("error_rate", "p95_ms", "p99_ms", "p95_tail_ms", "rps_ok", "p50_ms"):
        assert set(agg[metric]) >= {"median", "best", "worst", "mean", "stdev"}
    assert agg["rps_ok"]["best"] >= agg["rps_ok"]["worst"]
    assert agg["p95_ms"]["best"] <= agg["p95_ms"]["worst"]
    assert set(agg["path_metrics"]) == set(resolve_profiles("python_light")[0].paths)
    assert payload["metadata"]["tool_version"]
    assert payload["profile_definitions"]["python_light"]["requests"][0]["path"] == "/hello"
    stamped = sorted(tmp_path.glob("perf_*_baseline.json"))
    assert len(stamped) == 1 and stamped[0].with_suffix(".md").is_file()
    assert json.loads(stamped[0].read_text()) == payload
    assert not (tmp_path / "latest.partial.json").exists()
    assert not list(tmp_path.glob("*.tmp"))


def test_second_run_compares_to_previous_latest(device, tmp_path: Path) -> None:
    assert run_cli(device.port, tmp_path, "--paths", "/hello") == 0
    assert latest(tmp_path)["comparison_to_previous"] == {}
    assert run_cli(device.port, tmp_path, "--paths", "/hello") == 0
    delta = latest(tmp_path)["comparison_to_previous"]["adhoc:burst"]
    assert set(delta) == {
        "p95_ms_median_delta",
        "p99_ms_median_delta",
        "error_rate_median_delta",
        "rps_ok_median_delta",
    }
    assert len(list(tmp_path.glob("perf_*.json"))) == 2  # never overwritten, same second or not
    # Deleting a run takes its legacy files with it, and latest.json falls back to the run left.
    first, second = (r["run_id"] for r in reversed(HistoryStore(tmp_path).list_runs()))
    assert main(["history", "--history-dir", str(tmp_path), "delete", second, "--yes"]) == 0
    assert [json.loads(p.read_text())["run_id"] for p in tmp_path.glob("perf_*.json")] == [first]
    assert len(list(tmp_path.glob("perf_*.md"))) == 1 and latest(tmp_path)["run_id"] == first
    assert main(["history", "--history-dir", str(tmp_path), "delete", first, "--yes"]) == 0
    assert not list(tmp_path.glob("perf_*")) and not (tmp_path / "latest.json").exists()


def test_gate_failure_exits_1_with_reasons(device, tmp_path: Path) -> None:
    assert run_cli(device.port, tmp_path, "--paths", "/template", "--max-p95-ms", "0.01") == 1
    result = latest(tmp_path)["raw_runs"][0]["results"][0]
    assert result["pass"] is False
    assert any(r.startswith("p95 ") for r in result["fail_reasons"])


def test_heap_leak_fails_the_heap_gate(make_sim, tmp_path: Path) -> None:
    leaky = make_sim(leak_bytes=200)
    code = run_cli(leaky.port, tmp_path, "--paths", "/file", "--max-internal-free-drop", "2000")
    assert code == 1
    result = latest(tmp_path)["raw_runs"][0]["results"][0]
    assert result["report"]["heap_internal_drop"] > 2000
    assert any(r.startswith("internal_free drop ") for r in result["fail_reasons"])


def test_device_without_debug_endpoints_is_normal(make_sim, tmp_path: Path) -> None:
    plain = make_sim(no_debug=True)
    assert run_cli(plain.port, tmp_path, "--paths", "/hello") == 0
    report = first_report(latest(tmp_path))
    assert report["telemetry_available"] is False
    assert report["mem_before"] is None and report["heap_internal_drop"] is None


def test_errors_are_split_by_kind(make_sim, tmp_path: Path) -> None:
    flaky = make_sim(error_rate=0.3, seed=7)
    code = run_cli(flaky.port, tmp_path, "--paths", "/hello,/nope", "--probe-retries", "10")
    assert code == 1
    report = first_report(latest(tmp_path))
    kinds = report["errors_by_kind"]
    assert kinds["http_5xx"] > 0 and kinds["http_4xx"] > 0
    assert report["path_metrics"]["/nope"]["error_rate"] == 100.0
    assert report["err"] == kinds["http_5xx"] + kinds["http_4xx"]


def test_unreachable_device_at_start_exits_3(tmp_path: Path, capsys) -> None:
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    assert run_cli(port, tmp_path, "--paths", "/hello") == 3
    assert time.monotonic() - started < 15
    out = capsys.readouterr()
    assert "health probe /hello failed" in out.out + out.err
    assert latest(tmp_path)["hard_stop_reason"].startswith("health probe")
    assert latest(tmp_path)["status"] == "not_started"  # kept out of previous, baselines, noise


def test_hard_timeout_stops_the_suite(device, tmp_path: Path) -> None:
    code = run_cli(
        device.port, tmp_path, "--paths", "/hello", "--runs", "3", "--hard-timeout-s", "0.5"
    )
    assert code == 3
    payload = latest(tmp_path)
    assert payload["status"] == "hard_stop"
    assert "hard timeout" in payload["hard_stop_reason"]
    assert len(payload["raw_runs"]) == 1


def test_lock_held_by_a_live_run_exits_3_naming_it(device, tmp_path: Path, capsys) -> None:
    from perftui.engine.lock import RunLock

    holder = RunLock(tmp_path / ".perf_regression.lock")
    holder.acquire()
    try:
        assert run_cli(device.port, tmp_path, "--paths", "/hello") == 3
    finally:
        holder.release()
    err = capsys.readouterr().err
    assert f"pid {os.getpid()}" in err and "started 20" in err
    assert not (tmp_path / "latest.json").exists()


def test_stale_lock_of_a_killed_run_is_taken_over(device, tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from perftui.engine.lock import RunLock;"
        f"RunLock(Path({str(tmp_path / '.perf_regression.lock')!r})).acquire();"
        "print('locked', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert run_cli(device.port, tmp_path, "--paths", "/hello") == 0


def _config(port: int, history: Path, **kw) -> RunConfig:
    return phase_config(port, history, **kw)


def test_event_stream_has_heartbeats_at_least_twice_a_second(device, tmp_path: Path) -> None:
    engine = EngineProcess(_config(device.port, tmp_path, write_history_db=False))
    engine.start()
    events = list(engine.events())
    kinds = [type(e) for e in events]
    assert kinds[0] is RunStarted and kinds[-1] is RunFinished
    assert kinds.index(PhaseStarted) < kinds.index(Heartbeat) < kinds.index(PhaseFinished)
    beats = [e for e in events if isinstance(e, Heartbeat)]
    assert len(beats) >= 4  # 2 s phase, >= 2 per second
    gaps = [b.elapsed - a.elapsed for a, b in itertools.pairwise(beats)]
    assert max(gaps) <= 0.5
    assert beats[-1].requests > beats[0].requests > 0
    assert set(beats[-1].paths) == {"/hello", "/api/ping"}
    assert any(b.window_p95_ms for b in beats)
    assert engine.finished is not None and engine.finished.exit_code == 0
    assert [e.moment for e in events if isinstance(e, Telemetry)] == ["before", "after"]
    assert beats[-1].paths["/hello"].p50_ms is None  # per-path percentiles cost: off by default


def test_live_extras_come_only_when_asked(device, tmp_path: Path) -> None:
    """Heap polling during the phase and per-path percentiles in heartbeats (the TUI's)."""
    config = _config(
        device.port,
        tmp_path,
        write_history_db=False,
        telemetry_interval_s=0.5,
        path_percentiles_s=0.5,
    )
    engine = EngineProcess(config)
    engine.start()
    events = list(engine.events())
    moments = [e.moment for e in events if isinstance(e, Telemetry)]
    assert moments[0] == "before" and moments[-1] == "after"
    assert moments.count("during") >= 2  # a 2 s phase polled every 0.5 s
    last = [e for e in events if isinstance(e, Heartbeat)][-1].paths["/hello"]
    assert last.p50_ms is not None and 0 < last.p50_ms <= last.p95_ms <= last.p99_ms


def test_watchdog_ends_a_phase_that_outlives_its_budget(make_sim) -> None:
    import asyncio

    from perftui.engine.load import run_phase

    hung = make_sim(hang_after=0)

    async def go():
        return await run_phase(
            hung.base_url,
            adhoc_profile("/hello"),
            clients=2,
            duration=1.0,
            timeout=30.0,
            budget_s=2.0,
            stop=asyncio.Event(),
            on_snapshot=lambda *_: None,
        )

    started = time.monotonic()
    outcome = asyncio.run(go())
    assert outcome.timed_out and not outcome.stopped
    assert time.monotonic() - started < 4
    report = outcome.recorder.report(2, 1.0, outcome.elapsed)
    assert report["ok"] == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_gracefully_and_keeps_the_partial_run(device, tmp_path: Path, sig) -> None:
    cmd = [
        sys.executable,
        "-m",
        "perftui",
        "run",
        "127.0.0.1",
        "--port",
        str(device.port),
        "--history-dir",
        str(tmp_path),
        "--paths",
        "/hello",
        "--runs",
        "5",
        "--burst-duration",
        "1",
        "--long-duration",
        "0",
        "--between-runs-sleep-ms",
        "0",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not (tmp_path / "latest.partial.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    partial = json.loads((tmp_path / "latest.partial.json").read_text())
    assert partial["status"] == "stopped"
    assert 1 <= len(partial["raw_runs"]) < 5
    assert not (tmp_path / "latest.json").exists()


def test_compare_to_fails_the_build_on_a_regression(device, make_sim, tmp_path: Path, capsys):
    paths = ("--paths", "/hello,/template", "--runs", "2")  # two runs a side show their noise
    assert run_cli(device.port, tmp_path, *paths, "--tag", "base") == 0
    slow = make_sim(slowdown=3.0)  # another port: another target, so the runs are not alike
    gate = ("--compare-to", "base", "--fail-on-regression")
    assert run_cli(slow.port, tmp_path, *paths, *gate) == 2
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if "set up differently" in ln]
    assert "device: A 127.0.0.1:" in line
    report = tmp_path / "out" / "regression.md"
    code = run_cli(slow.port, tmp_path, *paths, *gate, "--allow-mismatch", "--report", str(report))
    assert code == 1
    text = report.read_text()
    assert "REGRESSION" in text and "adhoc:burst" in text
    capsys.readouterr()
    assert run_cli(device.port, tmp_path, "--paths", "/hello", "--compare-to", "base") == 0
    assert "adhoc:burst" in capsys.readouterr().out


def test_compare_flags_are_checked_before_the_load(tmp_path: Path, capsys) -> None:
    assert run_cli(1, tmp_path, "--fail-on-regression") == 2
    assert "need --compare-to" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[thresholds\n")
    assert run_cli(1, tmp_path, "--compare-to", "previous", "--config", str(bad)) == 2
    assert capsys.readouterr().err.startswith("perftui: error:")
    assert not (tmp_path / "latest.json").exists()
