"""Setup screen: device, profiles, runs, phase settings and gates, tag, build and note.

Every field is validated with the same converters as the command line (`perftui.validate`), so a
value the TUI accepts is one `perftui run` would accept too, and an invalid one is marked on its
field before the run can start.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.markup import escape
from textual.screen import Screen
from textual.validation import Function
from textual.widgets import (
    Button,
    Collapsible,
    Footer,
    Input,
    Label,
    Select,
    SelectionList,
    Static,
)

from perftui import settings as registry
from perftui.config import (
    PHASES,
    RunConfig,
    TlsSettings,
    build_config,
    read_config_file,
    setting_defaults,
)
from perftui.engine.schema import LiveStatus
from perftui.profiles import Profile, ProfileError, builtin_names, resolve_profile
from perftui.tui import session
from perftui.tui.messages import ProbeAnswered, RunRequested
from perftui.tui.mounting import when_composed
from perftui.tui.screens.dialogs import ConfirmDialog
from perftui.tui.session import SessionError, SimDevice
from perftui.tui.settings import SIM_DEVICE, RememberedSetup, Settings
from perftui.tui.widgets.runs_in_progress import RunsInProgress
from perftui.tui.widgets.ticked_list import TickedList
from perftui.tui.workers import ShowsWorkerErrors
from perftui.validate import (
    POS_FLOAT,
    POS_INT,
    UsageError,
    accepts,
    clean_tag,
    doubtful_host,
    parse_target,
)

SIM = "__sim__"
LOAD_MODES = [("clients (closed loop)", "clients"), ("rate (open loop)", "rate")]
DEFAULT_PROFILES = ("api", "mixed", "static")
PROBE_DEBOUNCE_S = 0.6
WIDE = 120
# Heartbeats 5 times a second (the headless default is 4): the live view then moves visibly
# more than 4 times a second; a snapshot costs the engine well under a millisecond.
LIVE_SNAPSHOT_S = 0.2
LIVE_HEAP_POLL_S = 2.0  # the live screen shows the heap trend, so it asks for it during phases
LIVE_PATH_PERCENTILES_S = 1.0  # per-path p50/p95/p99 in the live table, refreshed every second


@dataclass(frozen=True, slots=True)
class Field:
    """One advanced setting: a registry entry (`perftui.settings`) that has a Setup label."""

    name: str
    label: str
    convert: Callable[[str], Any]
    default: Any


DEFAULTS = setting_defaults()
ADVANCED: tuple[Field, ...] = tuple(
    Field(s.name, s.label, s.convert, s.default) for s in registry.SETTINGS if s.label
)


def _validator(convert: Callable[[str], Any]) -> Function:
    return Function(lambda text: accepts(convert, text), "invalid")


def advanced_title(changed: int) -> str:
    """The Advanced panel's title: whether the settings inside are the defaults."""
    state = f"{changed} changed" if changed else "defaults"
    return f"Advanced: phases, guards, gates ({state})"


