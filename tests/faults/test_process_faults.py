"""Process faults: SIGKILL at random points, SIGTERM, two runs at once.

A killed run may lose itself, never what was stored before it: afterwards every JSON file in the
history dir parses, the history database loads, the completed run is byte for byte intact, no
engine process is left loading the device, and the next run takes over the stale lock.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from filelock import FileLock

from perftui.engine.lock import LockHeld, RunLock
from perftui.history.store import HistoryStore, compact
from tests.engine_helpers import FAST, run_cli
from tests.faults.conftest import Spawned, children, perftui_argv, wait_gone

SEED = 20261123
ENGINE_EXIT_S = 2.0  # the engine checks its parent five times a second, then stops gracefully
# Distinct paths make a large run record: with 150 the record of one phase alone is larger than
# a pipe's 64 KiB buffer, so an engine whose parent died cannot hand it over.
MANY_PATHS = ",".join(f"/hello?n={i}" for i in range(60))
HUGE_RECORD_PATHS = ",".join(f"/hello?n={i}" for i in range(150))


def _run_argv(port: int, history: Path, *flags: str) -> list[str]:
    return perftui_argv("127.0.0.1", history, "--port", str(port), *FAST, *flags)


def _engine_of(run: Spawned) -> list[int]:
    """The engine process (and multiprocessing's resource tracker) under a `perftui run`."""
    kids = children(run.proc.pid)
    assert kids, "the engine process was not found"
    return kids


def _json_files_parse(history: Path) -> None:
    for path in history.glob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))  # raises on a torn file


def test_orphaned_engine_stops_stores_the_run_and_exits(sim, spawn, tmp_path: Path) -> None:
    """SIGKILL of the CLI alone: its engine notices, stops, keeps the run as stopped and exits,
    even when its event pipe is full (a large record, nobody reading)."""
    run = spawn(_run_argv(sim.port, tmp_path, "--paths", HUGE_RECORD_PATHS, "--runs", "3"))
    run.wait_line(lambda line: "done adhoc/burst" in line)
    engine = _engine_of(run)
    time.sleep(0.3)  # well into run 2's phase
    run.proc.send_signal(signal.SIGKILL)
    run.proc.wait(5)
    killed_at = time.monotonic()
    assert wait_gone(engine, ENGINE_EXIT_S + 1.0) == [], "the orphaned engine kept running"
    assert time.monotonic() - killed_at < ENGINE_EXIT_S + 1.0
    partial = json.loads((tmp_path / "latest.partial.json").read_text(encoding="utf-8"))
    assert partial["status"] == "stopped" and 1 <= len(partial["raw_runs"]) <= 2
    [stored] = HistoryStore(tmp_path).list_runs()
    assert stored["status"] == "stopped" and stored["run_id"] == partial["run_id"]
    assert not (tmp_path / "latest.json").exists()
    handled = sim.stats.requests_handled
    time.sleep(0.3)
    assert sim.stats.requests_handled == handled  # no load left running against the device


KILL_POINTS = ("during_phase", "around_partial_write", "during_final_writes", "random_time")


def _kill(run: Spawned, point: str, rng: random.Random) -> tuple[str, list[int]]:
    """SIGKILL at `point`: the CLI alone, or the CLI with its engine (like an OOM kill)."""
    if point == "during_phase":
        run.wait_line(lambda line: "] adhoc run 2/2 burst" in line)
        time.sleep(rng.uniform(0.1, 0.5))
    elif point == "around_partial_write":  # the engine writes the partial as it reports a phase
        run.wait_line(lambda line: "done adhoc/burst" in line)
        time.sleep(rng.uniform(0.0, 0.03))
    elif point == "during_final_writes":  # after the last phase: record, files, database
        run.wait_line(lambda line: "done adhoc/burst" in line)
        run.wait_line(lambda line: "done adhoc/burst" in line)
        time.sleep(rng.uniform(0.0, 0.08))
    else:
        time.sleep(rng.uniform(0.2, 2.5))
    group = rng.random() < 0.5 or point in ("around_partial_write", "during_final_writes")
    engine = children(run.proc.pid)
    if group:
        os.killpg(run.proc.pid, signal.SIGKILL)
    else:
        run.proc.send_signal(signal.SIGKILL)
    return ("group" if group else "cli"), engine


