"""A run's event stream on disk, so any number of viewers can watch it, from its start, at any time.

The process that owns a run (see `perftui.host`) appends every event to
`HISTORY/live/<run_id>.events` (JSON lines, each with its event type, a sequence number and a wall
time) and keeps a small status file `HISTORY/live/<run_id>.json` for `perftui ps`. Viewers tail the
events file; they never talk to the run, so a viewer's death cannot touch it.

The file stays small over an 8-hour soak because old heartbeats and in-phase heap readings are
rolled up: every `ROLLUP_EVERY_S` the writer rewrites the file (temp + rename) keeping every event
of the last `KEEP_RECENT_S` but only one heartbeat (and one heap reading) per `THIN_PERIOD_S` of
each phase before that. A reader that sees the file replaced reopens it and skips the sequence
numbers it has already read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import time
import types
import typing
from pathlib import Path
from typing import Any

from perftui.config import EXIT_COULD_NOT_RUN, RunConfig
from perftui.engine import events as events_module
from perftui.engine.events import Event, Heartbeat, PhaseStarted, RunFinished
from perftui.history import files
from perftui.profiles import Check, Profile, RequestSpec

LIVE_DIR = "live"
KEEP_RECENT_S = 300.0
THIN_PERIOD_S = 10.0
ROLLUP_EVERY_S = 300.0
VANISHED_AFTER_S = 3.0  # a run with no status file and a stream quiet this long has gone
KEEP_ENDED = 20  # events files of ended runs kept for `attach` (the runs stay in history)
STATUS_EVERY_S = 2.0
# Bytes a reader holds at once (besides the events it returns): under glibc's 128 KiB mmap
# threshold, so each read reuses the same heap block instead of raising the threshold and growing
# the heap.
READ_CHUNK = 64 * 1024
EVENT_TYPES: dict[str, type] = {cls.__name__: cls for cls in typing.get_args(Event)}
SEQ_PREFIX = re.compile(rb'\{"seq":(\d+),')  # how EventWriter starts every line


def live_dir(history_dir: Path) -> Path:
    return Path(history_dir) / LIVE_DIR


def events_path(history_dir: Path, run_id: str) -> Path:
    return live_dir(history_dir) / f"{run_id}.events"


def status_path(history_dir: Path, run_id: str) -> Path:
    return live_dir(history_dir) / f"{run_id}.json"


# ----- events as JSON, generically from the dataclasses ------------------------------------------


def event_to_json(event: Event) -> dict[str, Any]:
    return {"type": type(event).__name__, **dataclasses.asdict(event)}


def _build(hint: Any, value: Any) -> Any:
    """`value` (plain JSON) as `hint` says: nested event dataclasses are rebuilt, the rest kept."""
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict):
        hints = typing.get_type_hints(hint, vars(events_module))
        return hint(
            **{
                f.name: _build(hints[f.name], value[f.name])
                for f in dataclasses.fields(hint)
                if f.name in value
            }
        )
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return {k: _build(args[1], v) for k, v in value.items()}
    if origin is list and isinstance(value, list) and args:
        return [_build(args[0], v) for v in value]
    if origin in (typing.Union, types.UnionType) and value is not None:
        for arg in args:
            if isinstance(arg, type) and dataclasses.is_dataclass(arg) and isinstance(value, dict):
                return _build(arg, value)
    return value


def event_from_json(data: dict[str, Any]) -> Event | None:
    """The event a line holds, or None for a type this version does not know (skipped)."""
    cls = EVENT_TYPES.get(str(data.get("type")))
    if cls is None:
        return None
    try:
        return typing.cast(Event, _build(cls, data))
    except TypeError:  # a field missing: written by another version
        return None


# ----- the run's config, for a viewer that did not start the run --------------------------------


def config_to_json(config: RunConfig) -> dict[str, Any]:
    data = dataclasses.asdict(config)
    data["history_dir"] = str(config.history_dir)
    data["lock_file"] = str(config.lock_file) if config.lock_file else None
    for profile in data["profiles"]:
        profile["secret_headers"] = sorted(profile["secret_headers"])
        for request in profile["requests"]:
            if request.get("check"):
                request["check"]["status"] = sorted(request["check"]["status"])
    return data


def _request_from_json(r: dict[str, Any]) -> RequestSpec:
    check = r.get("check")
    if check:
        check = Check(
            frozenset(check["status"]),
            check["body_contains"],
            tuple((k, v) for k, v in check["json"]),
            check["max_body_bytes"],
        )
    return RequestSpec(
        **{**r, "headers": tuple(tuple(h) for h in r.get("headers", ())), "check": check}
    )


def config_from_json(data: dict[str, Any]) -> RunConfig:
    data = dict(data)
    profiles = []
    for p in data.pop("profiles", []):
        p = dict(p)
        p["requests"] = [_request_from_json(r) for r in p.get("requests", [])]
        p["secret_headers"] = frozenset(p.get("secret_headers", ()))
        profiles.append(Profile(**p))
    config = RunConfig(host=data.pop("host"), profiles=profiles)
    for f in dataclasses.fields(RunConfig):
        if f.name not in data:
            continue
        value, default = data[f.name], getattr(config, f.name)
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            value = type(default)(**value)  # phase settings, gate limits: nested dataclasses
        elif f.name in ("history_dir", "lock_file") and value is not None:
            value = Path(value)
        setattr(config, f.name, value)
    return config


# ----- writing ------------------------------------------------------------------------------------


def _thinned_key(data: dict[str, Any]) -> tuple[Any, ...] | None:
    """Events that are rolled up when old: heartbeats, and heap readings taken during a phase."""
    kind = data.get("type")
    if kind == "Heartbeat" or (kind == "Telemetry" and data.get("moment") == "during"):
        return (kind, data.get("profile"), data.get("run_index"), data.get("phase"))
    return None


class EventWriter:
    """Appends a run's events to its events file and keeps its status file current.

    One `os.write` per batch on an O_APPEND descriptor: a reader sees whole lines only, or the
    start of the last one (which it keeps until the rest arrives).
    """

    def __init__(
        self,
        config: RunConfig,
        run_id: str,
        pid: int,
        clock: typing.Callable[[], float] = time.time,
    ) -> None:
        self.history_dir = Path(config.history_dir)
        self.run_id = run_id
        self.clock = clock
        live_dir(self.history_dir).mkdir(parents=True, exist_ok=True)
        prune_ended(self.history_dir)
        self.path = events_path(self.history_dir, run_id)
        self.status_file = status_path(self.history_dir, run_id)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._seq = 0
        self._rolled_at = clock()
        self._status_at = 0.0
        self.status: dict[str, Any] = {
            "run_id": run_id,
            "pid": pid,
            "engine_pid": None,
            "target": config.target,
            "profiles": [p.name for p in config.profiles],
            "phase": "starting",
            "progress": "0/?",
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "events": str(self.path),
            "config": config_to_json(config),
        }
        self._write_status()

    def set_engine_pid(self, pid: int | None) -> None:
        self.status["engine_pid"] = pid
        self._write_status()

    def _write_status(self) -> None:
        self._status_at = time.monotonic()
        files.atomic_write_json(self.status_file, self.status)

    def write(self, batch: list[Event]) -> None:
        """Append `batch`; update the status file when the phase moved (or every few seconds)."""
        if not batch:
            return
        now = self.clock()
        lines = []
        for event in batch:
            self._seq += 1
            data = {"seq": self._seq, "t": now, **event_to_json(event)}
            lines.append(json.dumps(data, separators=(",", ":")))
        os.write(self._fd, ("\n".join(lines) + "\n").encode())
        if self._note(batch) or time.monotonic() - self._status_at >= STATUS_EVERY_S:
            self._write_status()
        if now - self._rolled_at >= ROLLUP_EVERY_S:
            self.roll_up()

    def _note(self, batch: list[Event]) -> bool:
        """Fold the batch into the status; True when a phase started or ended."""
        moved = False
        for event in batch:
            if isinstance(event, PhaseStarted):
                self.status["phase"] = f"{event.profile} run {event.run_index} {event.phase}"
                self.status["progress"] = f"{event.ordinal}/{event.total_phases}"
                self.status["elapsed"] = 0.0
                self.status["duration"] = event.duration
                moved = True
            elif isinstance(event, Heartbeat):
                self.status["elapsed"] = round(event.elapsed, 1)
            elif isinstance(event, RunFinished):
                moved = True
        return moved

    def roll_up(self) -> None:
        """Rewrite the file with old heartbeats thinned (temp + rename; readers follow by seq)."""
        now = self.clock()
        self._rolled_at = now
        keep: list[bytes] = []
        last_kept: dict[tuple[Any, ...], float] = {}
        with open(self.path, "rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    continue
                with contextlib.suppress(ValueError):
                    data = json.loads(line)
                    key = _thinned_key(data)
                    t = float(data.get("t", now))
                    if key is not None and t < now - KEEP_RECENT_S:
                        if t - last_kept.get(key, float("-inf")) < THIN_PERIOD_S:
                            continue
                        last_kept[key] = t
                    keep.append(line)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.writelines(keep)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    def close(self) -> None:
        """The run is over: the events file stays (attach shows the result), the status goes."""
        with contextlib.suppress(OSError):
            os.close(self._fd)
        with contextlib.suppress(OSError):
            self.status_file.unlink()


# ----- reading ------------------------------------------------------------------------------------


class EventTail:
    """Every event of a run from its start, then the new ones as they are appended."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file: typing.BinaryIO | None = None
        self._rest = b""
        self.last_seq = 0
        self.finished: RunFinished | None = None

    def _open(self) -> bool:
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 (kept open to tail it)
        except OSError:
            return False
        self._rest = b""
        return True

    def read(self) -> list[Event]:
        """The events appended since the last call (empty when nothing new).

        Read `READ_CHUNK` bytes at a time. After a roll-up the reader does not read the new file
        from its start: it steps back from the end to the first line it has not seen (the writer
        keeps sequence order). Re-reading the whole file (2–3 MB) at each roll-up was a step of
        ~1 MB in a viewer's RSS that never came back (issue 11's soak).
        """
        if self._file is None and not self._open():
            return []
        assert self._file is not None
        out: list[Event] = []
        reopened = False
        while True:
            chunk = self._file.read(READ_CHUNK)
            if chunk:
                self._parse(chunk, out)
                continue
            if reopened or not self._replaced():
                return out
            self._file.close()
            if not self._open():
                return out
            self._seek_unseen()
            reopened = True

    def _parse(self, chunk: bytes, out: list[Event]) -> None:
        data = self._rest + chunk
        *lines, self._rest = data.split(b"\n")
        for line in lines:
            seen = SEQ_PREFIX.match(line)
            if seen is not None and int(seen.group(1)) <= self.last_seq:
                continue  # re-read after a roll-up: skip it without building its dict
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            seq = parsed.get("seq", 0) if isinstance(parsed, dict) else 0
            if not isinstance(seq, int) or seq <= self.last_seq:
                continue
            self.last_seq = seq
            event = event_from_json(parsed)
            if event is not None:
                out.append(event)
                if isinstance(event, RunFinished):
                    self.finished = event

    def _seek_unseen(self) -> None:
        """Put the (new) file's position at or shortly before its first unseen line: look at the
        first whole line of each block, stepping back from the end, until one already seen."""
        assert self._file is not None
        pos = self._file.seek(0, os.SEEK_END)
        while pos > 0:
            pos = max(0, pos - READ_CHUNK)
            self._file.seek(pos)
            block = self._file.read(READ_CHUNK)
            start = 0 if pos == 0 else block.find(b"\n") + 1
            seen = SEQ_PREFIX.match(block, start) if start > 0 or pos == 0 else None
            if seen is not None and int(seen.group(1)) <= self.last_seq:
                self._file.seek(pos + start)
                return
        self._file.seek(0)

    def _replaced(self) -> bool:
        assert self._file is not None
        try:
            return os.stat(self.path).st_ino != os.fstat(self._file.fileno()).st_ino
        except OSError:
            return False

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