def _fmt_default(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(slots=True)
class RunRequest:
    """What Start hands to the app: the config, and whether the simulated device is the target."""

    config: RunConfig
    use_sim: bool


# What the "more below" line names when it is out of sight, top to bottom.
BELOW = (
    ("#profiles", "Profiles"),
    ("#runs", "Runs, Tag, Build"),
    ("#note", "Note"),
    ("#advanced", "Advanced"),
    ("#start", "Start"),
)


class SetupScreen(Screen[None], ShowsWorkerErrors):
    """Choose what to run; the health probe says whether the device answers before Start."""

    CSS_PATH = "setup.tcss"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (WIDE, "-wide")]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+s",
            "start",
            "Start run",
            priority=True,
            id="setup.start",
            tooltip="start the run (asks first when the device looks doubtful)",
        ),
        Binding("f2", "app.history", "History", id="setup.history"),
        Binding(
            "f3",
            "toggle_advanced",
            "Advanced",
            id="setup.toggle_advanced",
            tooltip="advanced settings: phases, guards, gates",
        ),
        Binding(
            "f4",
            "app.capacity",
            "Capacity",
            id="setup.capacity",
            tooltip="capacity search on what Setup says",
        ),
        # Priority: the app then moves the focus before it hands on the next key. As a screen
        # binding, tab is acted on once the focused field has passed it up, and the keys typed
        # right after it (a burst, a fast typist) went to the field being left.
        Binding("tab", "app.focus_next", show=False, priority=True, id="setup.focus_next"),
        Binding(
            "shift+tab", "app.focus_previous", show=False, priority=True, id="setup.focus_previous"
        ),
    ]

    def __init__(
        self,
        history_dir: Path,
        recent: list[str],
        settings: Settings | None = None,
        sim: SimDevice | None = None,
        probe: Callable[[str, str], tuple[bool, str]] | None = None,
        in_progress: Callable[[], list[LiveStatus]] | None = None,
    ) -> None:
        """`sim`: the app's simulated device, which the probe starts when it is chosen;
        `probe(base_url, path)`: the health probe (default `session.probe`); `in_progress`:
        the runs going on in the history dir (the history service's; blocking)."""
        super().__init__()
        self.sim = sim
        self._probe = probe
        self.history_dir = history_dir
        self._in_progress = in_progress or (lambda: [])
        self.recent = recent
        self.settings = settings or Settings()
        self.profiles: dict[str, Profile] = {}
        self._probe_timer: Any = None
        self._shown_profile = ""
        self.probe_debounce_s = PROBE_DEBOUNCE_S  # a test sets 0 to probe at every key
        # (base URL, path) probed last and its answer: Start asks when it is doubtful.
        self._probe_answer: tuple[tuple[str, str], session.ProbeAnswer] | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="setup-form"):
            yield Static("[b]perftui[/b] · set up a run", id="setup-title")
            yield RunsInProgress(self._in_progress)
            with Horizontal(classes="row"):
                yield Label("Device", classes="field-label")
                devices = [("Built-in simulated device", SIM)] + [(t, t) for t in self.recent]
                yield Select(devices, value=SIM, prompt="other: type host:port →", id="device")
                yield Input(
                    placeholder="type host:port or http://host:port",
                    id="host",
                    validators=[Function(_host_ok, "not a host[:port] or URL")],
                )
            yield Static("probe: …", id="probe")
            with Horizontal(classes="row profiles-row"):
                yield Label("Profiles", classes="field-label")
                yield TickedList(id="profiles")
                yield Static("", id="profile-info")
            with Horizontal(classes="row"):
                yield Label("Add file", classes="field-label")
                yield Input(placeholder="path/to/profile.toml (Enter adds it)", id="profile-file")
            # One row on a wide screen; under WIDE columns the note goes on a row of its own
            # (on 80 columns it had no width left, off the screen's edge).
            with Horizontal(classes="row", id="meta-row"):
                with Horizontal(id="meta-main"):
                    yield Label("Runs", classes="field-label")
                    yield Input(
                        str(DEFAULTS["runs"]),
                        id="runs",
                        validators=[_validator(POS_INT)],
                        classes="short",
                    )
                    yield Label("Tag", classes="inline-label")
                    yield Input(
                        placeholder="[A-Za-z0-9_-]",
                        id="tag",
                        validators=[Function(_tag_ok, "needs [A-Za-z0-9_-]")],
                        classes="short",
                    )
                    yield Label("Build", classes="inline-label")
                    yield Input(placeholder="firmware label", id="build", classes="short")
                with Horizontal(id="note-row"):
                    yield Label("Note", classes="inline-label", id="note-label")
                    yield Input(placeholder="free text", id="note")
            with (
                Collapsible(title=advanced_title(0), id="advanced"),
                Grid(id="advanced-grid"),
            ):
                for f in ADVANCED:
                    with Vertical(classes="adv-field"):
                        yield Label(f.label)
                        yield Input(
                            _fmt_default(f.default),
                            id=f"f-{f.name}",
                            validators=[_validator(f.convert)],
                        )
                yield from self._load_mode_fields()
            yield Static("", id="setup-error")
            yield Button("Start run (ctrl+s)", variant="success", id="start")
        yield Static("", id="more-below")
        yield Footer()

    def _load_mode_fields(self) -> ComposeResult:
        """Per phase: closed loop (its clients) or open loop at a rate (clients = most open
        connections), as `--burst-rate` / `--long-rate`."""
        for phase in PHASES:
            with Vertical(classes="adv-field"):
                yield Label(f"{phase} load")
                yield Select(LOAD_MODES, value="clients", allow_blank=False, id=f"mode-{phase}")
            with Vertical(classes="adv-field"):
                yield Label(f"{phase} rate req/s")
                yield Input(
                    placeholder="req/s",
                    id=f"f-{phase}_rate",
                    validators=[_validator(POS_FLOAT)],
                    disabled=True,
                )

    @on(Select.Changed, ".adv-field Select")
    def _load_mode_changed(self, event: Select.Changed) -> None:
        phase = str(event.select.id).removeprefix("mode-")
        self.query_one(f"#f-{phase}_rate", Input).disabled = event.value != "rate"

    def _phase_rates(self) -> dict[str, float] | None:
        """The rate of each open-loop phase, or None after marking an invalid one."""
        rates: dict[str, float] = {}
        for phase in PHASES:
            if self.query_one(f"#mode-{phase}", Select).value != "rate":
                continue
            try:
                rates[phase] = POS_FLOAT(self.query_one(f"#f-{phase}_rate", Input).value)
            except argparse.ArgumentTypeError as exc:
                self._invalid(f"f-{phase}_rate", f"{phase} rate: {exc}")
                return None
        return rates

    @when_composed
    def on_mount(self) -> None:
        form = self.query_one("#setup-form", VerticalScroll)
        self.watch(form, "scroll_y", self._show_more_below, init=False)
        self.watch(form, "virtual_size", self._show_more_below, init=False)
        selection = self.query_one("#profiles", SelectionList)
        for name in builtin_names():
            try:
                self.profiles[name] = resolve_profile(name)
            except ProfileError as exc:
                self.notify(str(exc), severity="warning")
                continue
            self._add_option(name, name, name in DEFAULT_PROFILES)
        for path in sorted((self.history_dir / "profiles").glob("*.toml")):
            self._add_profile_file(str(path), quiet=True)
        if selection.option_count:
            selection.highlighted = 0  # space toggles the first profile straight away
            self._show_profile(selection.get_option_at_index(0).value)
        self._restore_last_device()
        self.schedule_probe(0)
        if self.app.size.width >= WIDE:  # room to show every setting at once
            self.query_one("#advanced", Collapsible).collapsed = False
        self.query_one("#device", Select).focus()
        form = self.query_one("#setup-form", VerticalScroll)
        self.call_after_refresh(form.scroll_home, animate=False)  # expanding scrolled it down

    def on_resize(self) -> None:
        self.call_after_refresh(self._show_more_below)

    def _show_more_below(self) -> None:
        """One line under the form naming what is below its visible part (a small terminal:
        Note, Advanced and Start are out of sight at 80×24), or nothing when all of it shows."""
        form = self.query_one("#setup-form", VerticalScroll)
        bottom = form.region.bottom
        below = [name for ref, name in BELOW if self.query_one(ref).region.y >= bottom]
        line = self.query_one("#more-below", Static)
        line.display = bool(below) and form.max_scroll_y > form.scroll_y
        line.update(f"▼ more below: {', '.join(below)} · scroll, or tab to a field")

    # ----- profiles ----------------------------------------------------------------------

    def _add_profile_file(self, spec: str, quiet: bool = False) -> bool:
        try:
            profile = resolve_profile(spec)
        except ProfileError as exc:
            if not quiet:
                self.query_one("#setup-error", Static).update(f"[b red]✗[/] {exc}")
            return False
        key = str(Path(spec).expanduser())
        self.profiles[key] = profile
        self._add_option(f"{profile.name} ({Path(spec).name})", key, True)
        return True

    def _add_option(self, label: str, key: str, chosen: bool) -> None:
        self.query_one("#profiles", TickedList).add_ticked(label, key, chosen)

    @on(Input.Submitted, "#profile-file")
    def _profile_file(self, event: Input.Submitted) -> None:
        if event.value.strip() and self._add_profile_file(event.value.strip()):
            event.input.value = ""
            self.query_one("#setup-error", Static).update("")

    @on(SelectionList.SelectionHighlighted, "#profiles")
    def _highlighted(self, event: SelectionList.SelectionHighlighted[str]) -> None:
        self._show_profile(event.selection.value)

    @on(SelectionList.SelectedChanged, "#profiles")
    def _selected_changed(self) -> None:
        self._show_profile(self._shown_profile)

    def _show_profile(self, key: str) -> None:
        """What will run, then the highlighted profile's paths."""
        self._shown_profile = key
        chosen = self.query_one("#profiles", SelectionList).selected
        names = ", ".join(self.profiles[k].name for k in chosen) or "[b red]none[/]"
        profile = self.profiles.get(key)
        text = f"will run: [b]{names}[/b]"
        if profile is not None:
            paths = "\n".join(f"  {p}" for p in profile.paths)
            text += f"\n[b]{profile.name}[/b]: {profile.description}\n{paths}"
        self.query_one("#profile-info", Static).update(text)

    # ----- device and probe --------------------------------------------------------------

    @on(Select.Changed, "#device")
    def _device_changed(self, event: Select.Changed) -> None:
        if event.value not in (SIM, Select.NULL):
            self.query_one("#host", Input).value = str(event.value)
        if event.value != Select.NULL:
            self.apply_setup(self.settings.setups.get(self.device_key()) or {})
        self.schedule_probe()

    @on(Input.Changed, ".adv-field Input")
    def _advanced_changed(self) -> None:
        changed = sum(
            self.query_one(f"#f-{f.name}", Input).value.strip() != _fmt_default(f.default)
            for f in ADVANCED
        )
        self.query_one("#advanced", Collapsible).title = advanced_title(changed)

    @on(Input.Changed, "#host")
    def _host_typed(self, event: Input.Changed) -> None:
        """Typing a host is choosing it: the dropdown follows (a recent device, or "other")."""
        text = event.value.strip()
        device = self.query_one("#device", Select)
        # The dropdown's own Changed would write its value back into this field, over the keys
        # typed since (a fast typist lost the end of a host that began like a recent device).
        with self.prevent(Select.Changed):
            if text in self.recent:
                device.value = text
            elif text and device.value != Select.NULL:
                device.clear()
        self.schedule_probe()

    @on(Input.Changed, "#f-probe_path")
    def _probe_inputs_changed(self) -> None:
        self.schedule_probe()

    def _tls_context(self) -> Any:
        """The TLS fields' context for the probe (None while a field is not valid yet)."""
        try:
            values = {
                f: registry.BY_NAME[f].convert(self.query_one(f"#f-{f}", Input).value)
                for f in ("insecure", "cacert", "cert", "key")
            }
            return TlsSettings(**values).context()
        except (argparse.ArgumentTypeError, ValueError, TypeError):
            return None

    def schedule_probe(self, delay: float | None = None) -> None:
        """Probe the device shortly after the user stops typing (not on every key)."""
        if self._probe_timer is not None:
            self._probe_timer.stop()
        wait = self.probe_debounce_s if delay is None else delay
        self._probe_timer = self.set_timer(wait, self._probe_now)

    def _probe_now(self) -> None:
        status = next(iter(self.query("#probe").results(Static)), None)
        if status is None:  # the screen is being taken down (the app quits): nothing to probe
            return
        device = self.query_one("#device", Select).value
        path = self.query_one("#f-probe_path", Input).value.strip() or "/hello"
        host = self.query_one("#host", Input).value.strip()
        if device != SIM:
            try:
                scheme, name, port = parse_target(host, None)
            except UsageError as exc:
                why = str(exc) if host else "enter a device host:port"
                status.update(Content.assemble("probe: ", (why, "dim")))  # typed text: no markup
                return
            base = _base_url(scheme, name, port)
        else:
            base = ""
        status.update("probe: [dim]checking…[/]")
        self._probe_worker(base, path, self._tls_context() if base.startswith("https") else None)

    @work(thread=True, exclusive=True, group="probe", exit_on_error=False)
    def _probe_worker(self, base: str, path: str, tls: Any = None) -> None:
        if not base:
            try:
                if self.sim is None:
                    raise SessionError("no simulated device in this session")
                sim_base = self.sim.ensure().base_url
            except SessionError as exc:
                self.post_message(ProbeAnswered(session.ProbeAnswer(False, str(exc)), None))
                return
            answer = session.ProbeAnswer(*self._probing(sim_base, path))
        else:
            answer = session.ProbeAnswer(*self._probing(base, path, tls))
        # A screen already closed takes no message: an answer arriving as the app exits is lost.
        self.post_message(ProbeAnswered(answer, (base, path)))

    def _probing(self, base: str, path: str, tls: Any = None) -> tuple[bool, str]:
        """An https device's probe trusts what the run will (the TLS fields' context)."""
        if tls is not None:
            return session.probe(base, path, tls=tls)
        return (self._probe or session.probe)(base, path)

    @on(ProbeAnswered)
    def _probe_answered(self, message: ProbeAnswered) -> None:
        self._probe_result(*message.answer, message.probed)

    def _probe_result(
        self,
        healthy: bool,
        text: str,
        status_code: int | None = None,
        probed: tuple[str, str] | None = None,
    ) -> None:
        """Show the answer; keep it (with what was probed) for Start's question."""
        if probed is not None:
            self._probe_answer = (probed, session.ProbeAnswer(healthy, text, status_code))
        if not healthy:
            mark = ("✗ not answering", "b red")
        elif status_code is not None and status_code >= 400:  # the engine's rule: it answers
            mark = (f"● answers, but {status_code}: check the host and the probe path", "b yellow")
        else:
            mark = ("● answers", "b green")
        line = Content.assemble("probe: ", mark, " ", text)  # the text holds what was typed
        # The app may be exiting while the probe was out: a screen still attached can have lost
        # its widgets already (seen in CI), so no line to show it on is no error.
        for status in self.query("#probe").results(Static):
            status.update(line)

    # ----- the setup remembered per device ----------------------------------------------

    def device_key(self) -> str:
        """The device's name among the remembered setups: "sim", or the host as typed."""
        if self.query_one("#device", Select).value == SIM:
            return SIM_DEVICE
        return self.query_one("#host", Input).value.strip()

    def form_values(self) -> RememberedSetup:
        """What Start ran with, as the fields hold it (text), to fill them again next time."""
        return {
            "profiles": list(self.query_one("#profiles", SelectionList).selected),
            "runs": self.query_one("#runs", Input).value,
            "fields": {f.name: self.query_one(f"#f-{f.name}", Input).value for f in ADVANCED},
            "modes": {p: self.query_one(f"#mode-{p}", Select).value for p in PHASES},
            "rates": {p: self.query_one(f"#f-{p}_rate", Input).value for p in PHASES},
        }

    def apply_setup(self, setup: RememberedSetup) -> None:
        """Fill the form from a remembered setup; what it lacks (or no longer exists) stays."""
        profiles = [k for k in setup.get("profiles") or [] if k in self.profiles]
        if profiles:
            chosen = self.query_one("#profiles", SelectionList)
            chosen.deselect_all()
            for key in profiles:
                chosen.select(key)
        if isinstance(setup.get("runs"), str):
            self.set_value("runs", setup["runs"])
        for name, value in (setup.get("fields") or {}).items():
            if isinstance(value, str) and self.query(f"#f-{name}"):
                self.set_value(f"f-{name}", value)
        for phase, mode in (setup.get("modes") or {}).items():
            if phase in PHASES and mode in ("clients", "rate"):
                self.query_one(f"#mode-{phase}", Select).value = mode
        for phase, rate in (setup.get("rates") or {}).items():
            if phase in PHASES and isinstance(rate, str):
                self.set_value(f"f-{phase}_rate", rate)

    def _restore_last_device(self) -> None:
        """The device (and its setup) of the last Start, in this session or an earlier one."""
        last = self.settings.last_device
        if not last:
            return
        device = self.query_one("#device", Select)
        with self.prevent(Select.Changed):
            if last == SIM_DEVICE:
                device.value = SIM
            else:
                self.query_one("#host", Input).value = last
                if last in self.recent:
                    device.value = last
                else:
                    device.clear()
        self.apply_setup(self.settings.setups.get(last) or {})

    # ----- start -------------------------------------------------------------------------

    def action_toggle_advanced(self) -> None:
        advanced = self.query_one("#advanced", Collapsible)
        advanced.collapsed = not advanced.collapsed

    def action_start(self) -> None:
        request = self.build_request()
        if request is None:
            return
        doubts = self.doubts(request)
        if not doubts:
            self._start(request)
            return

        def answer(start: bool | None) -> None:
            if start:
                self._start(request)

        question = "\n".join(f"⚠ {escape(d)}" for d in doubts) + "\n\nStart anyway?"
        self.app.push_screen(ConfirmDialog(question, yes="Start anyway"), answer)

    def _start(self, request: RunRequest) -> None:
        self.settings.remember_setup(self.device_key(), self.form_values())
        self.post_message(RunRequested(request))

    def doubts(self, request: RunRequest) -> list[str]:
        """Why this start is probably a mistake: a host of digits only, a probe that failed or
        was answered 4xx/5xx (the engine would load a device that is not there, or its errors),
        or no probe of this device yet. The simulated device is never doubtful."""
        if request.use_sim:
            return []
        config = request.config
        doubts = [d for d in (doubtful_host(config.host),) if d]
        probed = (_base_url(config.scheme, config.host, config.port), config.probe_path)
        answer = self._probe_answer
        if answer is None or answer[0] != probed:
            doubts.append(f"{probed[0]}{probed[1]} has not answered a probe yet")
        elif answer[1].status is None:
            doubts.append(f"the device does not answer: {answer[1].text}")
        elif answer[1].status >= 400:
            doubts.append(f"the probe got an error status: {answer[1].text}")
        return doubts

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    def set_value(self, field_id: str, value: str) -> None:
        """Fill a field (the advanced ones are `f-<config name>`); for tests and the palette."""
        self.query_one(f"#{field_id}", Input).value = value

    def _invalid(self, widget_id: str, message: str) -> None:
        widget = self.query_one(f"#{widget_id}")
        widget.add_class("-invalid")
        if widget_id.startswith("f-"):
            self.query_one("#advanced", Collapsible).collapsed = False
        self.query_one("#device", Select).focus()
        form = self.query_one("#setup-form", VerticalScroll)
        self.call_after_refresh(form.scroll_home, animate=False)  # expanding scrolled it down
        widget.focus()
        self.query_one("#setup-error", Static).update(f"[b red]✗[/] {message}")
        self.notify(message, title="Not started", severity="error")  # the line may be off screen

    def build_request(self) -> RunRequest | None:
        """The run config from the form, or None after marking the first invalid field."""
        values: dict[str, Any] = {}
        for f in ADVANCED:
            box = self.query_one(f"#f-{f.name}", Input)
            try:
                values[f.name] = f.convert(box.value.strip())
            except (argparse.ArgumentTypeError, ValueError) as exc:
                self._invalid(f"f-{f.name}", f"{f.label}: {exc}")
                return None
        try:
            runs = POS_INT(self.query_one("#runs", Input).value.strip())
        except argparse.ArgumentTypeError as exc:
            self._invalid("runs", f"runs: {exc}")
            return None
        try:
            tag = clean_tag(self.query_one("#tag", Input).value.strip())
        except UsageError as exc:
            self._invalid("tag", str(exc))
            return None
        use_sim = self.query_one("#device", Select).value == SIM
        scheme, host, port = "http", "127.0.0.1", 0
        if not use_sim:
            try:
                scheme, host, port = parse_target(self.query_one("#host", Input).value, None)
            except (UsageError, argparse.ArgumentTypeError) as exc:
                self._invalid("host", f"device: {exc}")
                return None
        chosen = self.query_one("#profiles", SelectionList).selected
        if not chosen:
            self._invalid("profiles", "choose at least one profile")
            return None
        rates = self._phase_rates()
        if rates is None:
            return None
        # A field left at its default is not given: a profile's own setting then counts.
        given = {k: v for k, v in values.items() if v != DEFAULTS[k]}
        given |= {f"{phase}_rate": rate for phase, rate in rates.items()}
        given |= {
            "runs": runs,
            "tag": tag,
            "note": self.query_one("#note", Input).value.strip(),
            "build": self.query_one("#build", Input).value.strip(),
            "snapshot_interval_s": LIVE_SNAPSHOT_S,
            "heap_poll_s": LIVE_HEAP_POLL_S,
            "path_percentiles_s": LIVE_PATH_PERCENTILES_S,
        }
        try:
            config = build_config(
                host=host,
                port=port,
                scheme=scheme,
                profiles=[self.profiles[k] for k in chosen],
                history_dir=self.history_dir,
                config_file=read_config_file(None, self.history_dir),
                given=given,
            )
        except UsageError as exc:
            where = "f-burst_duration" if "nothing to run" in str(exc) else "host"
            self._invalid(where, str(exc))
            return None
        self.query_one("#setup-error", Static).update("")
        return RunRequest(config, use_sim)


def _base_url(scheme: str, host: str, port: int) -> str:
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def _host_ok(text: str) -> bool:
    return accepts(lambda t: parse_target(t, None), text)


def _tag_ok(text: str) -> bool:
    return accepts(clean_tag, text)
