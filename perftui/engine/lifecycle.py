"""A run's life as seen from outside its process: where it is (its status file), whether its
processes live, and how it ends when they went without a word (stored as "died" from its last
partial, its event stream ended so every viewer stops). `Follower` is a viewer's read of a run,
ending the stream itself for a run whose processes died (as `perftui ps` would).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from perftui.config import EXIT_COULD_NOT_RUN
from perftui.engine.eventjson import event_to_json
from perftui.engine.events import Event, RunFinished, RunStatus
from perftui.engine.schema import LiveStatus, RunRecord
from perftui.engine.stream import EventTail, events_path, live_dir, pid_alive, status_path
from perftui.history import files

VANISHED_AFTER_S = 3.0  # a run with no status file and a stream quiet this long has gone


def read_status(history_dir: Path, run_id: str) -> LiveStatus | None:
    status = files.read_json(status_path(history_dir, run_id))
    return status if isinstance(status, dict) else None


def runs_in_progress(history_dir: Path) -> list[LiveStatus]:
    """The status of every run with a status file, newest first; `alive` False = stale."""
    found = []
    folder = live_dir(history_dir)
    for path in folder.glob("*.json") if folder.is_dir() else ():
        status = files.read_json(path)
        if not isinstance(status, dict) or "run_id" not in status:
            continue
        status["alive"] = pid_alive(status.get("pid")) or pid_alive(status.get("engine_pid"))
        found.append(status)
    return sorted(found, key=lambda s: str(s["run_id"]), reverse=True)


def where(status: LiveStatus) -> str:
    """Where a run is, from its status: phase, ordinal, seconds into the phase."""
    text = f"{status.get('phase')} [{status.get('progress')}]"
    if status.get("elapsed") is not None and status.get("alive", True):
        text += f" {status['elapsed']:g}/{status.get('duration', 0):g} s"
    return text


def died_record(history_dir: Path, run_id: str, why: str) -> RunRecord | None:
    """The run so far from `latest.partial.json`, marked as died, if that file is this run's."""
    partial = files.read_json(Path(history_dir) / files.PARTIAL_NAME)
    if not isinstance(partial, dict) or partial.get("run_id") != run_id:
        return None
    partial["status"] = "died"
    partial["overall_pass"] = False
    partial["hard_stop_reason"] = why
    return partial


def store_died(history_dir: Path, run_id: str, why: str) -> RunRecord | None:
    """Store what a run that died uncleanly had kept (its partial), as "died"; the record."""
    from perftui.history.store import HistoryStore

    payload = died_record(history_dir, run_id, why)
    if payload is not None:
        with contextlib.suppress(Exception):  # a broken DB must not hide the run's end
            HistoryStore(history_dir).add_run(payload)
    return payload


def died(run_id: str, why: str, payload: RunRecord | None = None) -> RunFinished:
    """The end of a run whose processes went without a final event of their own."""
    return RunFinished(
        status=RunStatus.DIED,
        overall_pass=False,
        exit_code=EXIT_COULD_NOT_RUN,
        hard_stop_reason=why,
        files={},
        payload=payload,
        run_id=run_id,
    )


def mark_died(history_dir: Path, run_id: str, why: str) -> RunFinished:
    """Store what a run that died uncleanly had kept, as "died", and end its event stream."""
    payload = store_died(history_dir, run_id, why)
    return end_stream(history_dir, died(run_id, why, payload))


def end_stream(history_dir: Path, finished: RunFinished) -> RunFinished:
    """Append `finished` to the run's events file unless it already ends with one (viewers stop).

    Returns the RunFinished the file ends with.
    """
    path = events_path(history_dir, str(finished.run_id))
    tail = EventTail(path)
    tail.read()
    tail.close()
    if tail.finished is not None:
        return tail.finished
    if path.exists():
        line = {"seq": tail.last_seq + 1, "t": time.time(), **event_to_json(finished)}
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
    return finished


def reap(history_dir: Path, status: LiveStatus) -> RunFinished:
    """End a stale run (its processes are gone): keep it in history as died, unless it was stored.

    An engine whose host was killed stops on its own and stores the run as stopped; only a run
    that left nothing stored is marked "died" from its last `latest.partial.json`.
    """
    from perftui.history.store import HistoryStore, StoreError

    run_id = str(status["run_id"])
    pid = status.get("pid")
    try:
        stored: RunRecord | None = HistoryStore(history_dir).get(run_id)
    except StoreError:  # not stored (or no database): the partial is all there is
        stored = None
    if stored is None:
        finished = mark_died(history_dir, run_id, f"the run's process (pid {pid}) died")
    else:
        finished = RunFinished(
            status=RunStatus(stored.get("status") or RunStatus.FINISHED),
            overall_pass=bool(stored.get("overall_pass")),
            exit_code=EXIT_COULD_NOT_RUN,
            hard_stop_reason=stored.get("hard_stop_reason"),
            files={},
            payload=stored,
            run_id=run_id,
        )
        finished = end_stream(history_dir, finished)
    with contextlib.suppress(OSError):
        status_path(history_dir, run_id).unlink()
    return finished


class Follower:
    """One viewer's read of a run: its events from the start, then as they come; ends the run's
    stream itself if the run's processes died without ending it (as `ps` would)."""

    def __init__(self, history: Path, run_id: str) -> None:
        self.history = history
        self.run_id = run_id
        self.tail = EventTail(events_path(history, run_id))
        self._checked = time.monotonic()

    def read(self) -> list[Event]:
        events = self.tail.read()
        if not events and self.tail.finished is None and time.monotonic() - self._checked > 1.0:
            self._checked = time.monotonic()
            status = runs_in_progress(self.history)
            mine = next((s for s in status if s["run_id"] == self.run_id), None)
            if mine is not None and not mine["alive"]:
                reap(self.history, mine)
            elif mine is None and self._quiet_for(VANISHED_AFTER_S):
                # No status and nothing written for a while: the run's process went without a
                # final event (its status file is written before its first event, removed after
                # its last), so end the stream for every viewer.
                events = self.tail.read()
                if not events and self.tail.finished is None:
                    end_stream(self.history, _vanished(self.run_id))
        return events

    def _quiet_for(self, seconds: float) -> bool:
        try:
            return time.time() - os.stat(self.tail.path).st_mtime > seconds
        except OSError:
            return True

    @property
    def finished(self) -> RunFinished | None:
        return self.tail.finished

    def close(self) -> None:
        self.tail.close()


def _vanished(run_id: str) -> RunFinished:
    return died(run_id, "the run's process ended without a final event")
