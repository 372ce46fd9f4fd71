"""Live run screen: progress, heartbeat strip, per-phase sparklines, per-path table, errors,
device heap and the event log, fed by a thread worker that follows the run's events file.

The run belongs to its own detached process (`session.RunSession`, launched through the run
owner or attached to). The worker reads its events file, never the UI loop; it posts the events
in batches (`EventsArrived`) at most `UI_PERIOD_S` apart, and each batch updates each widget once
(cells, not whole tables), inside one `batch_update`, and a sparkline only when its own data
changed, so the screen keeps up at any request rate. A run of hours keeps its memory flat: the
recent heartbeats are bounded deques, and the whole run is folded into a fixed number of buckets
(`series.WholeRunSeries`), so minute 1 of an 8-hour soak is still on screen at hour 8.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Label, ProgressBar, RichLog, Sparkline

from perftui.config import PHASES, RunConfig
from perftui.engine.events import (
    Event,
    Heartbeat,
    Log,
    PhaseFinished,
    PhaseStarted,
    RunFinished,
    RunStarted,
    Stall,
    Telemetry,
)
from perftui.engine.gates import RunningSlope
from perftui.engine.schema import JsonObject
from perftui.tui.messages import CouldNotStart, EventsArrived, GoBack, RunEnded
from perftui.tui.mounting import when_composed
from perftui.tui.screens.dialogs import ConfirmDialog
from perftui.tui.session import RunSession, SessionError, SimDevice
from perftui.tui.view import fmt
from perftui.tui.view.series import WholeRunSeries
from perftui.tui.widgets.ramp_chart import RampChart
from perftui.tui.workers import ShowsWorkerErrors

UI_PERIOD_S = 0.1  # at most 10 screen updates a second, whatever the event rate
SPARK_POINTS = 600  # heartbeat windows kept per series (2.5 min at 4/s; older ones scroll off)
WHOLE_STEP = 0.25  # redraw the whole-run row when run time moved a quarter of a bucket (≥ 0.5 s)
WHOLE_FIELDS = {"p95": "max", "rps": "mean", "target": "mean", "errors": "sum", "heap": "last"}
LOG_LINES = 400
PATH_WIDTH = 28
NARROW_PATH = 20  # the path column under 100 columns: p99 then shows on 80 (status after it)
PATH_COLUMNS = {
    "path": PATH_WIDTH,
    "requests": 9,
    "rps": 8,
    "err %": 7,
    "p50": 6,
    "p95": 6,
    "p99": 6,
    "status": 16,
}
KIND_LABEL = {
    "timeout": "timeout",
    "refused": "refused",
    "reset": "reset",
    "http_4xx": "4xx",
    "http_5xx": "5xx",
    "other": "other",
}


def _heap_free(memory: JsonObject | None) -> int | None:
    heap = (memory or {}).get("heap")
    value = heap.get("internal_free") if isinstance(heap, dict) else None
    return value if isinstance(value, int) else None


def path_rps(requests: int, elapsed: float) -> float | None:
    """A path's rate over the phase so far: its count ÷ the phase's elapsed time, the same two
    numbers its row shows (a rate from the last heartbeat's window alone disagreed with them)."""
    return requests / elapsed if elapsed > 0 else None


def _status_text(counts: dict[str, int]) -> str:
    return " ".join(f"{code}×{n}" for code, n in sorted(counts.items())) or "-"


class LiveText(Widget):
    """A fixed-size line of markup that repaints without asking for a new layout.

    `Static.update` re-flows the whole screen each time (its size might change); four heartbeat
    lines doing that several times a second cost more CPU than everything else drawn here.
    """

    DEFAULT_CSS = "LiveText { height: 1; }"
    text: reactive[str] = reactive("", layout=False)

    def __init__(self, text: str = "", *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.text = text

    def update(self, text: str) -> None:
        self.text = text

    def render(self) -> str:
        return self.text


class PathTable(DataTable):
    """The per-path table, with render caches sized to what one screen of it can show.

    DataTable keys its cell, row and line caches by an update counter that every `update_cell`
    bumps, so after a heartbeat every cached render is dead, yet stays until its LRU cache (10 000
    cells, 1 000 rows and lines) is full. A viewer redrawing the table several times a second
    filled those over its first minutes: 3 MB of RSS growth per viewer that looked like a leak.
    Sized to two screens of rows, the caches still serve every redraw without an update (scroll,
    hover) and are full, and flat, within seconds.
    """

    CACHE_ROWS = 128  # two screens of a tall terminal

    def on_mount(self) -> None:
        cells = self.CACHE_ROWS * len(PATH_COLUMNS)
        for cache, size in (
            (self._cell_render_cache, cells),
            (self._row_render_cache, self.CACHE_ROWS),
            (self._row_renderable_cache, self.CACHE_ROWS),
            (self._line_cache, self.CACHE_ROWS),
        ):
            cache.maxsize = size


class LiveScreen(Screen[None], ShowsWorkerErrors):
    """Watch a run; `a` aborts after a confirmation and keeps the partial run."""

    CSS_PATH = "live.tcss"
    # Side by side only from 150 columns: the path table alone needs about 104.
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (150, "-wide")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "a",
            "abort",
            "Abort run",
            id="live.abort",
            tooltip="abort (asks; the partial run is kept)",
        ),
        Binding(
            "escape",
            "back",
            "Back",
            show=False,
            id="live.back",
            tooltip="back when the run has ended; during a run, abort (asks)",
        ),
    ]

    def __init__(
        self,
        config: RunConfig,
        use_sim: bool = False,
        autostart: bool = True,
        session: RunSession | None = None,
        sim: SimDevice | None = None,
    ) -> None:
        """`session`: one to follow (`perftui attach`); by default a new detached run (on
        `sim`, the app's simulated device, when `use_sim`)."""
        self.sim = sim  # the app's simulated device, lent to a run on it
        super().__init__()
        self.config = config
        self.use_sim = use_sim
        self.autostart = autostart
        self.path_width = PATH_WIDTH
        self.session: RunSession | None = session
        self.plan = [
            (p.name, run, phase, config.phase_settings(p, phase).duration)
            for p in config.profiles
            for run in range(1, config.runs + 1)
            for phase in PHASES
            if config.phase_settings(p, phase).duration > 0
        ]
        self.sparks: dict[str, tuple[deque[float], deque[float]]] = {
            phase: (deque(maxlen=SPARK_POINTS), deque(maxlen=SPARK_POINTS)) for phase in PHASES
        }
        self.whole = WholeRunSeries(WHOLE_FIELDS)
        # A rate ramp gets its own chart of target and achieved (`RampChart`), not a sparkline.
        self.staged = bool(config.stages)
        self.heap_fit = RunningSlope()  # free heap over run time, for the slope in B/h
        self._phase_offset = 0.0  # run time at which the current phase began
        self._prev_beat: Heartbeat | None = None  # the phase's previous heartbeat
        self._whole_drawn = (-1, -1.0)  # (series version, run time) last drawn
        self._spark_dirty: set[str] = set()  # phases whose recent series changed
        self.stalls = 0
        self._stall_pending: dict[str, float] = {}  # phase → longest stall since the last beat
        self.heap_before: int | None = None
        self.heap_now: int | None = None
        self.phase: PhaseStarted | None = None
        self.beat: Heartbeat | None = None
        self.beats = 0
        self.refreshes = 0  # batches that updated the screen (the benchmark reads this)
        self.finished: RunFinished | None = None
        self.stopping = False
        self._dirty: set[str] = set()
        self._finished_paths: dict[str, Any] = {}
        self._finished_elapsed = self._finished_duration = 0.0

    # ----- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield LiveText("starting…", id="where")
        with Horizontal(id="progress-row"):
            yield ProgressBar(total=max(1, len(self.plan)), show_eta=False, id="progress")
            yield LiveText("", id="eta")
        yield LiveText("○ waiting for the first heartbeat", id="beat")
        with Vertical(id="sparks"):
            for phase in PHASES:
                with Horizontal(classes="spark-row"):
                    yield Label(f"{phase:5s} p50", classes="spark-label")
                    yield Sparkline([], id=f"spark-{phase}-p50", classes="spark p50")
                    yield LiveText("-", id=f"spark-{phase}-p50-last", classes="spark-last")
                    yield Label("p95", classes="spark-label short")
                    yield Sparkline([], id=f"spark-{phase}-p95", classes="spark p95")
                    yield LiveText("-", id=f"spark-{phase}-p95-last", classes="spark-last")
            with Horizontal(classes="spark-row", id="whole-row"):
                yield Label("run   p95", classes="spark-label")
                yield Sparkline([], id="whole-p95", classes="spark p95")
                yield Label("rps", classes="spark-label short")
                yield Sparkline([], id="whole-rps", classes="spark p50")
                # Open loop (a rate or a ramp): the target beside the achieved rate, same scale.
                yield Label("tgt", id="whole-target-label", classes="spark-label short")
                yield Sparkline([], id="whole-target", classes="spark p95")
                yield Label("err", classes="spark-label short")
                yield Sparkline([], id="whole-errors", classes="spark err")
                yield LiveText("-", id="whole-span", classes="whole-span")
        yield RampChart(id="ramp-chart")
        with Horizontal(id="middle"):
            yield PathTable(id="paths", cursor_type="none", zebra_stripes=True)
            with Vertical(id="side"):
                yield LiveText("errors: -", id="errors")
                with Horizontal(id="heap-row"):
                    yield LiveText("heap: -", id="heap")
                    yield Sparkline([], id="heap-trend")
        yield RichLog(id="log", max_lines=LOG_LINES, wrap=False, markup=True)
        yield Footer()

    @when_composed
    def on_mount(self) -> None:
        for widget in ("#whole-target", "#whole-target-label"):
            self.query_one(widget).display = False  # until a heartbeat names a target
        table = self.query_one("#paths", DataTable)
        if self.app.size.width < 100:
            self.path_width = NARROW_PATH
        for name, width in PATH_COLUMNS.items():
            table.add_column(name, key=name, width=self.path_width if name == "path" else width)
        self._update_where()
        if self.autostart:
            self.session = self.session or RunSession(
                self.config,
                self.use_sim,
                self.sim,
            )
            self._pump()

    # ----- the engine side (thread worker) -----------------------------------------------

    @work(thread=True, exclusive=True, group="engine", exit_on_error=False)
    def _pump(self) -> None:
        """Read the engine's events off the UI loop; hand them over in ≤ 10 Hz batches."""
        session = self.session
        assert session is not None
        try:
            session.start()
        except SessionError as exc:
            self.post_message(CouldNotStart(str(exc)))
            return
        batch: list[Event] = []
        last = time.monotonic()
        try:
            while not session.finished:
                event = session.poll(UI_PERIOD_S)
                if event is not None:
                    batch.append(event)
                now = time.monotonic()
                if batch and (now - last >= UI_PERIOD_S or session.finished):
                    # Every batch, in order (no replacing: each holds events the state needs).
                    if not self.post_message(EventsArrived(batch)):
                        return  # the screen went away: the run goes on without this viewer
                    batch, last = [], now
        finally:
            session.close()

    @on(EventsArrived)
    def _events_arrived(self, message: EventsArrived) -> None:
        self.apply(message.events)

    @on(CouldNotStart)
    def _could_not_start(self, message: CouldNotStart) -> None:
        self.notify(message.reason, title="could not run", severity="error", timeout=10)
        self.post_message(GoBack(self))

    # ----- state updates -----------------------------------------------------------------

    def apply(self, events: list[Event]) -> None:
        """Fold a batch of events into the state, then redraw what changed, once."""
        for event in events:
            self._fold(event)
        if "beat" in self._dirty:
            self.refreshes += 1
        self._redraw()
        final = next((e for e in events if isinstance(e, RunFinished)), None)
        if final is not None:
            self.post_message(RunEnded(final))

    def _log(self, text: str) -> None:
        self.query_one("#log", RichLog).write(text)

    def _fold(self, event: Event) -> None:
        match event:
            case RunStarted():
                self._log(
                    f"run of {', '.join(event.profiles)} × {event.runs} on {event.target}: "
                    f"{event.total_phases} phase(s)"
                )
            case PhaseStarted():
                if self.beat is not None:
                    self._phase_offset += self.beat.elapsed
                self.phase = event
                self.beat = None
                self._prev_beat = None
                self._finished_paths = {}
                self._dirty.discard("paths-final")
                self._dirty |= {"where", "paths-reset", "progress", "ramp"}
                self.query_one(RampChart).start(self._rate_ramp(event))
                self._log(
                    f"[b]{event.ordinal}/{event.total_phases}[/b] {event.profile} run "
                    f"{event.run_index} {event.phase}: {event.clients} clients, "
                    f"{event.duration:g} s (watchdog {event.budget_s:g} s)"
                )
            case Heartbeat():
                self._fold_beat(event)
            case Stall():
                self._fold_stall(event)
            case Telemetry():
                free = _heap_free(event.memory)
                if free is not None:
                    if self.heap_before is None:
                        self.heap_before = free
                    self.heap_now = free
                    t = self.run_time()
                    self.heap_fit.add(t, free)
                    self.whole.add(t, {"heap": free}, 0.0)
                    self._dirty |= {"heap", "whole-now"}
            case PhaseFinished():
                self._fold_finished(event)
            case Log():
                style = {"warning": "yellow", "error": "b red"}.get(event.level)
                self._log(f"[{style}]{event.message}[/]" if style else event.message)
            case RunFinished():
                self.finished = event
                self._dirty |= {"where", "progress"}
                self._log(f"[b]run {event.status}[/b] (exit {event.exit_code})")

    def _rate_ramp(self, event: PhaseStarted) -> tuple[tuple[float, float], ...] | None:
        """The stages of the phase starting, if it is a ramp of req/s (a ramp of clients has
        no rate target to draw)."""
        profile = next((p for p in self.config.profiles if p.name == event.profile), None)
        if profile is None:
            return None
        settings = self.config.phase_settings(profile, event.phase)
        return settings.stages if settings.stages_unit == "rps" else None

    def run_time(self) -> float:
        """Seconds of load since the run's first phase began (phases end to end, no pauses):
        the whole-run axis, the same for a viewer that replays the run's events late."""
        return self._phase_offset + (self.beat.elapsed if self.beat else 0.0)

    def _fold_beat(self, beat: Heartbeat) -> None:
        prev = self._prev_beat
        self.beat = self._prev_beat = beat
        self.beats += 1
        p50s, p95s = self.sparks[beat.phase]
        stall_ms = self._stall_pending.pop(beat.phase, None)
        if beat.window_p50_ms is not None and beat.window_p95_ms is not None:
            p50s.append(beat.window_p50_ms)
            # A stall is drawn into the p95 line as a spike of its length: the requests that
            # were outstanding waited at least that long, and the spike sits where it happened.
            p95s.append(max(beat.window_p95_ms, stall_ms or 0.0))
        elif stall_ms is not None:
            p50s.append(p50s[-1] if p50s else 0.0)
            p95s.append(stall_ms)
        dt = beat.elapsed - prev.elapsed if prev else beat.elapsed
        window_p95 = beat.window_p95_ms
        if stall_ms is not None:
            window_p95 = max(window_p95 or 0.0, stall_ms)
        self.whole.add(
            self.run_time(),
            {
                "p95": window_p95,
                "rps": beat.rps_now,
                "target": beat.target_rps,
                "errors": beat.errors - (prev.errors if prev else 0),
            },
            max(dt, 0.0),
        )
        if beat.ramp:
            self.query_one(RampChart).add(beat.elapsed, beat.rps_now, max(dt, 0.0))
        self._spark_dirty.add(beat.phase)
        self._dirty |= {"where", "beat", "sparks", "paths", "progress", "whole", "ramp"}

    def _fold_stall(self, stall: Stall) -> None:
        self.stalls += 1
        pending = self._stall_pending.get(stall.phase, 0.0)
        self._stall_pending[stall.phase] = max(pending, stall.duration_ms)
        self._log(
            f"[b red]⚠ stall[/] {stall.duration_ms / 1000:.2f} s at {stall.at_s:.1f} s "
            f"({stall.profile} run {stall.run_index} {stall.phase}): requests were outstanding "
            "and none completed"
        )
        self._dirty |= {"beat", "where"}

    def _fold_finished(self, event: PhaseFinished) -> None:
        report = event.report
        verdict = (
            "[b green]PASS[/]"
            if event.passed
            else "[b red]FAIL[/]: " + "; ".join(event.fail_reasons)
        )
        self._log(
            f"  done {event.profile}/{event.phase}: {report.get('requests_total', 0):,} req, "
            f"rps {fmt.num(report.get('rps_ok'))}, p95 {fmt.ms(report.get('p95_ms'))} ms "
            f"→ {verdict}"
        )
        self._finished_paths = report.get("path_metrics") or {}
        self._finished_elapsed = float(report.get("elapsed") or 0.0)
        self._finished_duration = float(report.get("duration") or 0.0)
        self._dirty |= {"paths-final", "progress", "ramp-end"}

    # ----- drawing -----------------------------------------------------------------------

    def _redraw(self) -> None:
        dirty, self._dirty = self._dirty, set()
        with self.app.batch_update():
            self._redraw_parts(dirty)

    def _redraw_parts(self, dirty: set[str]) -> None:
        if "where" in dirty:
            self._update_where()
        if "progress" in dirty:
            self._update_progress()
        if "beat" in dirty:
            self._update_beat()
        if "sparks" in dirty:
            self._update_sparks()
        if "paths-reset" in dirty:
            self._reset_paths()
        if "paths" in dirty:
            self._update_paths()
        if "paths-final" in dirty:
            self._final_paths()
        if "heap" in dirty:
            self._update_heap()
        if "whole" in dirty or "whole-now" in dirty:
            self._update_whole(force="whole-now" in dirty)
        if "ramp" in dirty or "ramp-end" in dirty:
            self.query_one(RampChart).draw(force="ramp-end" in dirty)

    def _update_where(self) -> None:
        where = self.query_one("#where", LiveText)
        if self.finished is not None:
            where.update(f"[b]run {self.finished.status}[/b] · opening results…")
            return
        if self.phase is None:
            where.update(f"[b]{self.config.target}[/b] · starting…")
            return
        p = self.phase
        elapsed = self.beat.elapsed if self.beat else 0.0
        stop = " · [b yellow]stopping…[/]" if self.stopping else ""
        bound = ""
        if self.beat is not None and self.beat.client_bound:
            bound = " · [b reverse red] client-bound: these numbers describe perftui [/]"
        where.update(
            f"[b]{p.profile}[/b] · run {p.run_index}/{self.config.runs} · [b]{p.phase}[/b] · "
            f"{elapsed:.1f}/{p.duration:g} s · watchdog budget {p.budget_s:g} s{bound}{stop}"
        )

    def _update_progress(self) -> None:
        done, remaining = self.progress()
        bar = self.query_one("#progress", ProgressBar)
        bar.update(progress=done)
        ordinal = self.phase.ordinal if self.phase else 0
        self.query_one("#eta", LiveText).update(
            f"phase {ordinal}/{len(self.plan)} · ETA ≈ {fmt.duration(remaining)}"
        )

    def progress(self) -> tuple[float, float]:
        """(phases done, as a fraction; seconds left) from the plan and the current phase."""
        if self.finished is not None:
            return float(len(self.plan)), 0.0
        if self.phase is None:
            return 0.0, sum(d for *_, d in self.plan)
        index = self.phase.ordinal - 1
        duration = max(self.phase.duration, 1e-9)
        elapsed = min(self.beat.elapsed if self.beat else 0.0, duration)
        later = sum(d for *_, d in self.plan[index + 1 :])
        return index + elapsed / duration, later + duration - elapsed

    def _update_beat(self) -> None:
        b = self.beat
        if b is None:
            return
        tick = "[b green]●[/]" if self.beats % 2 else "[b]○[/]"
        errors = f"[b red]{b.errors:,}[/]" if b.errors else "0"
        rate = f"rps {b.rps_now:,.1f}"
        if b.target_rps:
            # A ramp's target moves: the last window's rate is what answers it.
            achieved = b.rps_now if b.ramp else b.requests / b.elapsed if b.elapsed > 0 else 0.0
            style = "b" if abs(achieved - b.target_rps) <= 0.03 * b.target_rps else "b red"
            rate = f"rps [{style}]{achieved:,.1f}[/]/{b.target_rps:,.0f} target"
        stalls = max(b.stalls, self.stalls)
        stall = f"  [b red]⚠ {stalls} stall{'s' if stalls > 1 else ''}[/]" if stalls else ""
        self.query_one("#beat", LiveText).update(
            f"{tick} beat {self.beats:,}  req {b.requests:,}  ok {b.ok:,}  err {errors}  "
            f"{rate}  p50 {fmt.ms(b.p50_ms)}  p95 {fmt.ms(b.p95_ms)}  "
            f"p99 {fmt.ms(b.p99_ms)} ms{stall}"
        )
        kinds = " · ".join(
            f"{KIND_LABEL.get(k, k)} [b red]{n}[/]" if n else f"{KIND_LABEL.get(k, k)} 0"
            for k, n in b.errors_by_kind.items()
            if k in KIND_LABEL or n  # a failed response check ("check") only once one failed
        )
        self.query_one("#errors", LiveText).update(
            f"errors: {kinds}\nstatus: {_status_text(b.status_counts)}"
        )

    def _update_sparks(self) -> None:
        changed, self._spark_dirty = self._spark_dirty, set()
        for phase in changed:
            for name, values in zip(("p50", "p95"), self.sparks[phase], strict=True):
                if values:
                    self.query_one(f"#spark-{phase}-{name}", Sparkline).data = list(values)
                    self.query_one(f"#spark-{phase}-{name}-last", LiveText).update(
                        f"{fmt.ms(values[-1])} ms"
                    )

    def _reset_paths(self) -> None:
        table = self.query_one("#paths", DataTable)
        table.clear()
        shown = self.phase.profile if self.phase is not None else None
        profile = next(p for p in self.config.profiles if p.name == shown)
        for path in dict.fromkeys(profile.paths):
            cells = (fmt.clip(path, self.path_width), "0", "-", "-", "-", "-", "-", "-")
            table.add_row(*cells, key=path)

    def _update_paths(self) -> None:
        if self.beat is None:
            return
        table = self.query_one("#paths", DataTable)
        for path, counts in self.beat.paths.items():
            if path not in table.rows:
                continue
            rate = 100.0 * counts.err / counts.requests if counts.requests else 0.0
            table.update_cell(path, "requests", f"{counts.requests:,}")
            table.update_cell(path, "rps", fmt.num(path_rps(counts.requests, self.beat.elapsed)))
            table.update_cell(path, "err %", fmt.pct(rate))
            table.update_cell(path, "status", f"ok {counts.ok:,} err {counts.err:,}")
            if counts.p50_ms is not None:
                table.update_cell(path, "p50", fmt.ms(counts.p50_ms))
                table.update_cell(path, "p95", fmt.ms(counts.p95_ms))
                table.update_cell(path, "p99", fmt.ms(counts.p99_ms))

    def _final_paths(self) -> None:
        table = self.query_one("#paths", DataTable)
        elapsed, duration = self._finished_elapsed, self._finished_duration
        load_s = min(elapsed, duration) if duration > 0 else elapsed  # as the report's rates
        for path, m in self._finished_paths.items():
            if path not in table.rows:
                continue
            table.update_cell(path, "requests", fmt.count(m.get("requests_total")))
            table.update_cell(path, "rps", fmt.num(path_rps(m.get("requests_total") or 0, load_s)))
            table.update_cell(path, "err %", fmt.pct(m.get("error_rate")))
            for q in ("p50", "p95", "p99"):
                table.update_cell(path, q, fmt.ms(m.get(f"{q}_ms")))
            table.update_cell(path, "status", _status_text(m.get("status_counts") or {}))

    def _update_heap(self) -> None:
        text = f"heap {fmt.heap(self.heap_before)} → {fmt.heap(self.heap_now)}"
        if self.heap_before is not None and self.heap_now is not None:
            drop = self.heap_before - self.heap_now
            style = "b red" if drop > self.config.gate_limits.max_internal_free_drop else "b"
            text += f" [{style}]Δ {-drop / 1024:+,.1f}[/]"
        slope = self.heap_slope_per_hour()
        if slope is not None:
            limit = self.config.gate_limits.max_heap_slope
            style = "b red" if limit is not None and slope < -limit else "b"
            text += f" · [{style}]{slope / 1024:+,.1f} KiB/h[/]"
        self.query_one("#heap", LiveText).update(text)

    def heap_slope_per_hour(self) -> float | None:
        """Free heap's least-squares slope over the run's readings so far, in bytes/hour."""
        slope = self.heap_fit.slope()
        return None if slope is None else slope * 3600.0

    def _update_whole(self, force: bool) -> None:
        """The whole run, bucketed. Its buckets move slowly, so it is redrawn only when run time
        moved a quarter of a bucket (by run time, not the clock: a late viewer replaying hours
        of events draws the same thing), when the heap was read, or at the end."""
        version, drawn_at = self._whole_drawn
        now = self.run_time()
        if self.whole.version == version:
            return
        step = max(0.5, WHOLE_STEP * self.whole.width_s)
        if not force and now - drawn_at < step and self.finished is None:
            return
        self._whole_drawn = (self.whole.version, now)
        for name, widget in (
            ("p95", "#whole-p95"),
            ("rps", "#whole-rps"),
            ("errors", "#whole-errors"),
            ("heap", "#heap-trend"),
        ):
            points = self.whole.points(name)
            if points:
                self.query_one(widget, Sparkline).data = points
        self._draw_target()
        span = self.run_time()
        self.query_one("#whole-span", LiveText).update(
            f"{fmt.duration(span)} · {fmt.duration(self.whole.width_s)}/pt"
        )

    def _draw_target(self) -> None:
        """Achieved against a constant open-loop target: both sparklines on one scale (each
        scales to its own data, so each gets the larger peak of the two as a last,
        invisible-width point). A ramp's target is drawn by its own chart instead."""
        target = self.whole.points("target")
        shown = any(target) and not self.staged
        for widget in ("#whole-target", "#whole-target-label"):
            self.query_one(widget).display = shown
        if shown:
            achieved = self.whole.points("rps")
            peak = max(max(achieved, default=0.0), max(target))
            self.query_one("#whole-rps", Sparkline).data = [*achieved, peak]
            self.query_one("#whole-target", Sparkline).data = [*target, peak]

    # ----- actions -----------------------------------------------------------------------

    def action_abort(self) -> None:
        if self.finished is not None or self.stopping:
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.request_stop()

        self.app.push_screen(
            ConfirmDialog(
                "Abort the run? The current phase ends now; the partial run is kept in "
                "history as stopped.",
                yes="Abort",
            ),
            answer,
        )

    def request_stop(self) -> None:
        """Graceful stop: the engine ends the phase, stores the partial run, then finishes."""
        self.stopping = True
        if self.session is not None:
            self.session.stop()
        self._log("[yellow]stopping: the current phase ends now, the partial run is kept[/]")
        self._update_where()

    def action_back(self) -> None:
        if self.finished is not None:
            self.post_message(GoBack(self))
        else:
            self.action_abort()
