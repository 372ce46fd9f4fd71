"""The history/compare/trend subcommands through a real argparse parser, in process and as a
subprocess, on real files."""

from __future__ import annotations

import argparse
import csv
import fcntl
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perftui.analysis.thresholds import RegressionThresholds
from perftui.cli.compare import compare_after_run
from perftui.cli.history import register
from perftui.history.store import HistoryStore
from perftui.verdicts import compare, pick_noise
from tests.history_factory import make_record

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "legacy"
KW = {"profiles": ["python_light"], "max_samples": 2000}
CLI = """
import argparse, sys
from pathlib import Path
from perftui.cli.history import register
p = argparse.ArgumentParser()
p.add_argument("--history-dir", type=Path)
register(p.add_subparsers(dest="cmd"))
args = p.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def cli(history: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--history-dir", type=Path)
    register(parser.add_subparsers(dest="cmd"))
    args = parser.parse_args(["--history-dir", str(history), *argv])
    return args.func(args)


@pytest.fixture
def history(tmp_path: Path) -> Path:
    store = HistoryStore(tmp_path)
    store.add_run(make_record([20, 20.3, 19.9], seed=1, tag="main", **KW))
    store.add_run(make_record([20.1, 19.8, 20.2], seed=2, **KW))
    store.add_run(make_record([27, 27.4, 26.6], seed=3, tag="slow", **KW))
    return tmp_path


def test_list_show_note_baseline(history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(history, "history", "list") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["RUN", "STARTED", "TARGET"] and len(out) == 4
    assert cli(history, "history", "list", "--json", "--tag", "main") == 0
    (only,) = json.loads(capsys.readouterr().out)
    assert cli(history, "history", "note", only["run_id"][:18], "before the fix") == 0
    assert cli(history, "history", "baseline", "main", "--name", "v1") == 0
    assert cli(history, "history", "show", "baseline:v1") == 0
    shown = capsys.readouterr().out
    assert "before the fix" in shown and "baseline: v1" in shown and "| python_light:burst" in shown
    assert cli(history, "history", "list", "--failed") == 0
    assert "no stored runs match" in capsys.readouterr().out


def test_compare_formats_and_exit_codes(history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(history, "compare", "main", "slow", "--fail-on-regression") == 1
    assert "**REGRESSION**" in capsys.readouterr().out
    assert cli(history, "compare", "main", "slow") == 0
    capsys.readouterr()
    assert cli(history, "compare", "main", "previous", "--fail-on-regression") == 0
    report = history / "out" / "cmp.html"
    assert cli(history, "compare", "main", "latest", "--report", str(report)) == 0
    assert "<svg" in report.read_text() and "REGRESSION" in capsys.readouterr().out
    assert cli(history, "compare", "main", "slow", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "REGRESSION"
    assert cli(history, "compare", "main", "slow", "--threshold", "p95_ms=80",
               "--threshold", "p99_ms=80", "--threshold", "p50_ms=80",
               "--threshold", "p999_ms=80", "--threshold", "p95_tail_ms=80",
               "--fail-on-regression") == 0  # fmt: skip


def test_thresholds_from_config_file(history: Path) -> None:
    (history / "perftui.toml").write_text(
        "[thresholds]\np50_ms = 80\np95_ms = 80\np99_ms = 80\np999_ms = 80\np95_tail_ms = 80\n"
    )
    assert cli(history, "compare", "main", "slow", "--fail-on-regression") == 0
    other = history / "strict.toml"
    other.write_text("[thresholds]\np95_ms = 5\n")
    assert cli(history, "compare", "main", "slow", "--config", str(other),
               "--fail-on-regression") == 1  # fmt: skip


@pytest.mark.parametrize(
    "argv,message",
    [
        (["history", "show", "nope"], "no stored run"),
        (["history", "show", "2026"], "matches 3 runs"),
        (["compare", "main", "baseline"], "no baseline named 'default'"),
        (["compare", "main", "slow", "--threshold", "speed=3"], "unknown threshold 'speed'"),
        (["history", "import", "/does/not/exist"], "no such file"),
    ],
)
def test_errors_are_one_line_exit_2(
    history: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert cli(history, *argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_import_and_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(tmp_path, "history", "import", str(FIXTURES)) == 0
    assert "imported 4 run(s), 1 already stored" in capsys.readouterr().out
    assert cli(tmp_path, "history", "import", str(FIXTURES)) == 0
    assert "imported 0 run(s), 5 already stored" in capsys.readouterr().out
    assert cli(tmp_path, "history", "export", "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 4 + 4 + 4 + 2 and {r["status"] for r in rows} >= {"hard_stop", "stopped"}
    out = tmp_path / "h.html"
    assert cli(tmp_path, "history", "export", "--output", str(out)) == 0
    assert "<svg" in out.read_text()
    assert cli(tmp_path, "history", "export", "--format", "json", "--status", "stopped") == 0
    assert [r["status"] for r in json.loads(capsys.readouterr().out)] == ["stopped"]
    bad = tmp_path / "perf_20250101T000000Z.json"
    bad.write_text("{")
    assert cli(tmp_path, "history", "import", str(bad)) == 2


def test_list_by_build_and_the_simulated_device_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --sim run's target is a new port each time: `--target sim` finds them all."""
    store = HistoryStore(tmp_path)
    sim = make_record(20.0, seed=1, target="127.0.0.1:41979", device="sim", **KW)
    store.add_run(sim | {"build": "A"})
    store.add_run(make_record(21.0, seed=2, **KW) | {"build": "B"})
    assert cli(tmp_path, "history", "list", "--target", "sim", "--json") == 0
    assert [r["target"] for r in json.loads(capsys.readouterr().out)] == ["127.0.0.1:41979"]
    assert cli(tmp_path, "history", "list", "--build", "B", "--json") == 0
    assert [r["build"] for r in json.loads(capsys.readouterr().out)] == ["B"]
    assert cli(tmp_path, "history", "show", "build:A") == 0
    assert "- build: A\n- device: sim" in capsys.readouterr().out


