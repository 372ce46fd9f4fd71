"""What screens ask of the app, as Textual messages: a screen posts one, it bubbles to the app,
which handles it with `@on`. No screen calls the app's methods, so screens need not know the
app's class (and type checkers need no `type: ignore`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from perftui.engine.events import RunFinished
    from perftui.tui.setup import RunRequest


class RunRequested(Message):
    """Setup's Start: launch this run and watch it."""

    def __init__(self, request: RunRequest) -> None:
        super().__init__()
        self.request = request


class AttachRequested(Message):
    """Watch a run in progress (Setup's "runs in progress")."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id


class OpenResults(Message):
    """Show one stored run's Results."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__()
        self.record = record


class OpenCompare(Message):
    """Compare two runs: `a` the reference, `b` the candidate."""

    def __init__(self, a: dict[str, Any], b: dict[str, Any]) -> None:
        super().__init__()
        self.a = a
        self.b = b


class RunEnded(Message):
    """The run on a Live screen has ended (its last event)."""

    def __init__(self, event: RunFinished) -> None:
        super().__init__()
        self.event = event
