"""The run owner (`perftui.runs.owner`) under kills, from both faces.

A killed engine: its run is stored once, as "died"; the lock is free; the simulated device the
owner started is stopped. A run started while a killed run's engine stores its partial run
waits for it, says so, and then starts.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from perftui.config import EXIT_COULD_NOT_RUN
from perftui.engine import lifecycle
from perftui.engine.events import RunFinished
from perftui.engine.lock import RunLock
from perftui.history.store import HistoryStore
from perftui.runs.owner import SAVE_WAIT_S
from perftui.tui.session import RunSession, SimDevice
from tests.engine_helpers import phase_config, run_cli
from tests.faults.conftest import perftui_argv, wait_gone

LOCK = ".perf_regression.lock"


def _lock_is_free(history: Path) -> bool:
    lock = RunLock(history / LOCK)
    try:
        lock.acquire()
    except Exception:
        return False
    lock.release()
    return True


def _refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) != 0


def _wait_for(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_cli_killed_engine_is_stored_once_as_died_and_everything_released(
    spawn, tmp_path: Path
) -> None:
    """`perftui run --sim` whose engine is SIGKILLed: exit 3, one "died" record (its partial),
    the lock free and the device the owner started gone."""
    run = spawn(
        perftui_argv(
            "--sim",
            tmp_path,
            "--paths",
            "/hello",
            "--runs",
            "3",
            "--burst-duration",
            "0.5",
            "--long-duration",
            "0",
        )
    )
    line = run.wait_line(lambda text: "simulated device at" in text)
    port = int(line.strip().rsplit(":", 1)[1])
    run.wait_line(lambda text: "done adhoc/burst" in text)
    _wait_for(lambda: (tmp_path / "latest.partial.json").exists())
    [status] = lifecycle.runs_in_progress(tmp_path)
    os.kill(status["engine_pid"], signal.SIGKILL)
    code, out, err = run.finish(timeout=15)
    assert code == EXIT_COULD_NOT_RUN, err
    assert "engine process died (exit code -9)" in out
    [stored] = HistoryStore(tmp_path).list_runs()
    assert stored["status"] == "died" and stored["run_id"] == status["run_id"]
    assert _lock_is_free(tmp_path)
    assert _refused(port)
    follower = lifecycle.Follower(tmp_path, status["run_id"])
    follower.read()
    follower.close()
    assert follower.finished is not None and follower.finished.status == "died"


def test_tui_killed_engine_is_stored_once_as_died_and_everything_released(tmp_path: Path) -> None:
    """The TUI's Start (a detached run through the owner, lending it the app's device): the
    viewer sees "died", one record is stored, the lock is free, the run's device stopped and
    the app's device may serve again."""
    device = SimDevice()
    config = phase_config(0, tmp_path, paths="/hello", burst=(2, 0.5))
    config.runs = 3
    session = RunSession(config, use_sim=True, sim=device)
    try:
        session.start()
        assert session.run_id is not None
        _wait_for(lambda: (lifecycle.read_status(tmp_path, session.run_id) or {}).get("engine_pid"))
        _wait_for(lambda: (tmp_path / "latest.partial.json").exists())
        status = lifecycle.read_status(tmp_path, session.run_id) or {}
        os.kill(int(status["engine_pid"]), signal.SIGKILL)
        events = []
        deadline = time.monotonic() + 15
        while not session.finished and time.monotonic() < deadline:
            event = session.poll(0.1)
            if event is not None:
                events.append(event)
        ends = [e for e in events if isinstance(e, RunFinished)]
        assert [e.status for e in ends] == ["died"]
        assert wait_gone([int(status["pid"])], 5.0) == []
        runs = HistoryStore(tmp_path).list_runs()
        assert [(r["run_id"], r["status"]) for r in runs] == [(session.run_id, "died")]
        assert _lock_is_free(tmp_path)
        assert _refused(config.port)
        session.close()
        assert device.ensure().port  # the app's device serves again
    finally:
        session.close()
        device.stop()


SAVING_ENGINE = """
import sys, time
from pathlib import Path
from perftui.engine.lock import RunLock
lock = RunLock(Path(sys.argv[1]))
lock.acquire(run_id="20261204T000000Z-killed", saving=True)
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
lock.release()
"""


def test_a_run_started_while_a_killed_runs_engine_saves_waits_then_starts(
    sim, tmp_path: Path, capfd
) -> None:
    """Known truth: a holder marked as saving lets go after 1 s; the run waits, then runs."""
    holder = subprocess.Popen(
        [sys.executable, "-c", SAVING_ENGINE, str(tmp_path / LOCK), "1.0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        started = time.monotonic()
        code = run_cli(sim.port, tmp_path, "--paths", "/hello", "--burst-duration", "0.5")
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    err = capfd.readouterr().err
    assert code == 0, err
    assert "waiting for the engine of run 20261204T000000Z-killed" in err
    assert f"up to {SAVE_WAIT_S:g} s" in err
    assert waited >= 0.9
    [stored] = HistoryStore(tmp_path).list_runs()
    assert stored["status"] == "finished"


def test_a_run_started_right_after_a_sigkill_waits_for_the_save(
    sim, spawn, tmp_path: Path, capfd
) -> None:
    """The real race: SIGKILL a foreground run; its engine claims the lock to store the partial
    run; a run started in that moment is not exit 3 but starts once the save is done."""
    big = ",".join(f"/hello?n={i}" for i in range(150))  # a large record: a longer save
    argv = perftui_argv(
        "127.0.0.1",
        tmp_path,
        "--port",
        str(sim.port),
        "--paths",
        big,
        "--burst-duration",
        "1.5",
        "--long-duration",
        "0",
        "--runs",
        "1",
    )
    run = spawn(argv)
    run.wait_line(lambda text: "] adhoc run 1/1 burst" in text)
    time.sleep(0.3)
    run.proc.send_signal(signal.SIGKILL)
    run.proc.wait(5)
    info = tmp_path / (LOCK + ".holder.json")
    _wait_for(lambda: info.exists() and json.loads(info.read_text()).get("saving"), 5.0)
    code = run_cli(sim.port, tmp_path, "--paths", "/hello", "--burst-duration", "0.5")
    err = capfd.readouterr().err
    assert code == 0, err
    assert "could not run" not in err
    statuses = sorted(r["status"] for r in HistoryStore(tmp_path).list_runs())
    assert statuses == ["finished", "stopped"]
