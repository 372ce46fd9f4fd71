"""Detached runs: they outlive their viewers, keep the lock, stop on request, and are found when
they die. Real processes, real signals, a real simulated device in its own process; phases 1–3 s.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from perftui.engine import lifecycle, stream
from perftui.engine.lock import RunLock
from perftui.history.store import HistoryStore
from tests.engine_helpers import FAST
from tests.faults.conftest import alive, wait_gone

PERFTUI = [sys.executable, "-m", "perftui"]
END_S = 30.0


def cli(history: Path, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PERFTUI, *args, "--history-dir", str(history)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def detach(port: int, history: Path, *flags: str) -> str:
    """`perftui run --detach`: returns at once with the run id on stdout."""
    started = time.monotonic()
    argv = ["run", "127.0.0.1", "--port", str(port), "--profiles", "api", *FAST, *flags]
    done = cli(history, *argv, "--detach")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 10
    run_id = done.stdout.strip()
    assert lifecycle.read_status(history, run_id) is not None
    return run_id


def events(history: Path, run_id: str) -> list[dict[str, Any]]:
    path = stream.events_path(history, run_id)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def wait_event(history: Path, run_id: str, test: Any, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = next((e for e in events(history, run_id) if test(e)), None)
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no such event; got {[e['type'] for e in events(history, run_id)]}")


def wait_ended(history: Path, run_id: str, pid: int, timeout: float = END_S) -> dict[str, Any]:
    """The run's final event, once its process has gone and its status file with it."""
    final = wait_event(history, run_id, lambda e: e["type"] == "RunFinished", timeout)
    assert wait_gone([pid], 10) == [], "the run's process outlived its run"
    assert lifecycle.read_status(history, run_id) is None
    return final


def stored(history: Path) -> list[dict[str, Any]]:
    return HistoryStore(history).list_runs()


