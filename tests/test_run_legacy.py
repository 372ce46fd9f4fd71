"""What the legacy runner's users rely on from `perftui run`: heartbeat lines on stdout with the
word scripts grep, `--compare-to previous` on a first run, and `--json` for scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perftui.cli.main import _legacy_argv, build_parser
from perftui.config import EXIT_MEANINGS
from tests.engine_helpers import latest, run_cli

HEARTBEAT = "heartbeat phase_running elapsed="


@pytest.mark.parametrize(
    ("argv", "host", "sim", "runs"),
    [
        (["--runs", "5", "dev.local", "--tag", "x"], "dev.local", False, 5),
        (["--sim", "--runs", "2"], None, True, 2),
        (["dev.local", "--runs", "4"], "dev.local", False, 4),
        (["run", "--runs", "5", "dev.local"], "dev.local", False, 5),
    ],
)
def test_leading_flags_parse_like_run(argv: list[str], host: str | None, sim: bool, runs: int):
    args = build_parser().parse_args(_legacy_argv(argv))
    assert (args.command, args.host, args.sim, args.runs) == ("run", host, sim, runs)


def test_global_flags_stay_global() -> None:
    assert _legacy_argv(["--version"]) == ["--version"]
    assert _legacy_argv(["--help"]) == ["--help"]
    assert _legacy_argv(["history", "list"]) == ["history", "list"]


def test_heartbeats_on_stdout_with_the_legacy_word(device, tmp_path: Path, capsys) -> None:
    assert run_cli(device.port, tmp_path, "--paths", "/hello") == 0
    out, err = capsys.readouterr()
    beats = [line for line in out.splitlines() if line.startswith(HEARTBEAT)]
    assert beats, out
    assert all(" budget=" in b and " adhoc/burst " in b and " rps=" in b for b in beats)
    assert "heartbeat" not in err
    assert "overall: PASS (exit 0)" in out


def test_first_run_compare_to_previous_is_a_note_and_exit_0(device, tmp_path: Path, capsys):
    assert run_cli(device.port, tmp_path, "--paths", "/hello", "--compare-to", "previous") == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "--compare-to previous" in line]
    assert len(notes) == 1 and notes[0].startswith("perftui: note: ") and "first" in notes[0]
    assert latest(tmp_path)["run_id"] in notes[0]  # the run was stored
    assert run_cli(device.port, tmp_path, "--paths", "/hello", "--compare-to", "previous") == 0
    assert "## perftui comparison" in capsys.readouterr().out  # the second run has one


def test_json_summary_alone_on_stdout(device, tmp_path: Path, capsys) -> None:
    code = run_cli(device.port, tmp_path, "--paths", "/hello", "--json", "--max-p95-ms", "0.001")
    out, err = capsys.readouterr()
    summary = json.loads(out)  # stdout is the JSON document and nothing else
    assert code == 1 and summary["exit_code"] == 1 and summary["overall_pass"] is False
    assert summary["exit_meaning"] == EXIT_MEANINGS[1]
    assert summary["run_id"] == latest(tmp_path)["run_id"]
    assert summary["status"] == "finished" and summary["target"].endswith(f":{device.port}")
    phase = summary["phases"]["adhoc:burst"]
    assert phase["sample_count"] == 1 and phase["p95_ms"] > 0.001 and phase["rps_ok"] > 0
    (failed,) = summary["fail_reasons"]
    assert (failed["profile"], failed["run_index"], failed["phase"]) == ("adhoc", 1, "burst")
    assert (
        failed["fail_reasons"][0].startswith("p95 ") and "ms > 0.00ms" in failed["fail_reasons"][0]
    )
    assert Path(summary["files"]["latest"]).is_file()
    assert HEARTBEAT in err and "overall: FAIL (exit 1)" in err


def test_json_with_compare_keeps_stdout_json(device, tmp_path: Path, capsys) -> None:
    assert run_cli(device.port, tmp_path, "--paths", "/hello") == 0
    capsys.readouterr()
    code = run_cli(device.port, tmp_path, "--paths", "/hello", "--json", "--compare-to", "previous")
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["compare_to"] == "previous" and summary["compare_exit_code"] == 0
    assert summary["compare_verdict"] in ("STABLE", "INCONCLUSIVE", "IMPROVEMENT")
    assert summary["compare_reference"] != summary["run_id"]
    assert code == summary["exit_code"] == 0
    assert "## perftui comparison" in err