# ----- runs in progress ---------------------------------------------------------------------------


def pid_alive(pid: object) -> bool:
    """Running and not a zombie (a finished child not yet reaped holds nothing)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): os.kill said it exists
    return state not in ("Z", "X")


def prune_ended(history_dir: Path, keep: int = KEEP_ENDED) -> None:
    """Drop the events files (and launch logs) of all but the newest `keep` ended runs."""
    folder = live_dir(history_dir)
    ended = sorted(
        p for p in folder.glob("*.events") if not status_path(history_dir, p.stem).exists()
    )
    for path in ended[: max(0, len(ended) - keep)]:
        for old in (path, path.with_suffix(".log")):
            with contextlib.suppress(OSError):
                old.unlink()


def read_status(history_dir: Path, run_id: str) -> dict[str, Any] | None:
    status = files.read_json(status_path(history_dir, run_id))
    return status if isinstance(status, dict) else None


def runs_in_progress(history_dir: Path) -> list[dict[str, Any]]:
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


def where(status: dict[str, Any]) -> str:
    """Where a run is, from its status: phase, ordinal, seconds into the phase."""
    text = f"{status.get('phase')} [{status.get('progress')}]"
    if status.get("elapsed") is not None and status.get("alive", True):
        text += f" {status['elapsed']:g}/{status.get('duration', 0):g} s"
    return text


def died_record(history_dir: Path, run_id: str, why: str) -> dict[str, Any] | None:
    """The run so far from `latest.partial.json`, marked as died, if that file is this run's."""
    partial = files.read_json(Path(history_dir) / files.PARTIAL_NAME)
    if not isinstance(partial, dict) or partial.get("run_id") != run_id:
        return None
    partial["status"] = "died"
    partial["overall_pass"] = False
    partial["hard_stop_reason"] = why
    return partial


