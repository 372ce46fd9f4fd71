"""A run made in the TUI gates a run made by the CLI with the same settings (issue 20, point 2):
how often the TUI's live view is fed (snapshots, per-path percentiles, heap readings) is not part
of what makes runs comparable."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Select

from perftui.cli.main import main
from perftui.sim.device import SimProcess
from perftui.tui.factory import create_app
from perftui.tui.screens.setup import SetupScreen
from tests.engine_helpers import latest, run_cli
from tests.tui.conftest import fill_setup, wait_for
from tests.tui.test_tui_flow import run_to_results


async def test_a_tui_run_and_a_cli_run_made_alike_are_gated(
    history_dir: Path, device: SimProcess
) -> None:
    app = create_app(history_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        setup: SetupScreen = app.screen  # type: ignore[assignment]
        fill_setup(setup, **{"f-long_duration": "0", "tag": "tui"})
        setup.query_one("#device", Select).clear()  # "other": the typed host:port
        await pilot.pause()
        setup.set_value("host", f"127.0.0.1:{device.port}")
        probed = f"127.0.0.1:{device.port}"  # this device answered a probe: Start asks nothing
        await wait_for(pilot, lambda: probed in str((setup._probe_answer or ("",))[0]), 10)
        tui = (await run_to_results(pilot, app)).record
    assert tui["status"] == "finished"
    assert tui["settings"]["snapshot_interval_s"] != 0.25  # the live view's own pace
    same = ("--profiles", "c_static_only", "--long-clients", "4", "--tag", "cli")
    code = run_cli(device.port, history_dir, *same)
    assert code in (0, 1)
    cli = latest(history_dir)
    assert cli["settings_fingerprint"] == tui["settings_fingerprint"]
    args = ["compare", "tui", "cli", "--history-dir", str(history_dir), "--fail-on-regression"]
    assert main(args) in (0, 1)
