"""The rooms' import rules, checked two ways (docs/ARCHITECTURE.md, "Rooms and import rules").

1. import-linter's contracts in pyproject.toml (`lint-imports`): who may import whom, directly or
   through other perftui modules. A copy of the package with one bad import must break them.
2. What a fresh interpreter actually loads (`sys.modules`): the core modules pull in no UI and no
   aiohttp, and the command line starts without aiohttp, scipy, textual or the analysis package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UI_AND_SIM = ("textual", "rich", "aiohttp")
HEAVY_FOR_START = ("aiohttp", "scipy", "textual", "perftui.analysis", "perftui.sim.device")
# What only a run needs (the lock's filelock, TLS, the run owner, the event stream): `--version`
# and the parser loaded them all once, +25 % start-up CPU (docs/BENCHMARKS.md, "Start-up").
RUN_MACHINERY = ("filelock", "ssl", "perftui.runs.owner", "perftui.engine.lifecycle")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("lint-imports")
    command = [str(exe)] if exe.exists() else [shutil.which("lint-imports") or "lint-imports"]
    return subprocess.run(
        [*command, "--no-cache"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def loaded_after(code: str) -> set[str]:
    """Top-level and perftui module names a fresh interpreter holds after running `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def heavy(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in modules or any(m.startswith(n + ".") for m in modules))


def test_contracts_are_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_forbidden_import_breaks_the_contracts(tmp_path: Path) -> None:
    """The check can fail: the engine importing the simulator is reported."""
    shutil.copytree(ROOT / "perftui", tmp_path / "perftui")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    gates = tmp_path / "perftui" / "engine" / "gates.py"
    gates.write_text(gates.read_text() + "\nfrom perftui.sim import device  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "never import a UI, aiohttp or the simulator BROKEN" in result.stdout
    assert "perftui.engine.gates -> perftui.sim" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        (
            "tui/screens/capacity.py",
            "from perftui.engine.lock import RunLock  # noqa",
            "only the run owner takes the run lock or starts the simulated device BROKEN",
        ),
        (
            "cli/runs.py",
            "from perftui.sim.device import serve_run  # noqa",
            "only the run owner takes the run lock or starts the simulated device BROKEN",
        ),
        (
            "cli/capacity.py",
            "from perftui.cli.main import build_parser  # noqa",
            "the command line's modules form no import cycle (main registers the others) BROKEN",
        ),
        (
            "analysis/judge.py",
            "import tomllib  # noqa",
            "analysis reads no config file (perftui.config reads it) BROKEN",
        ),
        (
            "sim/model.py",
            "import aiohttp  # noqa",
            "the simulator's model and flags load no aiohttp (its server does) BROKEN",
        ),
    ],
)
def test_the_run_owner_and_the_cli_layers_are_enforced(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    """Only perftui.runs may take the lock or start the simulator; cli/main is not imported back
    by the subcommands it registers (the import circle of issue 21)."""
    shutil.copytree(ROOT / "perftui", tmp_path / "perftui")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    path = tmp_path / "perftui" / module
    path.write_text(path.read_text() + f"\n{line}\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert contract in result.stdout


@pytest.mark.parametrize(
    "module",
    [
        "perftui.engine.suite",
        "perftui.engine.runner",
        "perftui.analysis.compare",
        "perftui.history.store",
    ],
)
def test_core_modules_load_no_ui_and_no_aiohttp(module: str) -> None:
    # httpx (the engine's control-plane client) imports its optional command line, which loads
    # rich when it is installed; that is httpx's doing, so it is loaded first and not counted.
    before = loaded_after("import httpx")
    after = loaded_after(f"import httpx\nimport {module}")
    assert heavy(after - before, UI_AND_SIM) == []
    assert module in after


def test_version_and_the_parser_load_no_heavy_module() -> None:
    """`perftui --version` and building every subcommand's flags (sim's too) start light."""
    version = loaded_after(
        "import contextlib\nfrom perftui.cli.main import main\n"
        "with contextlib.suppress(SystemExit):\n    main(['--version'])"
    )
    parser = loaded_after("from perftui.cli.main import build_parser\nbuild_parser()")
    assert "perftui.cli.main" in version and "perftui.sim.options" in parser
    assert heavy(version, HEAVY_FOR_START + RUN_MACHINERY) == []
    assert heavy(parser, HEAVY_FOR_START + RUN_MACHINERY) == []


def test_history_list_loads_no_analysis(tmp_path: Path) -> None:
    code = (
        "from perftui.cli.main import main\n"
        f"assert main(['--history-dir', {str(tmp_path)!r}, 'history', 'list']) == 0"
    )
    assert heavy(loaded_after(code), HEAVY_FOR_START) == []


def test_run_loads_neither_aiohttp_nor_scipy() -> None:
    """`perftui run`: the CLI process (what cmd_run imports) and the engine child (the suite)."""
    parent = loaded_after(
        "import perftui.cli.main, perftui.cli.printer, perftui.runs.owner, "
        "perftui.engine.runner, perftui.history.files"
    )
    assert heavy(parent, HEAVY_FOR_START) == []
    engine = loaded_after("import perftui.engine.suite")
    assert heavy(engine, ("aiohttp", "scipy", "textual", "perftui.sim")) == []


@pytest.mark.parametrize(
    ("module", "line", "shown"),
    [
        (
            "screens/history.py",
            "from perftui.history import store  # noqa",
            "perftui.tui.screens.history -> perftui.history.store",
        ),
        (
            "widgets/noise_panel.py",
            "from perftui.analysis.compare import compare_runs  # noqa",
            "perftui.tui.widgets.noise_panel -> perftui.analysis.compare",
        ),
    ],
)
def test_a_screen_or_widget_importing_the_store_breaks_the_contracts(
    tmp_path: Path, module: str, line: str, shown: str
) -> None:
    """Screens and widgets reach the store and the analysis through the TUI's services: one
    importing them (History did, before its service) is reported."""
    shutil.copytree(ROOT / "perftui", tmp_path / "perftui")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    path = tmp_path / "perftui" / "tui" / module
    path.write_text(path.read_text() + f"\n{line}\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "screens and widgets reach the history" in result.stdout and "BROKEN" in result.stdout
    assert shown in result.stdout
