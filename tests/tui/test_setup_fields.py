"""Setup's device and profile fields as a new user meets them: pilot tests, no run started."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Select, SelectionList, Static

from perftui.history.legacy import import_paths
from perftui.history.store import HistoryStore
from perftui.tui.factory import create_app
from perftui.tui.screens.setup import SIM, SetupScreen
from tests.tui.conftest import quiet_app, ready, wait_for

LEGACY = Path(__file__).parent.parent / "fixtures" / "legacy"
LEGACY_TARGET = "192.168.0.135:8080"  # the `target` of every fixture file


async def test_tab_to_the_host_and_type_it(history_dir: Path) -> None:
    app = create_app(history_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        setup = await ready(pilot, app)
        device = setup.query_one("#device", Select)
        assert app.focused is device and device.value != Select.NULL  # the simulated device
        await pilot.press("tab")
        assert app.focused is setup.query_one("#host", Input)
        await pilot.press(*"127.0.0.1:9")
        await pilot.pause()
        assert device.value == Select.NULL  # the dropdown followed: "other: type host:port"
        request = setup.build_request()
        assert request is not None and not request.use_sim
        assert (request.config.host, request.config.port) == ("127.0.0.1", 9)


async def test_click_the_host_and_type_it(history_dir: Path) -> None:
    app = create_app(history_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        setup = await ready(pilot, app)
        await pilot.click("#host")
        assert app.focused is setup.query_one("#host", Input)
        await pilot.press(*"http://127.0.0.1:9")
        await pilot.pause()
        request = setup.build_request()
        assert request is not None and not request.use_sim
        assert (request.config.scheme, request.config.host, request.config.port) == (
            "http",
            "127.0.0.1",
            9,
        )


async def test_imported_legacy_target_is_in_the_dropdown(history_dir: Path) -> None:
    store = HistoryStore(history_dir)
    assert import_paths(store, [LEGACY]).added
    assert {s["target"] for s in store.list_runs()} == {LEGACY_TARGET}
    app = create_app(history_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        setup = await ready(pilot, app)
        device = setup.query_one("#device", Select)
        assert setup.recent == [LEGACY_TARGET]
        device.value = LEGACY_TARGET  # raises InvalidSelectValueError unless it is an option
        await pilot.pause()
        assert setup.query_one("#host", Input).value == LEGACY_TARGET
        request = setup.build_request()
        assert request is not None and not request.use_sim
        assert (request.config.host, request.config.port) == ("192.168.0.135", 8080)
        device.value = SIM
        setup.query_one("#host", Input).value = ""
        setup.query_one("#host", Input).focus()
        await pilot.press(*LEGACY_TARGET)  # typing a recent device picks it in the dropdown
        await pilot.pause()
        assert device.value == LEGACY_TARGET


def _row_text(selection: SelectionList, index: int) -> str:
    return selection.render_line(index).text


async def test_profile_ticks_differ_in_text_not_only_colour(history_dir: Path) -> None:
    app = create_app(history_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        setup = await ready(pilot, app)
        selection = setup.query_one("#profiles", SelectionList)
        values = [selection.get_option_at_index(i).value for i in range(selection.option_count)]
        chosen = [i for i, v in enumerate(values) if v in selection.selected]
        other = [i for i, v in enumerate(values) if v not in selection.selected]
        assert chosen and other
        ticked = {_row_text(selection, i).split(values[i])[0] for i in chosen}
        unticked = {_row_text(selection, i).split(values[i])[0] for i in other}
        assert len(ticked) == len(unticked) == 1 and ticked != unticked  # one mark each, differing
        assert "✓" in ticked.pop() and "✓" not in unticked.pop()
        first = values[0]
        was_chosen = first in selection.selected
        selection.focus()
        selection.highlighted = 0
        await pilot.press("space")  # toggling changes the mark on that row
        await pilot.pause()
        assert (first in selection.selected) is not was_chosen
        assert ("✓" in _row_text(selection, 0)) is not was_chosen


async def test_a_probe_answering_after_the_app_exited_is_dropped(history_dir: Path) -> None:
    """The probe's worker can deliver after quitting began (seen in CI: NoMatches on '#probe'
    from a probe of the just-started sim); its line is gone by then, and nothing may raise:
    not while the screen is still attached with its widgets already removed, nor after."""
    app = create_app(history_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        setup = app.screen
        await setup.query_one("#probe").remove()
        setup._probe_result(True, "http://127.0.0.1:1/hello answered 200 in 128 ms")
    setup._probe_result(True, "http://127.0.0.1:1/hello answered 200 in 128 ms")


async def test_at_80x24_every_field_shows_when_focused_and_the_form_says_what_is_below(
    history_dir: Path,
) -> None:
    """On 80 columns the note had no width left (off the screen's edge) and nothing said that
    it, Advanced and Start were below the fold."""
    app = quiet_app(history_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        setup = await ready(pilot, app)
        form = setup.query_one("#setup-form")
        more = setup.query_one("#more-below", Static)
        assert more.display and "Note, Advanced, Start" in str(more.render())
        note = setup.query_one("#note", Input)
        setup.query_one("#build").focus()  # the last field on view at 80×24; Tab goes on
        await pilot.press("tab")
        await pilot.pause()
        assert app.focused is note and note.region.width >= 40
        assert form.region.contains_region(note.region)  # scrolled into view
        assert "Note" not in str(more.render())
        await pilot.press("tab", "tab")  # Advanced's title, then Start: nothing below
        await pilot.pause()
        assert app.focused is setup.query_one("#start") and not more.display
