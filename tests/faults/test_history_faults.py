"""The history dir: not writable, full before or during the run, a damaged database.

Disk full is a real tiny tmpfs (`mount -t tmpfs -o size=…`), which needs root with
CAP_SYS_ADMIN; where that is not allowed those tests skip and say so. A history dir that cannot
be created is a path below a regular file (a read-only dir via chmod does not stop root).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from perftui.cli.main import build_parser, main
from perftui.history.store import HistoryStore
from tests.engine_helpers import FAST, run_cli
from tests.faults.conftest import perftui_argv


def _tmpfs(where: Path, size: str) -> Path:
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tiny tmpfs here (needs root): {done.stderr.strip()}")
    return where


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """`tiny_disk("1m")`: a folder on its own tmpfs of that size, unmounted at teardown."""
    mounted: list[Path] = []

    def make(size: str) -> Path:
        mounted.append(_tmpfs(tmp_path / f"disk{len(mounted)}", size))
        return mounted[-1]

    yield make
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_history_dir_below_a_file_fails_before_any_load(sim, tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    assert run_cli(sim.port, blocker / "history") == 3
    err = capsys.readouterr().err
    assert err.startswith(f"perftui: could not run: history dir {blocker / 'history'} is not")
    assert err.count("\n") == 1
    assert sim.stats.accepts_total == 0  # refused before a single request reached the device


def test_full_disk_fails_before_any_load(sim, tiny_disk, capsys) -> None:
    history = tiny_disk("1m") / "history"
    assert run_cli(sim.port, history) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"perftui: could not run: history dir {history} has only ")
    assert "KiB free (need 5 MiB)" in err and err.count("\n") == 1
    assert sim.stats.accepts_total == 0


def test_disk_filling_up_during_the_run_is_not_a_pass(sim, tiny_disk, spawn) -> None:
    disk = tiny_disk("8m")
    history = disk / "history"
    run = spawn(
        perftui_argv(
            "127.0.0.1", history, "--port", str(sim.port), *FAST, "--paths", "/hello", "--runs", "2"
        )
    )
    run.wait_line(lambda line: "] adhoc run 1/2 burst" in line)
    with (
        open(disk / "filler", "wb", buffering=0) as filler,
        pytest.raises(OSError, match="No space"),
    ):
        while True:
            filler.write(b"\0" * 65536)
    code, out, err = run.finish(timeout=30)
    assert code == 3, err
    assert "Traceback" not in err
    assert "could not write the run files" in err
    assert "results were not stored" in err
    assert "(exit 3)" in out
    assert not (history / "latest.json").exists()
    assert [p.name for p in history.iterdir() if p.name.endswith(".tmp")] == []


def _wired(command: str) -> bool:
    subparsers = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return any(command in a.choices for a in subparsers)


CORRUPTIONS = {
    "garbage": lambda good: b"\x00\xffthis is not json",
    "truncated": lambda good: good[: len(good) // 2],
    "future_schema": lambda good: json.dumps(
        {**json.loads(good), "meta": {"1": {"schema": 99}}}
    ).encode(),
}


def test_damaged_database_is_moved_aside_never_overwritten(sim, spawn, tmp_path: Path) -> None:
    base = tmp_path / "base"
    assert run_cli(sim.port, base, "--paths", "/hello", "--tag", "before") == 0
    [before] = HistoryStore(base).list_runs()
    good = (base / "perftui.json").read_bytes()
    runs = {}
    for kind, damage in CORRUPTIONS.items():  # the three runs go at once: one dir each
        history = tmp_path / kind
        shutil.copytree(base, history)
        (history / "perftui.json").write_bytes(damage(good))
        argv = perftui_argv("127.0.0.1", history, "--port", str(sim.port), *FAST)
        runs[kind] = spawn([*argv, "--paths", "/hello", "--tag", "after"])
    for kind, run in runs.items():
        code, _out, err = run.finish(timeout=30)
        assert code == 0, (kind, err)
        history = tmp_path / kind
        [aside] = list(history.glob("perftui.json.corrupt-*"))
        assert aside.read_bytes() == CORRUPTIONS[kind](good), kind  # kept exactly as it was
        assert f"history database {history / 'perftui.json'} is unusable" in err, kind
        assert f"moved it to {aside}" in err, kind
        stored = {s["tag"]: s for s in HistoryStore(history).list_runs()}
        assert set(stored) == {"before", "after"}, kind  # rebuilt from the run documents
        assert stored["before"]["run_id"] == before["run_id"]
        assert "could not store" not in err


@pytest.mark.skipif(not _wired("history"), reason="cli.py does not wire `perftui history` yet")
def test_history_list_moves_a_damaged_database_aside(sim, tmp_path: Path, capfd) -> None:
    assert run_cli(sim.port, tmp_path, "--paths", "/hello") == 0
    [stored] = HistoryStore(tmp_path).list_runs()
    (tmp_path / "perftui.json").write_bytes(b"{truncated")
    capfd.readouterr()
    assert main(["history", "list", "--history-dir", str(tmp_path)]) == 0
    out, err = capfd.readouterr()
    [aside] = list(tmp_path.glob("perftui.json.corrupt-*"))
    assert aside.read_bytes() == b"{truncated"
    assert f"moved it to {aside}" in err
    assert stored["run_id"] in out


def test_history_dir_env_default_is_checked_like_the_flag(
    sim, tmp_path: Path, monkeypatch, capsys
) -> None:
    """$PERFTUI_HISTORY_DIR (the default when --history-dir is absent) gets the same check."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("PERFTUI_HISTORY_DIR", str(blocker / "h"))
    code = main(["run", "127.0.0.1", "--port", str(sim.port), *FAST])
    assert code == 3
    assert capsys.readouterr().err.startswith("perftui: could not run: history dir")
    assert sim.stats.accepts_total == 0
    assert not os.path.exists(blocker / "h")