def mark_died(history_dir: Path, run_id: str, why: str) -> RunFinished:
    """Store what a run that died uncleanly had kept, as "died", and end its event stream."""
    from perftui.history.store import HistoryStore

    payload = died_record(history_dir, run_id, why)
    if payload is not None:
        with contextlib.suppress(Exception):  # a broken DB must not hide the run's end
            HistoryStore(history_dir).add_run(payload)
    finished = RunFinished(
        status="died",
        overall_pass=False,
        exit_code=EXIT_COULD_NOT_RUN,
        hard_stop_reason=why,
        files={},
        payload=payload,
        run_id=run_id,
    )
    return end_stream(history_dir, finished)


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


def reap(history_dir: Path, status: dict[str, Any]) -> RunFinished:
    """End a stale run (its processes are gone): keep it in history as died, unless it was stored.

    An engine whose host was killed stops on its own and stores the run as stopped; only a run
    that left nothing stored is marked "died" from its last `latest.partial.json`.
    """
    from perftui.history.store import HistoryStore, StoreError

    run_id = str(status["run_id"])
    pid = status.get("pid")
    try:
        stored: dict[str, Any] | None = HistoryStore(history_dir).get(run_id)
    except StoreError:  # not stored (or no database): the partial is all there is
        stored = None
    if stored is None:
        finished = mark_died(history_dir, run_id, f"the run's process (pid {pid}) died")
    else:
        finished = RunFinished(
            status=str(stored.get("status")),
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
    return RunFinished(
        status="died",
        overall_pass=False,
        exit_code=EXIT_COULD_NOT_RUN,
        hard_stop_reason="the run's process ended without a final event",
        files={},
        payload=None,
        run_id=run_id,
    )
