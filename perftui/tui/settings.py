"""The user's TUI settings: the last setup per device, the device used last, theme, key bindings.

One JSON file, `settings.json` in the platform's config dir (`platformdirs`: XDG on Linux,
`~/.config/perftui/`), or in `$PERFTUI_CONFIG_DIR` when set (tests point it at a temp dir; the app
factory takes a `Settings` too). It is the user's file: a damaged or unreadable one is set aside
for defaults with a warning, never a traceback, and is only rewritten when something changes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, cast

import platformdirs

from perftui.history.files import atomic_write_json

ENV_DIR = "PERFTUI_CONFIG_DIR"
FILE_NAME = "settings.json"
SIM_DEVICE = "sim"  # the built-in simulated device's key among the setups
MAX_SETUPS = 32  # devices remembered (the oldest setups go first)


class RememberedSetup(TypedDict, total=False):
    """A device's Setup form as last started, as its fields held it (text); read back from the
    user's file, so Setup checks each value before it fills a field with it."""

    profiles: list[str]
    runs: str
    fields: dict[str, str]  # advanced field name → text
    modes: dict[str, object]  # phase → a Select's value: "clients" or "rate"
    rates: dict[str, str]  # phase → text


def config_dir() -> Path:
    """`$PERFTUI_CONFIG_DIR`, else the platform's user config dir for perftui."""
    return Path(os.environ.get(ENV_DIR) or platformdirs.user_config_dir("perftui", appauthor=False))


@dataclass
class Settings:
    """What the TUI keeps between sessions; `path` None keeps it in memory only."""

    path: Path | None = None
    setups: dict[str, RememberedSetup] = field(default_factory=dict)
    last_device: str | None = None
    theme: str | None = None
    keys: dict[str, str] = field(default_factory=dict)  # binding id → keys ("ctrl+s,f5")
    problem: str | None = None  # why the file was not read, for the app to say once

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        """The settings in `path` (default: `config_dir()/settings.json`); defaults if absent."""
        path = path or config_dir() / FILE_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            return cls(path, problem=f"{path}: not read ({exc}); using defaults")
        if not isinstance(data, dict):
            return cls(path, problem=f"{path}: not a JSON object; using defaults")
        setups = data.get("setups")
        keys = data.get("keys")
        return cls(
            path,
            setups={
                str(k): cast(RememberedSetup, v)
                for k, v in (setups or {}).items()
                if isinstance(v, dict)
            }
            if isinstance(setups, dict)
            else {},
            last_device=data.get("last_device")
            if isinstance(data.get("last_device"), str)
            else None,
            theme=data.get("theme") if isinstance(data.get("theme"), str) else None,
            keys={str(k): str(v) for k, v in keys.items()} if isinstance(keys, dict) else {},
        )

    def remember_setup(self, device: str, setup: RememberedSetup) -> None:
        """`setup` is the form as last started for `device`, which becomes the last device."""
        self.setups.pop(device, None)
        self.setups[device] = setup  # newest last: dict order is the recency
        while len(self.setups) > MAX_SETUPS:
            self.setups.pop(next(iter(self.setups)))
        self.last_device = device
        self.save()

    def remember_theme(self, theme: str) -> None:
        if theme != self.theme:
            self.theme = theme
            self.save()

    def recent_devices(self) -> list[str]:
        """Devices set up here, newest first (the simulated device's entry left out)."""
        return [d for d in reversed(self.setups) if d != SIM_DEVICE]

    def save(self) -> None:
        """Write the file (atomically); a failure is kept in `problem`, not raised."""
        if self.path is None:
            return
        data: dict[str, Any] = {
            "last_device": self.last_device,
            "theme": self.theme,
            "keys": self.keys,
            "setups": self.setups,
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.path, data)
        except OSError as exc:
            self.problem = f"{self.path}: not written ({exc.strerror})"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
