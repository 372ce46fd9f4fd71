"""Bad input the other suites leave out: unknown run ids. One line, exit 2, nothing written.

(Flags, profiles and targets: tests/test_cli_input.py, tests/test_profiles.py, test_targets.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from perftui.cli.main import main
from perftui.history.store import HistoryStore
from tests.engine_helpers import run_cli
from tests.faults.conftest import every_stored_byte
from tests.history_factory import make_record


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, str]:
    """A history dir holding one run; returns the dir and the run's id."""
    run_id = HistoryStore(tmp_path).add_run(make_record(runs=1, profiles=("api",), seed=1))
    return tmp_path, run_id


@pytest.mark.parametrize(
    ("refs", "unknown"),
    [(("nope-a", "nope-b"), "nope-a"), (("{id}", "nope-b"), "nope-b"), (("{id}", "9"), "9")],
    ids=["both_unknown", "candidate_unknown", "prefix_matching_nothing"],
)
def test_compare_with_unknown_run_ids(
    refs: tuple[str, str], unknown: str, stored: tuple[Path, str], capsys
) -> None:
    history, run_id = stored
    before = every_stored_byte(history)
    argv = ["--history-dir", str(history), "compare", *(r.format(id=run_id) for r in refs)]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err == f"perftui: error: no stored run, tag or baseline matches {unknown!r}\n"
    assert out == ""
    assert every_stored_byte(history) == before  # nothing written, nothing moved


def test_run_with_unknown_compare_to_fails_before_the_load(
    sim, stored: tuple[Path, str], capsys
) -> None:
    history, _ = stored
    code = run_cli(sim.port, history, "--paths", "/hello", "--compare-to", "no-such-run")
    assert code == 2
    assert sim.stats.accepts_total == 0
    assert "no-such-run" in capsys.readouterr().err
