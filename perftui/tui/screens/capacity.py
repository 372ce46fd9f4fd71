"""Capacity screen: the search of `perftui capacity`, drawn as a latency-vs-rate chart (p95 of
each step against its rate, the p95 gate as a line) and a table of steps, a point per step as
it finishes.

The search runs in a thread worker (`CapacityJob.run`); each step is an engine process, as for
a run, so drawing never shares a loop or a GIL with the load.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual_plotext import PlotextPlot

from perftui.engine.capacity import (
    CapacityGates,
    CapacityResult,
    EngineMeasure,
    SearchPlan,
    Step,
)
from perftui.engine.events import Event, Heartbeat
from perftui.runs.owner import RunOwner, search_capacity
from perftui.tui.messages import GoBack, SearchEnded, StepDone, StepProgress
from perftui.tui.mounting import when_composed
from perftui.tui.screens.dialogs import ConfirmDialog
from perftui.tui.session import SessionError, SimDevice
from perftui.tui.workers import ShowsWorkerErrors

STEP_COLUMNS = ("#", "kind", "rate", "achieved", "p50", "p95", "p99", "err %", "verdict")


class Job(Protocol):
    gates: CapacityGates

    def run(self, on_step: Any, on_beat: Any = None) -> CapacityResult: ...

    def stop(self) -> None: ...


class CapacityJob:
    """One search from the TUI, owned by the run owner (lock, the app's sim if chosen, stored
    record); the screen only hears its steps and heartbeats."""

    def __init__(
        self,
        request: Any,
        gates: CapacityGates,
        plan: SearchPlan,
        sim: SimDevice | None = None,
    ) -> None:
        self.config = request.config
        self.use_sim = request.use_sim
        self.gates = gates
        self.plan = plan
        self.sim = sim
        self.measure = EngineMeasure(self.config, self._on_event)
        self.on_beat: Callable[[Heartbeat], object] | None = None
        self.run_id: str | None = None

    def _on_event(self, event: Event) -> None:
        if isinstance(event, Heartbeat) and self.on_beat is not None:
            self.on_beat(event)

    def stop(self) -> None:
        self.measure.stop()

    def run(self, on_step: Any, on_beat: Any = None) -> CapacityResult:
        """Blocking (call from a worker); raises SessionError when the search cannot start.
        `on_beat` hears the running step's heartbeats."""
        self.on_beat = on_beat
        owner = RunOwner(
            self.config, device=self.sim if self.use_sim else None, say=lambda _text: None
        )
        result, self.run_id = search_capacity(owner, self.measure, self.gates, self.plan, on_step)
        return result


