"""Events and a run's config as JSON, so a viewer that did not start the run can rebuild both
from the events and status files (`perftui.engine.stream`).

Events are rebuilt generically from their dataclasses' type hints: a new field or event type
needs no code here, and a line written by another version is skipped, never a crash.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from pathlib import Path
from typing import Any

from perftui.config import RunConfig
from perftui.engine import events as events_module
from perftui.engine import schema as schema_module
from perftui.engine.events import Event
from perftui.engine.schema import JsonObject
from perftui.profiles import Check, Profile, RequestSpec

EVENT_TYPES: dict[str, type] = {cls.__name__: cls for cls in typing.get_args(Event)}


def event_to_json(event: Event) -> JsonObject:
    return {"type": type(event).__name__, **dataclasses.asdict(event)}


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A dataclass's resolved hints, once per class: resolving evaluates every annotation's
    string, which cost about 1 ms an event (12 s for a viewer reading 12,000 heartbeats)."""
    return typing.get_type_hints(cls, {**vars(schema_module), **vars(events_module)})


@functools.cache
def _holds_dataclass(hint: Any) -> bool:
    """Whether a value of `hint` may hold a dataclass; if not, its JSON is kept as it is (a
    heartbeat's lists of numbers are not walked item by item)."""
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return True
    return any(_holds_dataclass(arg) for arg in typing.get_args(hint))


def _build(hint: Any, value: Any) -> Any:
    """`value` (plain JSON) as `hint` says: nested event dataclasses are rebuilt, the rest kept."""
    if not _holds_dataclass(hint):
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict):
        hints = _hints(hint)
        return hint(
            **{
                f.name: _build(hints[f.name], value[f.name])
                for f in dataclasses.fields(hint)
                if f.name in value
            }
        )
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return {k: _build(args[1], v) for k, v in value.items()}
    if origin is list and isinstance(value, list) and args:
        return [_build(args[0], v) for v in value]
    if origin in (typing.Union, types.UnionType) and value is not None:
        for arg in args:
            if isinstance(arg, type) and dataclasses.is_dataclass(arg) and isinstance(value, dict):
                return _build(arg, value)
    return value


def event_from_json(data: JsonObject) -> Event | None:
    """The event a line holds, or None for a type this version does not know (skipped)."""
    cls = EVENT_TYPES.get(str(data.get("type")))
    if cls is None:
        return None
    try:
        return typing.cast(Event, _build(cls, data))
    except TypeError:  # a field missing: written by another version
        return None


# ----- the run's config, for a viewer that did not start the run --------------------------------


def config_to_json(config: RunConfig) -> JsonObject:
    data = dataclasses.asdict(config)
    data["history_dir"] = str(config.history_dir)
    data["lock_file"] = str(config.lock_file) if config.lock_file else None
    for profile in data["profiles"]:
        profile["secret_headers"] = sorted(profile["secret_headers"])
        for request in profile["requests"]:
            if request.get("check"):
                request["check"]["status"] = sorted(request["check"]["status"])
    return data


def _request_from_json(r: JsonObject) -> RequestSpec:
    check = r.get("check")
    if check:
        check = Check(
            frozenset(check["status"]),
            check["body_contains"],
            tuple((k, v) for k, v in check["json"]),
            check["max_body_bytes"],
        )
    return RequestSpec(
        **{**r, "headers": tuple(tuple(h) for h in r.get("headers", ())), "check": check}
    )


def config_from_json(data: JsonObject) -> RunConfig:
    data = dict(data)
    profiles = []
    for p in data.pop("profiles", []):
        p = dict(p)
        p["requests"] = [_request_from_json(r) for r in p.get("requests", [])]
        p["secret_headers"] = frozenset(p.get("secret_headers", ()))
        profiles.append(Profile(**p))
    config = RunConfig(host=data.pop("host"), profiles=profiles)
    for f in dataclasses.fields(RunConfig):
        if f.name not in data:
            continue
        value, default = data[f.name], getattr(config, f.name)
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            value = type(default)(**value)  # phase settings, gate limits: nested dataclasses
        elif f.name in ("history_dir", "lock_file") and value is not None:
            value = Path(value)
        setattr(config, f.name, value)
    return config
