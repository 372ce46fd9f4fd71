"""The TUI's screens, one per module; they ask the app for what they need with messages."""
