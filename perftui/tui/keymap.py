"""Key bindings: every binding has an id (`screen.action`), the user's settings file may give
any id other keys (`"keys": {"setup.start": "f5"}`, applied with `App.set_keymap`), and the
help screen is made from the bindings themselves, so it lists every key and the keys in force.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from textual.binding import Binding, BindingType

# Keys that are not bindings of a screen: Textual's palette, and lists' Enter.
OTHER_KEYS = (
    ("ctrl+p", "everywhere", "command palette: every action, runs by id or tag, theme"),
    ("enter", "Setup, runs in progress", "watch that run live"),
    ("escape", "dialogs and this help", "no / cancel / close"),
)


def bindings_of(owner: type) -> list[Binding]:
    """The `Binding`s a class declares (tuples made into bindings, as Textual does)."""
    declared: Iterable[BindingType] = getattr(owner, "BINDINGS", [])
    return [b if isinstance(b, Binding) else Binding(*b) for b in declared]


def help_markdown(
    screens: Iterable[tuple[str, type]],
    keymap: Mapping[str, str],
    show_key: Callable[[Binding], str],
) -> str:
    """The help table: per screen, each binding's keys (the user's, from `keymap`, where set)
    and what it does (its tooltip, else its description)."""
    keys_of: dict[tuple[str, str], list[str]] = {}  # (where, action) → keys: one row each
    does_of: dict[tuple[str, str], str] = {}
    for where, owner in screens:
        for binding in bindings_of(owner):
            does = binding.tooltip or binding.description
            if not does:
                continue
            keys = keymap.get(binding.id or "", binding.key)
            row = (where, binding.action)
            keys_of.setdefault(row, []).extend(k.strip() for k in keys.split(","))
            does_of.setdefault(row, does)
    rows = [
        "| "
        + " / ".join(f"`{show_key(Binding(key, ''))}`" for key in keys)
        + f" | {where} | {does_of[where, action]} |"
        for (where, action), keys in keys_of.items()
    ]
    rows += [f"| `{key}` | {where} | {does} |" for key, where, does in OTHER_KEYS]
    return (
        "# perftui\n\nLoad-test an HTTP device, watch it live, compare any two runs. "
        "Keys can be changed in the settings file (`keys`: binding id → keys).\n\n"
        "| key | where | does |\n|---|---|---|\n" + "\n".join(rows) + "\n"
    )
