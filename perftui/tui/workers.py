"""A worker's failure is a line on the screen, never the app's end.

Every worker of the TUI is started with `exit_on_error=False`; the screen (or widget) that
started it mixes this in, so an exception the worker did not expect is shown as a notification
naming the worker and the error, and the app stays up.
"""

from __future__ import annotations

from textual.dom import DOMNode
from textual.worker import Worker, WorkerState


class ShowsWorkerErrors(DOMNode):
    """`Worker.StateChanged` does not bubble: it reaches the node that started the worker.

    Mix it in after the Textual base (`class X(Screen[None], ShowsWorkerErrors)`): Textual's CSS
    follows a class's first base, and first it would hide Screen's (or App's) default styles."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            self.notify(
                failure_line(event.worker), title="something failed", severity="error", timeout=15
            )


def failure_line(worker: Worker[object]) -> str:
    error = worker.error
    what = worker.name or worker.group
    return f"{what}: {type(error).__name__}: {error}" if error else f"{what} failed"
