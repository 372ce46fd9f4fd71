"""perftui: load-test an HTTP device, watch it live, and catch regressions."""

__version__ = "0.1.0"
