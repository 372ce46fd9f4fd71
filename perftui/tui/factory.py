"""The app built from its services, so a test (or `perftui serve`) gives its own: a history
service on a temp dir (or a fake), a run service with a fake simulated device, a scripted
probe, a comparison that waits. What is not given is made as `perftui` makes it; the app uses
only what it is given."""

from __future__ import annotations

from pathlib import Path

from perftui.history.store import HistoryStore
from perftui.tui import session
from perftui.tui.app import PerftuiApp, Prober
from perftui.tui.screens.capacity import CapacityJob
from perftui.tui.services import Comparer, HistoryService, RunService
from perftui.tui.session import SimDevice
from perftui.tui.settings import Settings


def create_app(
    history_dir: Path,
    attach: str | None = None,
    *,
    settings: Settings | None = None,
    history: HistoryService | None = None,
    store: HistoryStore | None = None,
    compare: Comparer | None = None,
    runs: RunService | None = None,
    sim: SimDevice | None = None,
    probe: Prober | None = None,
) -> PerftuiApp:
    """The TUI on `history_dir` (watching run `attach`), with the services given: `history`
    (else one on `store`, else on the history dir's, comparing with `compare`, else with the
    comparison service, `perftui.verdicts`), `runs` (else one with `sim`, else the built-in
    simulated device, and capacity searches as `CapacityJob`), `probe` (else `session.probe`),
    `settings` (else the user's file)."""
    if history is None:
        # The store's warnings (a damaged index moved aside) go where the app puts the
        # service's (a notification), never to stderr under the screen.
        store = store or HistoryStore(history_dir, on_warning=lambda text: service.on_warning(text))
        history = service = HistoryService(store, compare)
    return PerftuiApp(
        history,
        runs or RunService(sim or SimDevice(), CapacityJob),
        probe or session.probe,
        settings if settings is not None else Settings.load(),
        attach,
    )


def run_app(history_dir: Path, attach: str | None = None) -> int:
    """Open the TUI on `history_dir` (watching run `attach`); the exit status for `perftui`."""
    return create_app(history_dir, attach).run() or 0
