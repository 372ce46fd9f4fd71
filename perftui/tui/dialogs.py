"""Small modal screens: confirmation, one-line text prompt, and the help screen."""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Markdown


class ConfirmDialog(ModalScreen[bool]):
    """Yes/no before anything that cannot be undone (abort, delete)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, yes: str = "Yes") -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class ChoiceDialog(ModalScreen[str | None]):
    """A question with a few answers, each on a key; Escape answers None (cancel)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "choose(None)", "Cancel")]

    def __init__(self, question: str, choices: list[tuple[str, str, str]]) -> None:
        """`choices`: (key, label, value) in the order shown."""
        super().__init__()
        self.question = question
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            with Horizontal(classes="buttons"):
                for key, label, value in self.choices:
                    yield Button(f"{label} ({key})", id=f"choice-{value}")
                yield Button("Cancel (esc)", variant="primary", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss((event.button.id or "").removeprefix("choice-") or None)

    def on_key(self, event: events.Key) -> None:
        value = next((v for k, _, v in self.choices if k == event.key), None)
        if value is not None:
            event.stop()
            self.dismiss(value)

    def action_choose(self, value: str | None) -> None:
        self.dismiss(value)


class TextPrompt(ModalScreen[str | None]):
    """Ask for one line of text (a note, a file name); Escape cancels with None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.question = question
        self.value = value
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            yield Input(self.value, placeholder=self.placeholder, id="answer")
            yield Label("Enter to accept, Escape to cancel", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


HELP = """\
# perftui

Load-test an HTTP device, watch it live, compare any two runs.

| key | where | does |
|---|---|---|
| `ctrl+p` | everywhere | command palette (every action below) |
| `f1` / `?` | everywhere | this help |
| `ctrl+q` | everywhere | quit (during a run: stop it, or leave it running to attach later) |
| `enter` | Setup, runs in progress | watch that run live |
| `ctrl+s` | Setup | start the run |
| `f2` | Setup | history |
| `a` | Live run | abort (asks; the partial run is kept) |
| `c` | Results | full compare with the previous run |
| `space` | History | select a run for compare (two at most) |
| `c` | History | compare the two selected runs |
| `b` / `n` / `d` | History | mark baseline / note / delete (asks) |
| `/` | History | filter: words match target, profile, tag, date, `pass`, `fail`, `stopped` |
| `p` | Compare | per-path rows on/off |
| `g` | Compare | charts: latency distribution and rps per key |
| `e` | Compare | export the report (`.md` or `.html`) |
| `escape` | any pushed screen | back |
"""


class HelpScreen(ModalScreen[None]):
    """The keys of every screen on one page."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,question_mark,q", "dismiss", "Close")
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Markdown(HELP)
