"""The single-run lock: one run per history dir, with the holder named when a second one tries.

`filelock` takes an OS-level lock (flock), which the kernel drops when the holder dies, so a stale
lock of a killed run is taken over without any pid guessing. The holder's pid and start time go in
a side file, because filelock truncates the lock file itself when another process opens it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

from perftui.history.files import atomic_write_text

HOLDER_WAIT_S = 1.0


def _alive(pid: object) -> bool:
    """Whether `pid` names a running process (on Windows, assume so: no cheap check)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


class LockHeld(RuntimeError):
    """Another live run holds the lock; `holder` is what it wrote about itself."""

    def __init__(self, message: str, holder: dict[str, object]) -> None:
        super().__init__(message)
        self.holder = holder


class RunLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.info_path = path.with_name(path.name + ".holder.json")
        self._lock = FileLock(str(path), timeout=0)

    def holder(self) -> dict[str, object] | None:
        try:
            data = json.loads(self.info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _live_holder(self) -> dict[str, object] | None:
        """The holder's info, waiting briefly while it is missing or names a dead process.

        The winner of a race writes its info just after taking the lock; a contender reading in
        between would find nothing, or the pid of the killed run that held the lock before.
        """
        deadline = time.monotonic() + HOLDER_WAIT_S
        while True:
            info = self.holder()
            if (info and _alive(info.get("pid"))) or time.monotonic() >= deadline:
                return info
            time.sleep(0.02)

    def acquire(self, run_id: str | None = None, saving: bool = False) -> None:
        """Take the lock or raise LockHeld naming the holder (its run id when it gave one).

        `saving`: the holder is an engine whose parent died, storing its partial run; a run
        starting meanwhile waits for it rather than giving up (see `perftui.runs.owner`).
        """
        try:
            self._lock.acquire()
        except Timeout:
            info = self._live_holder() or {}
            pid = info.get("pid", "unknown")
            started = info.get("started_at", "unknown time")
            run = f"run {info['run_id']}, " if info.get("run_id") else ""
            raise LockHeld(
                f"another perftui run holds {self.path} ({run}pid {pid}, started {started})", info
            ) from None
        info: dict[str, object] = {
            "pid": os.getpid(),
            "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "argv": sys.argv,
        }
        if run_id:
            info["run_id"] = run_id
        if saving:
            info["saving"] = True
        atomic_write_text(self.info_path, json.dumps(info))  # read whole or not at all

    def release(self) -> None:
        if self._lock.is_locked:
            with contextlib.suppress(OSError):
                self.info_path.unlink()
            self._lock.release()

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