def test_delete_asks_and_refuses_without_stdin(history: Path) -> None:
    base = [sys.executable, "-c", CLI, "--history-dir", str(history), "history", "delete", "slow"]
    refused = subprocess.run(base, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             cwd=ROOT)  # fmt: skip
    assert (
        refused.returncode == 2
        and "--yes" in refused.stderr
        and "Traceback" not in (refused.stderr)
    )
    assert len(HistoryStore(history).list_runs()) == 3
    kept = subprocess.run(base, input="n\n", capture_output=True, text=True, cwd=ROOT)
    assert kept.returncode == 0 and len(HistoryStore(history).list_runs()) == 3
    done = subprocess.run(base, input="y\n", capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "deleted" in done.stdout
    assert len(HistoryStore(history).list_runs()) == 2
    assert cli(history, "history", "delete", "main", "--yes") == 0


def test_compare_after_run(history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = HistoryStore(history)
    record = make_record([27, 27.1, 26.9], seed=9, **KW)
    store.add_run(record)
    assert compare_after_run(store, record, "previous", RegressionThresholds(), True, None) == 0
    assert "STABLE" in capsys.readouterr().out  # previous is the other slow run
    assert HistoryStore(history).list_runs()[0]["flagged"] == ""
    store.set_baseline(store.resolve("main")["run_id"])
    report = history / "ci.md"
    assert compare_after_run(store, record, "baseline", RegressionThresholds(), True, report) == 1
    assert report.read_text().startswith("## perftui comparison")
    # The stored comparison flags the run: it never joins a noise sample.
    flagged = HistoryStore(history).list_runs()[0]
    assert flagged["run_id"] == record["run_id"] and flagged["flagged"].startswith("regressed")
    assert compare_after_run(store, record, "baseline", RegressionThresholds(), False, None) == 0
    assert compare_after_run(store, record, "nope", RegressionThresholds(), True, None) == 2


def test_trend_degrading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = HistoryStore(tmp_path)
    for i, p95 in enumerate([20, 20.4, 19.8, 20.1, 20.2, 26, 26.5, 25.8, 26.2]):
        store.add_run(make_record(p95, runs=1, seed=i, profiles=["api"], phases=["burst"],
                                  max_samples=300))  # fmt: skip
    assert cli(tmp_path, "trend", "--metric", "p95_ms") == 0
    out = capsys.readouterr().out
    assert "api:burst p95 ms: degrading over 9 runs" in out and "mann-whitney" in out
    assert cli(tmp_path, "trend", "--metric", "rps_ok", "--last", "5", "--json") == 0
    (trend,) = json.loads(capsys.readouterr().out)
    assert trend["verdict"] == "insufficient data" and len(trend["values"]) == 5


def test_trend_follows_only_runs_set_up_like_the_newest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = HistoryStore(tmp_path)
    small = {"profiles": ["api"], "phases": ["burst"], "max_samples": 300}
    for i in range(4):  # an older setup: a shorter timeout, and much slower figures
        store.add_run(make_record(40.0, runs=1, seed=i, settings={"timeout": 1.0}, **small))
    for i in range(4, 10):
        store.add_run(make_record(20.0, runs=1, seed=i, **small))
    assert cli(tmp_path, "trend", "--metric", "p95_ms", "--json") == 0
    (trend,) = json.loads(capsys.readouterr().out)
    assert len(trend["values"]) == 6 and set(trend["values"]) == {20.0}


def test_compare_refuses_runs_set_up_differently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = HistoryStore(tmp_path)
    store.add_run(make_record([20, 20.2, 19.9], seed=1, tag="a", **KW))
    store.add_run(make_record([27, 27.3, 26.8], seed=2, tag="b", settings={"timeout": 2.0}, **KW))
    assert cli(tmp_path, "compare", "a", "b", "--fail-on-regression") == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert "set up differently" in line and "timeout: A 6.0, B 2.0" in line
    assert "timeout: A 6.0, B 2.0" in captured.out  # the report shows it at the top
    assert cli(tmp_path, "compare", "a", "b", "--fail-on-regression", "--allow-mismatch") == 1
    assert cli(tmp_path, "compare", "a", "b") == 0  # no gate asked: shown, not refused


def test_previous_and_noise_only_from_comparable_runs(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    sim = {"device": "sim", **KW}
    for i in range(4):
        store.add_run(make_record(20.0, runs=1, seed=i, target=f"127.0.0.1:{4000 + i}", **sim))
    other = make_record(
        20.0, runs=1, seed=10, target="127.0.0.1:5000", settings={"timeout": 1.0}, **sim
    )
    store.add_run(other)
    latest = make_record(20.0, runs=1, seed=11, target="127.0.0.1:5001", **sim)
    store.add_run(latest)
    previous = store.previous_of(latest)
    assert previous is not None and previous["target"] == "127.0.0.1:4003"  # a new port, same sim
    assert store.previous_of(other) is None  # nothing else has its timeout
    noise = pick_noise(store, previous, latest).records
    assert sorted(r["target"] for r in noise) == [f"127.0.0.1:{4000 + i}" for i in range(3)]
    assert pick_noise(store, other, latest).records == []
    comparison = compare(store, previous, latest, RegressionThresholds())
    p95 = next(r for r in comparison.rows if r.metric == "p95_ms" and r.path is None)
    assert comparison.noise_runs == 3 and "history: 3 runs" in p95.evidence


def test_trend_unknown_metric_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(tmp_path, "trend", "--metric", "p95") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown 'p95'" in err and "p95_ms" in err


def test_compare_to_baseline_after_a_rebuild(history: Path) -> None:
    """A damaged index is rebuilt from the run files, and the baseline mark is still there."""
    assert cli(history, "history", "baseline", "main") == 0
    (history / "perftui.json").write_bytes(b"\x00 damaged")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "perftui",
            "compare",
            "baseline",
            "latest",
            "--fail-on-regression",
            "--history-dir",
            str(history),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 1, done.stderr  # main → slow: p95 +35 %, a regression, not exit 2
    assert "is unusable" in done.stderr and "no baseline" not in done.stderr
    assert list(history.glob("perftui.json.corrupt-*"))


def test_a_closed_pipe_ends_the_output_quietly(history: Path) -> None:
    """`perftui history export --format json | head -c 100`: the reader leaves long before the
    ~70 KB are written (a 4 KB pipe, so the writer cannot finish first); perftui ends as a Unix
    tool does: no error line, status 141 (128 + SIGPIPE)."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    command = [sys.executable, "-m", "perftui", "--history-dir", str(history)]
    with os.fdopen(read_end, "rb") as from_writer, os.fdopen(write_end, "wb") as to_reader:
        writer = subprocess.Popen(
            [*command, "history", "export", "--format", "json"],
            stdout=to_reader,
            stderr=subprocess.PIPE,
            # Unbuffered, CPython drops what a short write left instead of raising (no EPIPE).
            env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
        )
        reader = subprocess.Popen(["head", "-c", "100"], stdin=from_writer, stdout=subprocess.PIPE)
    _, err = writer.communicate(timeout=30)
    head, _ = reader.communicate(timeout=30)
    assert (writer.returncode, err) == (141, b"")
    assert len(head) == 100


def test_list_by_status_died(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`history list --status died` was rejected by argparse: every RunStatus is a choice."""
    store = HistoryStore(tmp_path)
    store.add_run(make_record([20, 20.3], seed=1, **KW))
    died_id = store.add_run(make_record([20, 20.3], seed=2, status="died", **KW))
    assert cli(tmp_path, "history", "list", "--json", "--status", "died") == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == [died_id]
