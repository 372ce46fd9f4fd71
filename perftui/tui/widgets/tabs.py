"""Switching a `TabbedContent`'s tab from a key binding, so that it stays switched."""

from __future__ import annotations

from textual.widgets import TabbedContent, Tabs


def show_tab(tabbed: TabbedContent, pane_id: str) -> None:
    """Show the pane `pane_id`, first moving the focus out of the pane on view to the tab bar.

    Textual hides the old pane with the focus still inside it; the hidden widget hands the
    focus to a sibling in the same pane, whose focus switches the tab straight back (Textual
    issues #4955, #5225). On Results, `g` with a table focused did nothing whenever the Summary
    tab held a second table (the comparison with the previous run)."""
    focused = tabbed.screen.focused
    pane = tabbed.active_pane
    if pane is not None and pane.id != pane_id and focused and pane in focused.ancestors:
        tabbed.screen.set_focus(tabbed.query_one(Tabs))
    tabbed.active = pane_id
