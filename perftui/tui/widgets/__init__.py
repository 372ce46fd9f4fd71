"""Widgets of the TUI's screens that are not screens themselves."""
