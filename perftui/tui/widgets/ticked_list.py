"""A SelectionList whose rows say in text whether they are ticked.

Textual's toggle (▐X▌ on every row) differs only by colour, which a 256-colour terminal or a
screen reader loses, so each prompt starts with a mark too (Setup's profiles, Compare's noise
runs).
"""

from __future__ import annotations

from textual import on
from textual.content import Content
from textual.widgets import SelectionList
from textual.widgets.selection_list import Selection

TICKED, UNTICKED = "✓", "·"


class TickedList(SelectionList[str]):
    """Options as `(label, key, chosen)`, given at once or added with `add_ticked` (which, like
    `add_option`, announces a change of the selection); the marks follow every change."""

    def __init__(self, *options: tuple[str, str, bool], id: str | None = None) -> None:
        self._labels = {key: label for label, key, _ in options}
        super().__init__(
            *(Selection(self._prompt(key, chosen), key, chosen) for _, key, chosen in options),
            id=id,
        )

    def add_ticked(self, label: str, key: str, chosen: bool) -> None:
        self._labels[key] = label
        self.add_option(Selection(self._prompt(key, chosen), key, chosen))

    def _prompt(self, key: str, chosen: bool) -> Content:
        return Content(f"{TICKED if chosen else UNTICKED} {self._labels[key]}")

    @on(SelectionList.SelectedChanged)
    def _marks(self) -> None:
        chosen = set(self.selected)
        for index in range(self.option_count):
            key = self.get_option_at_index(index).value
            self.replace_option_prompt_at_index(index, self._prompt(key, key in chosen))
