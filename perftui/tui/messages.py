"""The TUI's messages, as dataclasses (Textual initialises them in `__post_init__`).

What screens ask of the app: a screen posts one, it bubbles to the app, which handles it with
`@on`; no screen calls the app's methods, so screens need not know the app's class (nor silence
a type checker about it). What workers answer: a thread worker posts its result to the screen
that started it (`post_message` is thread-safe, and a closed screen takes none), instead of
calling into the UI loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from textual.screen import Screen

    from perftui.engine.capacity import CapacityResult, Step
    from perftui.engine.events import Event, Heartbeat, RunFinished
    from perftui.engine.schema import IndexRow, LiveStatus, RunRecord
    from perftui.tui.screens.setup import RunRequest
    from perftui.tui.services import Attach, CompareView, Comparison, StartInfo
    from perftui.tui.session import ProbeAnswer

# ----- screens → app ------------------------------------------------------------------------


@dataclass
class RunRequested(Message):
    """Setup's Start: launch this run and watch it."""

    request: RunRequest


@dataclass
class AttachRequested(Message):
    """Watch a run in progress (Setup's "runs in progress")."""

    run_id: str


@dataclass
class OpenResults(Message):
    """Show one stored run's Results."""

    record: RunRecord


@dataclass
class OpenRun(Message):
    """Show a stored run's Results; its record is read off the UI loop."""

    run_id: str


@dataclass
class OpenCompare(Message):
    """Compare two runs: `a` the reference, `b` the candidate."""

    a: RunRecord
    b: RunRecord


@dataclass
class RunEnded(Message):
    """The run on a Live screen has ended (its last event)."""

    event: RunFinished


@dataclass
class GoBack(Message):
    """Leave this screen: back to the screen (mode) it was opened from."""

    screen: Screen[None]


# ----- workers → the app (history reads) ----------------------------------------------------


@dataclass
class StartRead(Message):
    """What start-up reads of the history (Setup waits for it)."""

    info: StartInfo


@dataclass
class Attached(Message):
    """A run asked for by id, found: going on (its config) or ended (its record), or neither."""

    run_id: str
    found: Attach


@dataclass
class EndedRead(Message):
    """The record of the run that just ended on the Live screen, as stored."""

    record: RunRecord
    status: str


# ----- workers → their screen ---------------------------------------------------------------


@dataclass
class ProbeAnswered(Message):
    """The probe's answer, and what it probed (None: the simulated device did not start)."""

    answer: ProbeAnswer
    probed: tuple[str, str] | None


@dataclass
class EventsArrived(Message):
    """A batch of the run's events, read by the worker that follows the events file; every
    batch is kept (each holds events the state needs)."""

    events: list[Event]


@dataclass
class CouldNotStart(Message):
    """The run could not start (lock held, history dir, device); one line."""

    reason: str


@dataclass
class Compared(Message):
    """A comparison made in a worker, of A and B as they were (`swapped` or not) when asked."""

    view: CompareView
    swapped: bool


@dataclass
class PreviousCompared(Message):
    """A run's previous comparable run (None: there is none) and their comparison."""

    previous: RunRecord | None
    comparison: Comparison | None


@dataclass
class HistoryRead(Message):
    """History's runs (summaries, newest first) and baseline marks."""

    summaries: list[IndexRow]
    baselines: dict[str, str]


@dataclass
class LockWaited(Message):
    """A history write found the store's file lock held by another process: it waits."""


@dataclass
class InProgressRead(Message):
    """The runs going on in the history dir, newest first."""

    runs: list[LiveStatus]


@dataclass
class HistoryChanged(Message):
    """A change to the history was written; `said` is its line for the user ("" for none)."""

    said: str


@dataclass
class StepDone(Message):
    """A step of the capacity search has finished."""

    step: Step


@dataclass
class StepProgress(Message):
    """The running capacity step so far; only the newest one is worth drawing."""

    beat: Heartbeat

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StepProgress)


@dataclass
class SearchEnded(Message):
    """The capacity search's result, or why it could not run."""

    result: CapacityResult | None
    error: str = ""
