"""What the subcommands on stored runs share: a known problem as one stderr line and exit 2
(never a traceback), the store of `--history-dir`, a report written to a file or stdout.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from perftui.config import EXIT_BAD_INPUT, default_history_dir
from perftui.history.files import atomic_write_bytes

if TYPE_CHECKING:
    from perftui.history.store import HistoryStore

Handler = Callable[[argparse.Namespace], int]


def fail(message: str) -> int:
    """`message` as one stderr line; exit 2 (bad input)."""
    print(f"perftui: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def guarded(handler: Handler) -> Handler:
    """Known problems become one stderr line and exit 2, never a traceback."""

    def run(args: argparse.Namespace) -> int:
        from perftui.history.store import StoreError

        try:
            return handler(args)
        except BrokenPipeError:
            raise  # the reader left (`| head`): `main` ends quietly
        except (StoreError, ValueError, OSError) as exc:  # ValueError covers ConfigError
            return fail(str(exc))

    run.__doc__ = handler.__doc__
    return run


def open_store(args: argparse.Namespace) -> HistoryStore:
    """The store of `--history-dir` (else $PERFTUI_HISTORY_DIR or ./history)."""
    from perftui.history.store import HistoryStore

    return HistoryStore(getattr(args, "history_dir", None) or default_history_dir())


def write_or_print(text: str, output: Path | None) -> None:
    """`text` on stdout, or written atomically to `output`."""
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(output, text.encode())


def format_for(path: Path | None, given: str | None) -> str:
    """The report format asked for, else the one the file's extension names, else md."""
    if given:
        return given
    suffix = path.suffix.lstrip(".").lower() if path else ""
    return {"html": "html", "htm": "html", "json": "json"}.get(suffix, "md")


def positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
