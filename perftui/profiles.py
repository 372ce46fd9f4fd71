"""Load profiles: TOML files naming the requests each client walks round-robin.

A profile is looked up by name among the built-in profiles (the repo's `profiles/` folder,
shipped inside the wheel) or read from a path. Every problem is a `ProfileError` whose message
names the file, the line when there is one, and what is wrong.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from perftui.engine.schema import JsonObject

SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
PHASE_KEYS = frozenset({"clients", "duration", "rate"})
TOP_KEYS = frozenset({"description", "requests", "phases", "secret_headers", "settings", "stages"})
REQUEST_KEYS = frozenset({"path", "method", "headers", "body", "weight", "check"})
CHECK_KEYS = frozenset({"status", "body_contains", "json", "max_body_bytes"})
_MISSING = object()
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token
GENERATED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class ProfileError(ValueError):
    """A profile that cannot be used; the message is one line for the user."""


@dataclass(slots=True, frozen=True)
class Check:
    """What an answer must be to count as a success, beyond its status (k6's `check()`): an
    expected status set (instead of 200–399), text the body contains, JSON fields (dotted paths)
    that equal given values, a largest body. A failed check is an error of kind "check"."""

    status: frozenset[int] = frozenset()
    body_contains: str = ""
    json: tuple[tuple[str, Any], ...] = ()
    max_body_bytes: int = 0

    def problem(self, status: int, body: bytes, body_len: int) -> str | None:
        """Why the answer fails the check, or None."""
        if self.status and status not in self.status:
            return f"status {status} not in {sorted(self.status)}"
        if not self.status and not 200 <= status < 400:
            return f"status {status}"
        if self.max_body_bytes and body_len > self.max_body_bytes:
            return f"body {body_len} B > {self.max_body_bytes} B"
        if self.body_contains and self.body_contains.encode() not in body:
            return f"body lacks {self.body_contains!r}"
        if self.json:
            try:
                doc = json.loads(body)
            except (ValueError, RecursionError):
                return "body is not JSON"
            for dotted, want in self.json:
                got = _field(doc, dotted)
                if got is _MISSING:
                    return f"JSON {dotted} missing"
                if got != want:
                    return f"JSON {dotted} = {got!r}, not {want!r}"
        return None

    def definition(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": sorted(self.status)} if self.status else {}
        if self.body_contains:
            out["body_contains"] = self.body_contains
        if self.json:
            out["json"] = dict(self.json)
        if self.max_body_bytes:
            out["max_body_bytes"] = self.max_body_bytes
        return out


def _field(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return _MISSING
    return doc


@dataclass(slots=True, frozen=True)
class RequestSpec:
    path: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    weight: int = 1
    check: Check | None = None


@dataclass(slots=True)
class Profile:
    name: str
    description: str
    requests: list[RequestSpec]
    phases: dict[str, dict[str, float]] = field(default_factory=dict)
    secret_headers: frozenset[str] = SECRET_HEADERS
    source: str = ""
    # Run settings of the registry (`perftui.settings`) the profile sets, e.g. `insecure = true`
    # for a device with a self-signed certificate; the config file and the flags win over them.
    settings: dict[str, Any] = field(default_factory=dict)

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
                    **({"check": r.check.definition()} if r.check else {}),
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


def header_problem(name: str, value: str) -> str | None:
    """Why a header cannot be sent as given, or None."""
    if not HEADER_NAME_RE.match(name) or any(c in value for c in "\r\n\0"):
        return f"invalid header {name!r}"
    if name.lower() in GENERATED_HEADERS:
        return f"header {name!r} is set by perftui"
    return None


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
        if problem := header_problem(header, value):
            raise _fail(source, text, "headers", f"request {i}: {problem}")
    body = raw.get("body", "")
    if not isinstance(body, str):
        raise _fail(source, text, "body", f"request {i}: body must be a string")
    weight = raw.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 1000:
        raise _fail(source, text, "weight", f"request {i}: weight must be an integer 1..1000")
    check = _check(raw.get("check"), f"request {i}", source, text)
    return RequestSpec(path, method.upper(), tuple(sorted(headers.items())), body, weight, check)


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
        settings=_settings_table(data.get("settings", {}), source, text)
        | _stages_table(data.get("stages"), source, text),
    )


def _stages_table(raw: Any, source: str, text: str) -> dict[str, Any]:
    """`[[stages]]` (duration = 30, target = 50): the profile's ramp, as `--stages` has it."""
    if raw is None:
        return {}
    if not isinstance(raw, list) or not raw:
        raise _fail(source, text, "stages", "stages must be [[stages]] tables")
    stages = []
    for i, stage in enumerate(raw, start=1):
        if not isinstance(stage, dict) or set(stage) != {"duration", "target"}:
            raise _fail(source, text, "stages", f"stage {i}: needs duration and target only")
        duration, target = stage["duration"], stage["target"]
        if not (_positive(duration, integer=False) and duration > 0):
            raise _fail(source, text, "duration", f"stage {i}: duration must be a number > 0")
        if not _positive(target, integer=False):
            raise _fail(source, text, "target", f"stage {i}: target must be a number >= 0")
        stages.append((float(duration), float(target)))
    return {"stages": tuple(stages)}


def _settings_table(table: Any, source: str, text: str) -> dict[str, Any]:
    """A profile's `[settings]`: registry keys, checked as their flags are; phases stay in
    `[phases]`, where they are per phase."""
    from perftui.settings import from_toml
    from perftui.validate import UsageError

    if not isinstance(table, dict):
        raise _fail(source, text, "settings", "settings must be a table")
    for key in table:
        if key.startswith(("burst_", "long_")) or key in ("rate", "runs", "tag", "note"):
            raise _fail(source, text, key, f"settings: {key!r} is not a profile setting")
    try:
        return from_toml(table, "settings")
    except UsageError as exc:
        key = next(iter(table), None)
        raise _fail(source, text, key, str(exc)) from None


def _check(raw: Any, where: str, source: str, text: str) -> Check | None:
    """A request's `check` table (see `Check`), validated."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        keys = ", ".join(sorted(CHECK_KEYS))
        raise _fail(source, text, "check", f"{where}: check must be a table of {keys}")
    if bad := sorted(set(raw) - CHECK_KEYS):
        raise _fail(source, text, bad[0], f"{where}: check: unknown key {bad[0]!r}")
    status = raw.get("status", [])
    status = [status] if isinstance(status, int) and not isinstance(status, bool) else status
    if not isinstance(status, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in status
    ):
        raise _fail(source, text, "status", f"{where}: check.status: HTTP codes 100..599")
    contains = raw.get("body_contains", "")
    if not isinstance(contains, str):
        raise _fail(source, text, "body_contains", f"{where}: check.body_contains: a string")
    fields = raw.get("json", {})
    if not isinstance(fields, dict):
        raise _fail(source, text, "json", f"{where}: check.json: a table of field = value")
    largest = raw.get("max_body_bytes", 0)
    if "max_body_bytes" in raw and not (_positive(largest, integer=True) and largest > 0):
        raise _fail(source, text, "max_body_bytes", f"{where}: check.max_body_bytes: integer > 0")
    return Check(frozenset(status), contains, tuple(sorted(fields.items())), largest)


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


def split_url(target: str) -> tuple[str, str | None]:
    """`http://dev:8080/api/x?q=1` → (`http://dev:8080`, `/api/x?q=1`); a device without a
    path → (target, None)."""
    if "://" not in target:
        return target, None
    parts = urlsplit(target.strip())
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if path in ("", "/"):
        return target, None
    return f"{parts.scheme}://{parts.netloc}", path


def _body(data: str | None, where: str) -> str:
    """`-d TEXT` or `-d @FILE` (a UTF-8 file, sent byte for byte)."""
    if not data:
        return ""
    if not data.startswith("@"):
        return data
    path = Path(data[1:]).expanduser()
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ProfileError(f"{where}: no such body file {str(path)!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{where}: cannot read body {str(path)!r}: {exc}") from None


def _headers(lines: list[str], where: str) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for line in lines:
        name, sep, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or (problem := header_problem(name, value)):
            raise ProfileError(f"{where}: {line!r}: {'not K: V' if not sep else problem}")
        out.append((name, value))
    return tuple(out)


def _request(method: str, path: str, where: str) -> tuple[str, str]:
    method = method.upper()
    if method not in METHODS:
        raise ProfileError(f"{where}: unknown method {method!r}")
    if not path.startswith("/") or any(c.isspace() for c in path):
        raise ProfileError(f"{where}: {path!r} must be a path starting with '/'")
    return method, path


def oneoff_profile(paths: list[str], method: str, headers: list[str], data: str | None) -> Profile:
    """`perftui run URL -m POST -H 'K: V' -d @body.json`: a profile built on the fly, stored
    with the run like a file's, so a comparison knows what was sent."""
    spec = RequestSpec("/", "GET", _headers(headers, "-H"), _body(data, "-d"))
    requests = [
        RequestSpec(*_request(method, path, "--method/--paths")[::-1], spec.headers, spec.body)
        for path in paths
    ]
    return Profile(
        name="oneoff",
        description="one-off request from the command line",
        requests=requests,
        source="--method/--header/--data",
    )


def read_targets(path: Path) -> tuple[str, Profile]:
    """vegeta's targets file: blocks of `METHOD URL`, then `Name: value` header lines and an
    optional `@body` line, separated by blank lines; `#` starts a comment. Every URL names the
    same device, which is returned with the profile (one request each, walked in file order)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such targets file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read: {exc}") from None
    device = ""
    requests: list[RequestSpec] = []
    current: dict[str, Any] | None = None

    def close() -> None:
        if current is not None:
            requests.append(
                RequestSpec(
                    current["path"],
                    current["method"],
                    _headers(current["headers"], current["where"]),
                    _body(current["body"], current["where"]),
                )
            )

    for number, raw in enumerate(lines, start=1):
        line, where = raw.strip(), f"{path}:{number}"
        if not line or line.startswith("#"):
            if not line:
                close()
                current = None
            continue
        if current is None:
            method, _, url = line.partition(" ")
            base, target = split_url(url.strip())
            if "://" not in url or not base:
                raise ProfileError(f"{where}: expected 'METHOD http(s)://host[:port]/path'")
            if device and base != device:
                raise ProfileError(f"{where}: {base} is not the file's device {device}")
            device = base
            method, target = _request(method, target or "/", where)
            current = {"method": method, "path": target, "headers": [], "body": None}
            current["where"] = where
        elif line.startswith("@"):
            body = Path(line[1:]).expanduser()  # as vegeta: from the working directory,
            if not body.exists():  # else beside the targets file
                body = path.parent / body
            current["body"] = f"@{body}"
        else:
            current["headers"].append(line)
    close()
    if not requests:
        raise ProfileError(f"{path}: no target in the file")
    profile = Profile(
        name="targets",
        description=f"targets file {path.name}",
        requests=requests,
        source=str(path),
    )
    return device, profile
