"""Every long flag of `perftui run` and `perftui capacity` (issue 22's TLS, one-off, targets,
stages, metrics and `capacity --from` among them) is documented in the README."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from perftui.cli.main import build_parser

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_run_and_capacity_flag_is_in_the_readme() -> None:
    words = set(re.findall(r"--[a-z0-9][a-z0-9-]*", README.read_text(encoding="utf-8")))
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = {
        (command, option)
        for command in ("run", "capacity")
        for action in sub.choices[command]._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help" and option not in words
    }
    assert not missing, sorted(missing)
