"""What a user types into Setup: a bad host never ends the app, and fast input arrives whole."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from textual import events
from textual.keys import _character_to_key, _get_unicode_name_from_key
from textual.widgets import Input

from perftui.cli.main import main
from perftui.history.store import HistoryStore
from perftui.tui.app import PerftuiApp
from tests.history_factory import make_record
from tests.tui.conftest import quiet_app, ready, wait_for

# Hosts `perftui run` refuses (exit 2 or 3); each once crashed the TUI, or might have.
MALFORMED = (
    "300.1.1.1:80",
    "192.168.0.1355",
    "12127.0.0.1:1",
    "1.2.3",
    "http://x/y",
    "host:0",
    "[::1",
    ":80",
)
UNRESOLVABLE = ("[zz]:80", "no-such-host.invalid")
BAD_HOSTS = MALFORMED + UNRESOLVABLE


def test_the_cli_refuses_every_bad_host(tmp_path: Path) -> None:
    for host in BAD_HOSTS:
        code = main(["run", host, "--history-dir", str(tmp_path / "h")])
        assert code == (2 if host in MALFORMED else 3), host
    assert not (tmp_path / "h").exists()


async def test_typing_every_bad_host_a_key_at_a_time_keeps_the_app_up(history_dir: Path) -> None:
    app = quiet_app(history_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        setup = await ready(pilot, app)
        host = setup.query_one("#host", Input)
        await pilot.press("tab")
        for bad in BAD_HOSTS:
            host.value = ""
            _burst(app, bad)  # a key at a time, as fast as a terminal sends them
            await wait_for(pilot, lambda bad=bad: host.value == bad, 5)
            setup.schedule_probe(0.001)  # the probe of what was typed (`300.1.1.1` ended the app)
            await pilot.pause(0.05)
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.is_running and app.return_code is None, bad
            probe = str(setup.query_one("#probe").render())
            assert "answers" not in probe and "[/]" not in probe, (bad, probe)  # no markup leak
            # A malformed host cannot start; a well-formed unknown one is a failed probe (asked).
            assert (setup.build_request() is None) == (bad in MALFORMED), bad
        host.value = "300.1.1.1:80"
        await pilot.press("ctrl+s")  # refused: why, in a toast (the form's line may be off screen)
        await pilot.pause()
        told = [str(n.message) for n in app._notifications]
        assert any("not an IPv4 address" in m for m in told), told
        setup.schedule_probe(0.001)
        await pilot.pause(0.05)
        assert "IPv4" in str(setup.query_one("#probe").render())  # the probe line says why


async def test_a_worker_that_raises_is_a_line_on_the_screen(
    history_dir: Path,
) -> None:
    def broken(base: str, path: str, timeout: float = 2.0) -> tuple[bool, str]:
        raise RuntimeError("probe exploded")

    app = quiet_app(history_dir, probe=broken)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, app)
        await wait_for(
            pilot, lambda: any("probe exploded" in str(n.message) for n in app._notifications), 5
        )
        assert app.is_running and app.return_code is None


def _burst(app: PerftuiApp, keys: str | list[str]) -> None:
    """Keys as a terminal delivers them when typed faster than the app draws: all queued at
    once, before the app has handled the first."""
    driver = app._driver
    assert driver is not None
    for key in keys:  # named as `Pilot.press` names them
        name = key if len(key) > 1 or key.isalnum() else _character_to_key(key)
        try:
            char: str | None = unicodedata.lookup(_get_unicode_name_from_key(name))
        except KeyError:
            char = key if len(key) == 1 else None
        driver.send_message(events.Key(name, char))


async def test_a_burst_of_keys_and_a_paste_arrive_whole(history_dir: Path) -> None:
    # A stored device whose target is a prefix of what is typed: the dropdown follows the
    # field, and once wrote its own value back into it while the next keys were arriving.
    store = HistoryStore(history_dir)
    store.add_run(make_record(20.0, runs=1, target="10.0.0.5:80"))
    app = quiet_app(history_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        setup = await ready(pilot, app)
        host, runs = setup.query_one("#host", Input), setup.query_one("#runs", Input)
        await pilot.press("tab")
        assert app.focused is host
        _burst(app, [*"10.0.0.5:8080", "tab", "tab", "tab", *"17"])
        await wait_for(pilot, lambda: runs.value == "17" and host.value == "10.0.0.5:8080", 5)
        await pilot.pause(0.2)
        await pilot.pause(0.2)
        assert (host.value, runs.value) == ("10.0.0.5:8080", "17")
        host.focus()
        host.value = ""
        driver = app._driver
        assert driver is not None
        driver.send_message(events.Paste("10.0.0.5:80"))
        driver.send_message(events.Paste("90"))
        await pilot.pause(0.2)
        assert host.value == "10.0.0.5:8090"