def hup_default() -> None:
    """A viewer as started from a login shell: SIGHUP ends it (under `nohup`, pytest's children
    would inherit SIG_IGN)."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


class PtyViewer:
    """`perftui attach` (the TUI) in a pseudo-terminal of its own session, output drained."""

    def __init__(self, history: Path, run_id: str) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.proc = subprocess.Popen(
            [*PERFTUI, "attach", run_id, "--history-dir", str(history)],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=hup_default,
            env={**os.environ, "TERM": "xterm-256color"},
        )
        os.close(slave)
        self.master = master
        self.output = bytearray()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk

    def wait_for(self, text: bytes, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output and time.monotonic() < deadline:
            time.sleep(0.05)
        assert text in self.output, bytes(self.output[-2000:])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        os.close(self.master)


@pytest.mark.parametrize("viewer", ["print", "tui"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGHUP])
def test_a_viewer_killed_or_hung_up_never_touches_the_run(
    device, tmp_path: Path, viewer: str, sig: signal.Signals
) -> None:
    run_id = detach(device.port, tmp_path, "--burst-duration", "3")
    pid = lifecycle.read_status(tmp_path, run_id)["pid"]
    if viewer == "print":
        proc = subprocess.Popen(
            [
                *PERFTUI,
                "attach",
                "--print",
                "--heartbeat-ms",
                "500",
                run_id,
                "--history-dir",
                str(tmp_path),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=hup_default,
        )
        assert proc.stdout is not None
        assert "req=" in proc.stdout.readline()  # the first heartbeat line: watching
        os.killpg(proc.pid, sig)  # the viewer and anything in its group
        proc.wait(10)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()
    else:
        tui = PtyViewer(tmp_path, run_id)
        try:
            tui.wait_for(b"req ")
            os.killpg(tui.proc.pid, sig)
            tui.proc.wait(10)
        finally:
            tui.close()
    final = wait_ended(tmp_path, run_id, pid)
    assert final["status"] == "finished" and final["exit_code"] == 0
    [run] = stored(tmp_path)
    assert run["run_id"] == run_id and run["status"] == "finished"
    assert json.loads((tmp_path / "latest.json").read_text())["run_id"] == run_id


def test_attach_after_the_end_prints_the_summary_and_two_viewers_watch_at_once(
    device, tmp_path: Path
) -> None:
    run_id = detach(device.port, tmp_path, "--burst-duration", "2")
    viewers = [
        subprocess.Popen(
            [*PERFTUI, "attach", "--print", "--heartbeat-ms", "500", run_id],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PERFTUI_HISTORY_DIR": str(tmp_path)},
        )
        for _ in range(2)
    ]
    outputs = [v.communicate(timeout=END_S) for v in viewers]
    for viewer, (out, err) in zip(viewers, outputs, strict=True):
        assert viewer.returncode == 0, err
        assert f"run {run_id} finished" in out and "overall: PASS" in out
        assert "[1/1] api run 1/1 burst" in err and out.count("req=") >= 2
    late = cli(tmp_path, "attach", "--print", "latest")  # after the end: the whole run, at once
    assert late.returncode == 0, late.stderr
    assert f"run {run_id} finished" in late.stdout and "api/burst" in late.stderr


def test_stop_in_the_first_second_keeps_the_run_as_stopped(device, tmp_path: Path) -> None:
    run_id = detach(device.port, tmp_path, "--burst-duration", "3")
    pid = lifecycle.read_status(tmp_path, run_id)["pid"]
    done = cli(tmp_path, "stop", "latest")
    assert done.returncode == 0, done.stderr
    assert f"run {run_id} stopped" in done.stdout
    final = wait_ended(tmp_path, run_id, pid, timeout=5)
    assert final["status"] == "stopped" and final["exit_code"] == 130
    [run] = stored(tmp_path)
    # Stopped before its first phase gave a result, a run is stored as never started.
    assert run["status"] == ("stopped" if final["payload"]["raw_runs"] else "not_started")
    with RunLock(tmp_path / ".perf_regression.lock"):  # released
        pass


def test_stop_in_the_settle_pause_ends_it_early_and_keeps_the_phase(device, tmp_path: Path) -> None:
    run_id = detach(device.port, tmp_path, "--post-phase-settle-ms", "4000")
    pid = lifecycle.read_status(tmp_path, run_id)["pid"]
    wait_event(tmp_path, run_id, lambda e: e["type"] == "Heartbeat" and e["elapsed"] >= 0.99)
    time.sleep(0.5)  # the 1 s phase is over: in the 4 s settle pause
    started = time.monotonic()
    done = cli(tmp_path, "stop", run_id[:12])
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 3.0  # not the rest of the settle pause
    final = wait_ended(tmp_path, run_id, pid, timeout=5)
    assert final["status"] == "stopped"
    [result] = final["payload"]["raw_runs"][0]["results"]  # the phase measured is kept
    assert result["report"]["requests_total"] > 0


def test_ps_finds_a_run_whose_processes_died_and_marks_it_died(device, tmp_path: Path) -> None:
    run_id = detach(device.port, tmp_path, "--long-duration", "3")
    status = lifecycle.read_status(tmp_path, run_id)
    wait_event(tmp_path, run_id, lambda e: e["type"] == "PhaseStarted" and e["ordinal"] == 2)
    status = lifecycle.read_status(tmp_path, run_id)
    listed = json.loads(cli(tmp_path, "ps", "--json").stdout)
    assert [r["run_id"] for r in listed] == [run_id] and listed[0]["alive"]
    for pid in (status["pid"], status["engine_pid"]):  # like an OOM kill of both
        os.kill(pid, signal.SIGKILL)
    assert wait_gone([status["pid"], status["engine_pid"]], 5) == []
    listed = json.loads(cli(tmp_path, "ps", "--json").stdout)
    assert len(listed) == 1 and not listed[0]["alive"] and "died" in listed[0]["phase"]
    [run] = stored(tmp_path)
    assert run["run_id"] == run_id and run["status"] == "died"
    record = HistoryStore(tmp_path).get(run_id)
    assert [r["phase"] for r in record["raw_runs"][0]["results"]] == ["burst"]  # what it kept
    assert json.loads(cli(tmp_path, "ps", "--json").stdout) == []  # found once, then gone
    assert wait_event(tmp_path, run_id, lambda e: e["type"] == "RunFinished")["status"] == "died"


def test_engine_killed_alone_the_run_is_stored_as_died(device, tmp_path: Path) -> None:
    run_id = detach(device.port, tmp_path, "--long-duration", "3")
    wait_event(tmp_path, run_id, lambda e: e["type"] == "PhaseStarted" and e["ordinal"] == 2)
    status = lifecycle.read_status(tmp_path, run_id)
    os.kill(status["engine_pid"], signal.SIGKILL)
    final = wait_ended(tmp_path, run_id, status["pid"], timeout=10)
    assert final["status"] == "died" and final["exit_code"] == 3
    [run] = stored(tmp_path)
    assert run["status"] == "died"


def test_a_second_run_while_a_detached_one_holds_the_lock_is_exit_3_naming_it(
    device, tmp_path: Path
) -> None:
    run_id = detach(device.port, tmp_path, "--burst-duration", "3")
    pid = lifecycle.read_status(tmp_path, run_id)["pid"]
    for extra in ([], ["--detach"]):
        second = cli(tmp_path, "run", "127.0.0.1", "--port", str(device.port), *FAST, *extra)
        assert second.returncode == 3, second.stderr
        assert run_id in second.stderr and f"pid {pid}" in second.stderr
        assert "Traceback" not in second.stderr
    assert alive(pid)
    assert wait_ended(tmp_path, run_id, pid)["status"] == "finished"


def test_an_attached_run_streams_too_ps_lists_it_and_stop_ends_it(device, spawn, tmp_path: Path):
    """`perftui run` without --detach: the same event stream, so ps/stop/attach work on it."""
    argv = [*PERFTUI, "run", "127.0.0.1", "--port", str(device.port), "--profiles", "api"]
    slow = ["--burst-duration", "2", "--post-phase-settle-ms", "8000"]  # time for ps and stop
    run = spawn([*argv, *FAST, *slow, "--history-dir", str(tmp_path)])
    run.wait_line(lambda line: "api run 1/1 burst" in line)
    [listed] = json.loads(cli(tmp_path, "ps", "--json").stdout)
    assert listed["pid"] == run.proc.pid and listed["alive"]
    assert cli(tmp_path, "stop", "latest").returncode == 0
    code, _, err = run.finish()
    assert code == 130, err
    late = cli(tmp_path, "attach", "--print", listed["run_id"])
    assert f"run {listed['run_id']} stopped" in late.stdout


def test_only_the_newest_ended_streams_are_kept(tmp_path: Path) -> None:
    live = stream.live_dir(tmp_path)
    live.mkdir()
    for i in range(stream.KEEP_ENDED + 3):
        (live / f"2026010{i:02d}.events").write_text("")
    (live / "20260000.json").write_text("{}")  # in progress: its stream is never dropped
    (live / "20260000.events").write_text("")
    stream.prune_ended(tmp_path)
    names = sorted(p.stem for p in live.glob("*.events"))
    assert len(names) == stream.KEEP_ENDED + 1 and "20260000" in names
    assert "202601000" not in names and f"2026010{stream.KEEP_ENDED + 2:02d}" in names


@pytest.mark.parametrize(
    "argv",
    [["stop", "latest"], ["stop", "nope"], ["attach", "--print"], ["attach", "--print", "nope"]],
    ids=["stop_nothing", "stop_unknown", "attach_nothing", "attach_unknown"],
)
def test_nothing_to_stop_or_attach_is_exit_2_in_one_line(tmp_path: Path, argv: list[str]) -> None:
    done = cli(tmp_path, *argv)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("perftui: error: ")
    assert cli(tmp_path, "ps").stdout == "no run in progress\n"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGHUP])
def test_the_launching_cli_killed_mid_launch_leaves_the_run_going(
    device, spawn, tmp_path: Path, sig: signal.Signals
) -> None:
    """The CLI of `run --detach` killed (with its whole process group) while it waits for the
    run's answer: the run, in its own session, goes on and is stored as finished."""
    argv = [*PERFTUI, "run", "127.0.0.1", "--port", str(device.port), "--profiles", "api"]
    launcher = spawn(
        [*argv, *FAST, "--burst-duration", "2", "--history-dir", str(tmp_path), "--detach"]
    )
    deadline = time.monotonic() + 20
    while not list(stream.live_dir(tmp_path).glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(launcher.proc.pid, sig)
    launcher.proc.wait(10)
    [status] = lifecycle.runs_in_progress(tmp_path)
    final = wait_ended(tmp_path, status["run_id"], status["pid"])
    assert final["status"] == "finished"
    assert [r["status"] for r in stored(tmp_path)] == ["finished"]


def test_the_run_device_keeps_its_noise_options_and_finds_a_port(tmp_path: Path) -> None:
    """`run --detach --sim --sim-spikes …`: the host's device is the noisy one asked for; on the
    port asked for, or any free one when that is taken, and the run targets it as "sim"."""
    from perftui.config import RunConfig
    from perftui.profiles import resolve_profiles
    from perftui.sim.device import serve_run
    from perftui.sim.options import SimOptions

    config = RunConfig(host="127.0.0.1", profiles=resolve_profiles("api"), history_dir=tmp_path)
    sim = serve_run(config, SimOptions(spikes=0.25, drift=0.1, seed=3))
    other = RunConfig(host="127.0.0.1", profiles=resolve_profiles("api"), history_dir=tmp_path)
    second = serve_run(other, port=sim.port)  # taken: another port
    try:
        assert (sim.options.spikes, sim.options.drift, sim.options.seed) == (0.25, 0.1, 3)
        assert (config.port, config.device) == (sim.port, "sim")
        assert second.port != sim.port and other.port == second.port
    finally:
        sim.stop()
        second.stop()