def test_sigkill_at_random_points_loses_nothing_stored(
    sim, spawn, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(sim.port, tmp_path, "--paths", "/hello", "--tag", "complete") == 0
    [completed] = HistoryStore(tmp_path).list_runs()
    kept = {p: p.read_bytes() for p in tmp_path.glob("perf_*_complete.*")}
    assert len(kept) == 2
    rng = random.Random(SEED)
    for point in KILL_POINTS:
        flags = ("--paths", MANY_PATHS, "--runs", "2", "--burst-duration", "0.6")
        run = spawn(_run_argv(sim.port, tmp_path, *flags))
        who, engine = _kill(run, point, rng)
        run.proc.wait(5)
        assert wait_gone(engine, ENGINE_EXIT_S) == [], (point, who)
        _json_files_parse(tmp_path)  # latest.json, latest.partial.json: whole or absent
        runs = {s["run_id"]: s for s in HistoryStore(tmp_path).list_runs()}
        assert completed["run_id"] in runs, (point, who)
        assert HistoryStore(tmp_path).get(completed["run_id"])["status"] == "finished"
        assert {p: p.read_bytes() for p in kept} == kept
    capfd.readouterr()
    # The next run takes over the lock the killed ones left behind, and finishes.
    assert run_cli(sim.port, tmp_path, "--paths", "/hello", "--tag", "after") == 0
    statuses = {s["tag"]: s["status"] for s in HistoryStore(tmp_path).list_runs()}
    assert statuses["complete"] == statuses["after"] == "finished"
    assert not (tmp_path / "latest.partial.json").exists()
    err = capfd.readouterr().err
    assert "could not store" not in err and "Traceback" not in err


def _holder_pid(err: str) -> int:
    match = re.search(r"holds .* \((?:run \S+, )?pid (\d+), started 20\d\d-", err)
    assert match, err
    return int(match.group(1))


def test_two_runs_on_one_history_dir_one_waits_out_two_dirs_both_run(
    sim, spawn, tmp_path: Path
) -> None:
    shared, other = tmp_path / "shared", tmp_path / "other"
    flags = ("--paths", "/hello", "--burst-duration", "1.5")
    racers = [spawn(_run_argv(sim.port, shared, *flags)) for _ in range(2)]
    neighbour = spawn(_run_argv(sim.port, other, *flags))
    results = [r.finish(timeout=30) for r in racers]
    by_code = {code: (run, err) for (code, _, err), run in zip(results, racers, strict=True)}
    assert sorted(by_code) == [0, 3], results
    winner, loser_err = by_code[0][0], by_code[3][1]
    assert _holder_pid(loser_err) == winner.proc.pid
    assert loser_err.count("\n") == 1 and loser_err.startswith("perftui: could not run:")
    code, _out, err = neighbour.finish(timeout=30)
    assert code == 0, err  # another history dir is another lock
    assert len(HistoryStore(shared).list_runs()) == 1
    assert len(HistoryStore(other).list_runs()) == 1


def test_sigterm_while_the_device_hangs_stops_within_the_grace(
    make_sim, spawn, tmp_path: Path
) -> None:
    """In-flight requests to a hung device do not hold a stop for their 30 s timeout, and the
    history database keeps the run as stopped. (The graceful stop itself: tests/test_run.py.)"""
    hung = make_sim(hang_after=0)
    flags = ("--paths", "/hello", "--timeout", "30", "--probe-path", "/not-a-route")
    run = spawn(_run_argv(hung.port, tmp_path, *flags, "--burst-duration", "20"))
    run.wait_line(lambda line: "] adhoc run 1/1 burst" in line)
    time.sleep(0.5)
    asked = time.monotonic()
    run.proc.send_signal(signal.SIGTERM)
    code, out, err = run.finish(timeout=20)
    assert code == 130, err
    assert time.monotonic() - asked < 3.0  # STOP_GRACE_S (1 s) plus the final writes
    partial = json.loads((tmp_path / "latest.partial.json").read_text(encoding="utf-8"))
    [result] = partial["raw_runs"][0]["results"]
    assert result["report"]["stopped"] is True and result["pass"] is False
    assert "stopped before the phase finished" in result["fail_reasons"]
    [stored] = HistoryStore(tmp_path).list_runs(status="stopped")
    assert stored["run_id"] == partial["run_id"]
    # the store keeps floats to 6 significant digits (`compact`); a stall of 1592.304 ms is 1592.3
    assert HistoryStore(tmp_path).get(stored["run_id"])["raw_runs"] == compact(partial["raw_runs"])
    assert f"run {partial['run_id']} stopped" in out


def test_second_ctrl_c_kills_the_engine_and_keeps_files_valid(sim, spawn, tmp_path: Path) -> None:
    run = spawn(_run_argv(sim.port, tmp_path, "--paths", MANY_PATHS, "--runs", "3"))
    run.wait_line(lambda line: "done adhoc/burst" in line)
    engine = _engine_of(run)
    time.sleep(0.2)
    run.proc.send_signal(signal.SIGINT)
    run.wait_line(lambda line: "Ctrl-C again to kill" in line)
    run.proc.send_signal(signal.SIGINT)
    code, _out, err = run.finish(timeout=10)
    assert code == 130, err
    assert "Traceback" not in err
    assert wait_gone(engine, 1.0) == []
    _json_files_parse(tmp_path)
    HistoryStore(tmp_path).list_runs()  # loads (the run may or may not have reached it)


def test_a_contender_in_the_winners_first_moment_names_the_winner(tmp_path: Path) -> None:
    """Two runs started at once: the loser may look between the winner's lock and its info file,
    when the info is missing or still names the killed run that held the lock before."""
    lock_path = tmp_path / ".perf_regression.lock"
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()
    info_path = RunLock(lock_path).info_path
    info_path.write_text(json.dumps({"pid": killed.pid, "started_at": "2020-01-01T00:00:00Z"}))
    winner = FileLock(str(lock_path), timeout=0)
    winner.acquire()  # the winner has the lock, and has not written who it is yet
    info = {"pid": os.getpid(), "started_at": "2026-11-23T10:00:00Z"}
    late = threading.Timer(0.2, lambda: info_path.write_text(json.dumps(info)))
    late.start()
    try:
        with pytest.raises(LockHeld) as held:
            RunLock(lock_path).acquire()
    finally:
        late.join()
        winner.release()
    assert f"(pid {os.getpid()}, started 2026-11-23T10:00:00Z)" in str(held.value)


def test_engine_killed_alone_is_exit_3_engine_died(sim, spawn, tmp_path: Path) -> None:
    """The OOM killer picks the engine, not the CLI: the CLI says so and exits 3 (README)."""
    run = spawn(_run_argv(sim.port, tmp_path, "--paths", "/hello", "--runs", "3"))
    run.wait_line(lambda line: "done adhoc/burst" in line)
    [engine] = [pid for pid in _engine_of(run) if "spawn_main" in _cmdline(pid)]
    os.kill(engine, signal.SIGKILL)
    killed_at = time.monotonic()
    code, out, err = run.finish(timeout=10)
    assert code == 3, err
    assert time.monotonic() - killed_at < 2.0
    assert "engine process died (exit code -9)" in out
    assert "Traceback" not in err
    _json_files_parse(tmp_path)


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


LEAVE_WITHOUT_READING = """
import sys, time
from pathlib import Path
from perftui.config import PhaseSettings, RunConfig
from perftui.profiles import adhoc_profile
from perftui.engine.runner import EngineProcess

config = RunConfig(
    host="127.0.0.1", port=int(sys.argv[1]), profiles=[adhoc_profile(sys.argv[3])], runs=1,
    burst=PhaseSettings(4, 1.0), long=PhaseSettings(1, 0.0), history_dir=Path(sys.argv[2]),
    between_runs_sleep_ms=0, post_phase_settle_ms=0,
)
engine = EngineProcess(config)
engine.start()
time.sleep(1.0)  # heartbeats pile up unread
engine.stop()
print(engine.pid, flush=True)
sys.exit(130)  # like a second Ctrl-C escaping the CLI's loop: nobody reads the events again
"""


def test_leaving_without_reading_the_engine_never_hangs_the_exit(
    sim, spawn, tmp_path: Path
) -> None:
    argv = [sys.executable, "-c", LEAVE_WITHOUT_READING, str(sim.port), str(tmp_path)]
    code, out, err = spawn([*argv, HUGE_RECORD_PATHS]).finish(timeout=20)
    assert code == 130, err
    assert wait_gone([int(out.split()[0])], 1.0) == []
    stopped = json.loads((tmp_path / "latest.partial.json").read_text(encoding="utf-8"))
    # it was drained long enough to store the run (as never started if stopped before a phase)
    assert stopped["status"] == ("stopped" if stopped["raw_runs"] else "not_started")


INTERRUPTED_STOPS = """
import signal, sys, random
from pathlib import Path
from perftui.config import PhaseSettings, RunConfig
from perftui.profiles import adhoc_profile
from perftui.engine.runner import EngineProcess

config = RunConfig(
    host="127.0.0.1", port=int(sys.argv[1]), profiles=[adhoc_profile("/hello")], runs=1,
    burst=PhaseSettings(2, 30.0), long=PhaseSettings(1, 0.0), history_dir=Path(sys.argv[2]),
    between_runs_sleep_ms=0, post_phase_settle_ms=0, write_history_db=False,
)
engine = EngineProcess(config)
engine.start()
def interrupt(*_):
    raise KeyboardInterrupt
signal.signal(signal.SIGALRM, interrupt)
rng = random.Random(7)
for _ in range(2000):  # a Ctrl-C landing anywhere inside stop(), two thousand times
    try:
        signal.setitimer(signal.ITIMER_REAL, rng.uniform(0.00002, 0.0003))
        while True:
            engine.stop()
    except KeyboardInterrupt:
        pass
finished = list(engine.events())[-1]
print(finished.status, flush=True)
"""


def test_ctrl_c_inside_a_stop_request_never_freezes_the_engine(sim, spawn, tmp_path: Path) -> None:
    argv = [sys.executable, "-c", INTERRUPTED_STOPS, str(sim.port), str(tmp_path)]
    code, out, err = spawn(argv).finish(timeout=20)
    assert code == 0, err
    assert out.split() == ["stopped"]  # the engine saw the request (its phase would last 30 s)
