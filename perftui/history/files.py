"""Atomic file writes and the legacy runner's output files in the history dir.

A reader (a CI script, the TUI, another perftui) must never see half a file, and a crash must
never leave one: every write goes to a temp file beside the target, is fsynced, then renamed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

PARTIAL_NAME = "latest.partial.json"
LATEST_NAME = "latest.json"
MIN_FREE_BYTES = 5 * 1024 * 1024


class HistoryDirError(OSError):
    """The history dir cannot take our files; raised before any load is sent."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Temp file (unique per process), fsync, rename, fsync the folder: old or new, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # a full disk must not keep half a temp file too
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def fsync_dir(folder: Path) -> None:
    """Make a rename durable; a folder that cannot be opened (Windows) needs no fsync."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_history_dir(folder: Path) -> None:
    """Create the folder if needed and prove we can write and fsync there, with room to spare."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".perftui-write-check-{os.getpid()}"
        with open(probe, "w") as fh:
            fh.write("ok")
            fh.flush()
            os.fsync(fh.fileno())
        probe.unlink()
    except OSError as exc:
        raise HistoryDirError(f"history dir {folder} is not writable: {exc.strerror}") from None
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise HistoryDirError(
            f"history dir {folder} has only {free // 1024} KiB free (need "
            f"{MIN_FREE_BYTES // (1024 * 1024)} MiB)"
        )


def unique_path(folder: Path, stem: str, suffix: str) -> Path:
    """`stem.suffix`, or `stem-2.suffix`… if taken: a stored run is never overwritten."""
    path = folder / f"{stem}{suffix}"
    n = 2
    while path.exists():
        path = folder / f"{stem}-{n}{suffix}"
        n += 1
    return path


def read_json(path: Path) -> Any | None:
    """The JSON in `path`, or None if it is missing or unreadable (a stale or broken file)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
