"""Load profiles: TOML files naming the requests each client walks round-robin.

A profile is looked up by name among the built-in profiles (the repo's `profiles/` folder,
shipped inside the wheel) or read from a path. Every problem is a `ProfileError` whose message
names the file, the line when there is one, and what is wrong.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perftui.engine.schema import JsonObject

SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
PHASE_KEYS = frozenset({"clients", "duration", "rate"})
TOP_KEYS = frozenset({"description", "requests", "phases", "secret_headers"})
REQUEST_KEYS = frozenset({"path", "method", "headers", "body", "weight"})
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token
GENERATED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class ProfileError(ValueError):
    """A profile that cannot be used; the message is one line for the user."""


@dataclass(slots=True, frozen=True)
class RequestSpec:
    path: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    weight: int = 1


@dataclass(slots=True)
class Profile:
    name: str
    description: str
    requests: list[RequestSpec]
    phases: dict[str, dict[str, float]] = field(default_factory=dict)
    secret_headers: frozenset[str] = SECRET_HEADERS
    source: str = ""

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def sequence(self) -> list[RequestSpec]:
        """The round-robin cycle: each request repeated `weight` times, in file order."""
        return [r for r in self.requests for _ in range(r.weight)]

    def definition(self) -> JsonObject:
        """The profile as stored in history, with secret header values masked."""
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "phases": self.phases,
            "requests": [
                {
                    "path": r.path,
                    "method": r.method,
                    "headers": {
                        k: ("***" if k.lower() in self.secret_headers else v) for k, v in r.headers
                    },
                    "body": r.body,
                    "weight": r.weight,
                }
                for r in self.requests
            ],
        }


def builtin_dir() -> Path:
    """Where the built-in profiles live: inside the wheel, or the repo's `profiles/` folder."""
    packaged = Path(__file__).parent / "builtin_profiles"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "profiles"


def builtin_names() -> list[str]:
    return sorted(p.stem for p in builtin_dir().glob("*.toml"))


