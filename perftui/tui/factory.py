"""The app built from its services, so a test (or `perftui serve`) gives its own: a store on a
temp dir, a fake simulated device, a scripted probe, a comparison that waits. What is not given
is made as `perftui` makes it."""

from __future__ import annotations

from pathlib import Path

from perftui.history.store import HistoryStore
from perftui.tui.app import Comparer, PerftuiApp, Prober
from perftui.tui.session import SimDevice
from perftui.tui.settings import Settings


def create_app(
    history_dir: Path,
    attach: str | None = None,
    *,
    settings: Settings | None = None,
    store: HistoryStore | None = None,
    sim: SimDevice | None = None,
    probe: Prober | None = None,
    compare: Comparer | None = None,
) -> PerftuiApp:
    """The TUI on `history_dir` (watching run `attach`), with the services given."""
    return PerftuiApp(
        history_dir, attach, settings, store=store, sim=sim, probe=probe, compare=compare
    )