class CapacityScreen(Screen[None], ShowsWorkerErrors):
    """Latency p95 against rate while the search climbs; the answer when it is confirmed."""

    CSS_PATH = "capacity.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "stop", "Stop search", id="capacity.stop", tooltip="stop the search"),
        Binding("escape", "close", "Back", id="capacity.close"),
    ]

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job
        self.steps: list[Step] = []
        self.result: CapacityResult | None = None
        self.error: str | None = None

    @property
    def running(self) -> bool:
        return self.result is None and self.error is None

    def compose(self) -> ComposeResult:
        gates = self.job.gates
        yield Static(
            f"[b]capacity search[/b] · gates: p95 ≤ {gates.max_p95_ms:g} ms, errors ≤ "
            f"{gates.max_error_rate:g} %, achieved ≥ {gates.min_achieved_ratio:.0%} of the rate",
            id="cap-title",
        )
        yield Static("starting…", id="cap-status")
        yield PlotextPlot(id="cap-chart")
        yield DataTable(id="cap-steps", cursor_type="row", zebra_stripes=True)
        yield Static("", id="cap-detail")
        yield Footer()

    @when_composed
    def on_mount(self) -> None:
        self.query_one("#cap-steps", DataTable).add_columns(*STEP_COLUMNS)
        self._draw()
        self._search()

    @work(thread=True, exclusive=True, group="capacity", exit_on_error=False)
    def _search(self) -> None:
        """The search, off the UI loop; it answers with messages (in order: steps, the end)."""
        try:
            result = self.job.run(
                lambda step: self.post_message(StepDone(step)),
                lambda beat: self.post_message(StepProgress(beat)),
            )
        except SessionError as exc:
            self.post_message(SearchEnded(None, str(exc)))
            return
        self.post_message(SearchEnded(result))

    @on(StepDone)
    def _step_done(self, message: StepDone) -> None:
        self.add_step(message.step)

    @on(StepProgress)
    def _step_progress(self, message: StepProgress) -> None:
        self.beat(message.beat)

    @on(SearchEnded)
    def _search_ended(self, message: SearchEnded) -> None:
        if message.result is None:
            self.failed(message.error)
        else:
            self.finish(message.result)

    # ----- state --------------------------------------------------------------------------

    def add_step(self, step: Step) -> None:
        """A step finished: one more point on the chart, one more row in the table."""
        self.steps.append(step)
        r = step.result

        def cell(value: float | None, spec: str = ".1f") -> str:
            return "-" if value is None else format(value, spec)

        verdict = "pass" if step.passed else "FAIL " + "; ".join(step.reasons)
        self.query_one("#cap-steps", DataTable).add_row(
            str(step.index),
            step.kind,
            f"{r.rate:g}",
            cell(r.achieved_rps),
            cell(r.p50_ms),
            cell(r.p95_ms),
            cell(r.p99_ms),
            cell(r.error_rate, ".2f"),
            verdict + (" [client-bound]" if r.client_bound else ""),
            key=str(len(self.steps) - 1),
        )
        self.query_one("#cap-status", Static).update(f"running · {step.line()}")
        self._draw()

    @on(DataTable.RowHighlighted, "#cap-steps")
    def _show_step(self, event: DataTable.RowHighlighted) -> None:
        """The step under the cursor whole: a failed step's reasons run past 80 columns."""
        if event.row_key.value is not None:
            line = self.steps[int(event.row_key.value)].line()
            self.query_one("#cap-detail", Static).update(Text(line))

    def beat(self, beat: Heartbeat) -> None:
        """The running step so far, so a 15 s confirm step is not a frozen screen."""
        if not self.running:
            return
        p95 = "-" if beat.p95_ms is None else f"{beat.p95_ms:.1f}"
        self.query_one("#cap-status", Static).update(
            f"running · step {len(self.steps) + 1}: {beat.elapsed:.0f}/{beat.duration:g} s, "
            f"{beat.rps_now:.0f} req/s now, p95 so far {p95} ms"
        )

    def finish(self, result: CapacityResult) -> None:
        self.result = result
        if result.capacity_rps is not None:
            text = f"[b]capacity {result.capacity_rps:g} req/s[/b] ({result.status})"
        else:
            text = f"[b]no capacity[/b] ({result.status})"
        self.query_one("#cap-status", Static).update(
            text + (f": {result.note}" if result.note else "")
        )
        self._draw()

    def failed(self, message: str) -> None:
        self.error = message
        self.query_one("#cap-status", Static).update(f"[b]could not run[/b]: {message}")

    def _draw(self) -> None:
        widget = self.query_one("#cap-chart", PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        measured = sorted(
            (s for s in self.steps if s.result.p95_ms is not None), key=lambda s: s.result.rate
        )
        if measured:
            plt.plot(
                [s.result.rate for s in measured],
                [s.result.p95_ms for s in measured],
                marker="braille",
                label="p95",
            )
            for passed, marker in ((True, "o"), (False, "x")):
                chosen = [s for s in measured if s.passed is passed]
                if chosen:
                    plt.scatter(
                        [s.result.rate for s in chosen],
                        [s.result.p95_ms for s in chosen],
                        marker=marker,
                        label="pass" if passed else "fail",
                    )
            plt.hline(self.job.gates.max_p95_ms)
        capacity = self.result.capacity_rps if self.result else None
        if capacity is not None:
            plt.vline(capacity)
        plt.title("p95 latency (ms) vs rate (req/s)")
        plt.xlabel("req/s")
        plt.ylabel("p95 ms")
        widget.refresh()

    # ----- actions ------------------------------------------------------------------------

    def action_stop(self) -> None:
        if self.running:
            self.job.stop()
            self.query_one("#cap-status", Static).update("stopping after this step…")

    def action_close(self) -> None:
        if not self.running:
            self.post_message(GoBack(self))
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.action_stop()

        self.app.push_screen(
            ConfirmDialog("A capacity search is going. Stop it (steps so far are kept)?", "Stop"),
            answer,
        )