def _line_of(text: str, key: str) -> int | None:
    pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=|^\s*\[+\s*{re.escape(key)}\b", re.M)
    m = pattern.search(text)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _fail(source: str, text: str, key: str | None, problem: str) -> ProfileError:
    line = _line_of(text, key) if key else None
    where = f"{source}:{line}" if line else source
    return ProfileError(f"{where}: {problem}")


def _positive(value: Any, *, integer: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    if integer and not isinstance(value, int):
        return False
    return value > 0 or (not integer and value == 0)


def _parse_request(raw: object, i: int, source: str, text: str) -> RequestSpec:
    """One `[[requests]]` entry (the `i`-th), validated."""
    if not isinstance(raw, dict):
        raise _fail(source, text, "requests", f"request {i} must be a table")
    bad = sorted(set(raw) - REQUEST_KEYS)
    if bad:
        raise _fail(source, text, bad[0], f"request {i}: unknown key {bad[0]!r}")
    path = raw.get("path")
    if not isinstance(path, str) or not path:
        raise _fail(source, text, "requests", f"request {i}: missing path")
    if not path.startswith("/"):
        raise _fail(source, text, "path", f"request {i}: path {path!r} must start with '/'")
    if any(c.isspace() for c in path):
        raise _fail(source, text, "path", f"request {i}: path {path!r} contains white space")
    method = raw.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise _fail(source, text, "method", f"request {i}: unknown method {method!r}")
    headers = raw.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise _fail(source, text, "headers", f"request {i}: headers must map names to strings")
    for header, value in headers.items():
        if not HEADER_NAME_RE.match(header) or any(c in value for c in "\r\n\0"):
            raise _fail(source, text, "headers", f"request {i}: invalid header {header!r}")
        if header.lower() in GENERATED_HEADERS:
            raise _fail(
                source, text, "headers", f"request {i}: header {header!r} is set by perftui"
            )
    body = raw.get("body", "")
    if not isinstance(body, str):
        raise _fail(source, text, "body", f"request {i}: body must be a string")
    weight = raw.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 1000:
        raise _fail(source, text, "weight", f"request {i}: weight must be an integer 1..1000")
    return RequestSpec(path, method.upper(), tuple(sorted(headers.items())), body, weight)


def _parse_phases(phases_raw: object, source: str, text: str) -> dict[str, dict[str, float]]:
    """The `[phases.burst]` / `[phases.long]` tables, validated."""
    if not isinstance(phases_raw, dict):
        raise _fail(source, text, "phases", "phases must be a table")
    phases: dict[str, dict[str, float]] = {}
    for phase, settings in phases_raw.items():
        if phase not in ("burst", "long"):
            raise _fail(source, text, "phases", f"unknown phase {phase!r} (burst or long)")
        if not isinstance(settings, dict):
            raise _fail(source, text, "phases", f"phases.{phase} must be a table")
        bad = sorted(set(settings) - PHASE_KEYS)
        if bad:
            raise _fail(source, text, bad[0], f"phases.{phase}: unknown key {bad[0]!r}")
        if "clients" in settings and not _positive(settings["clients"], integer=True):
            raise _fail(source, text, "clients", f"phases.{phase}.clients must be an integer > 0")
        if "duration" in settings and not _positive(settings["duration"], integer=False):
            raise _fail(source, text, "duration", f"phases.{phase}.duration must be a number >= 0")
        if "rate" in settings and not (
            _positive(settings["rate"], integer=False) and settings["rate"] > 0
        ):
            raise _fail(source, text, "rate", f"phases.{phase}.rate must be a number > 0 (req/s)")
        phases[phase] = dict(settings)
    return phases


def parse_profile(text: str, name: str, source: str) -> Profile:
    """Parse and validate one profile's TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: invalid TOML: {exc}") from None
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise _fail(source, text, unknown[0], f"unknown key {unknown[0]!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise _fail(source, text, "description", "description must be a string")
    raw_requests = data.get("requests")
    if not isinstance(raw_requests, list) or not raw_requests:
        raise _fail(source, text, "requests", "needs at least one [[requests]] entry with a path")
    requests = [_parse_request(raw, i, source, text) for i, raw in enumerate(raw_requests, start=1)]
    phases = _parse_phases(data.get("phases", {}), source, text)
    secrets = data.get("secret_headers", [])
    if not isinstance(secrets, list) or not all(isinstance(s, str) for s in secrets):
        raise _fail(source, text, "secret_headers", "secret_headers must be a list of names")
    return Profile(
        name=name,
        description=description,
        requests=requests,
        phases=phases,
        secret_headers=SECRET_HEADERS | {s.lower() for s in secrets},
        source=source,
    )


def load_profile_file(path: Path) -> Profile:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such profile file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read: {exc}") from None
    return parse_profile(text, path.stem, str(path))


def _looks_like_path(spec: str) -> bool:
    return "/" in spec or spec.endswith(".toml") or spec.startswith(".")


def resolve_profile(spec: str) -> Profile:
    """A profile by built-in name, or by path to a TOML file."""
    spec = spec.strip()
    if _looks_like_path(spec):
        return load_profile_file(Path(spec).expanduser())
    if not NAME_RE.match(spec):
        raise ProfileError(f"profile {spec!r}: not a valid profile name")
    path = builtin_dir() / f"{spec}.toml"
    if not path.is_file():
        known = ", ".join(builtin_names())
        raise ProfileError(f"unknown profile {spec!r} (known: {known}; or give a .toml path)")
    return load_profile_file(path)


def resolve_profiles(specs: str) -> list[Profile]:
    """The comma list of `--profiles`; an empty list is an error, duplicates are dropped."""
    names = [s.strip() for s in specs.split(",") if s.strip()]
    if not names:
        raise ProfileError("--profiles: the profile list is empty")
    profiles: list[Profile] = []
    for name in dict.fromkeys(names):
        profiles.append(resolve_profile(name))
    return profiles


def adhoc_profile(paths: str) -> Profile:
    """`--paths /a,/b`: an unnamed profile walking those paths."""
    items = [p.strip() for p in paths.split(",") if p.strip()]
    if not items:
        raise ProfileError("--paths: the path list is empty")
    for path in items:
        if not path.startswith("/") or any(c.isspace() for c in path):
            raise ProfileError(f"--paths: {path!r} must be a path starting with '/'")
    return Profile(
        name="adhoc",
        description="ad-hoc profile from --paths",
        requests=[RequestSpec(path) for path in items],
        source="--paths",
    )
