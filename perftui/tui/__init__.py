"""The TUI's screens and widgets; `perftui.app.PerftuiApp` puts them together."""
