"""A screen's `on_mount` when the app quits while the screen is being opened.

Textual skips mounting a closing screen's widgets (`Widget.mount` returns at once when the
node is closing), but still sends it `Mount`: an `on_mount` that fills its widgets then fails
on `query_one`, and the app's last act is a traceback. Results open by themselves when a run
ends, so a `ctrl+q` at that moment did this.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from textual.screen import Screen

S = TypeVar("S", bound="Screen[Any]")


def when_composed(on_mount: Callable[[S], None]) -> Callable[[S], None]:
    """Run `on_mount` (or `on_screen_resume`, which starts History's read) only if the screen's
    widgets were mounted (none are when it is closing)."""

    @functools.wraps(on_mount)
    def guarded(screen: S) -> None:
        if screen.children:
            on_mount(screen)

    return guarded
