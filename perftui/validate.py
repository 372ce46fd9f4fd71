"""Validation of what a user types for a run: numbers, ports, paths, the tag and the target.

It lives beside `perftui.config` (the settings it checks) so that both faces use the same rules:
the command line as argparse `type=` converters, the TUI's Setup as field validators. A value
one accepts, the other accepts too. Only the standard library is imported here.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

TAG_RE = re.compile(r"[^A-Za-z0-9_-]")
IPV4_LIKE = re.compile(r"[0-9.]+")
DEFAULT_PORT = 8080


class UsageError(ValueError):
    """Bad input found after parsing; one line for the user, exit 2."""


def _number(kind: type, minimum: float | None, strict: bool, what: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        if minimum is not None and (value <= minimum if strict else value < minimum):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    return convert


POS_INT = _number(int, 0, True, "an integer > 0")
NONNEG_INT = _number(int, 0, False, "an integer >= 0")
POS_FLOAT = _number(float, 0, True, "a number > 0")
NONNEG_FLOAT = _number(float, 0, False, "a number >= 0")


def PORT(text: str) -> int:
    """A TCP port, 1-65535."""
    value = POS_INT(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1-65535)")
    return value


def URL_PATH(text: str) -> str:
    """A request path: starts with '/', no whitespace."""
    if not text.startswith("/") or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"{text!r} must be a path starting with '/'")
    return text


def clean_tag(tag: str) -> str:
    """The tag kept to [A-Za-z0-9_-] (it is appended to file names); all-invalid is an error."""
    cleaned = TAG_RE.sub("", tag)
    if tag and not cleaned:
        raise UsageError(f"--tag {tag!r} has no character of [A-Za-z0-9_-]")
    return cleaned


def _host_port(spelled: str, text: str, given: int | None) -> int:
    """The port written in HOST, which must agree with --port when both are given."""
    try:
        value = PORT(text)
    except argparse.ArgumentTypeError:
        raise UsageError(f"{spelled!r}: bad port {text!r}") from None
    if given and given != value:
        raise UsageError(f"{spelled!r} names port {value} but --port says {given}")
    return value


def parse_target(host: str, port: int | None) -> tuple[str, str, int]:
    """(scheme, host, port) from a host, `host:port`, an IPv6 literal or an http(s) URL."""
    host = host.strip()
    if not host:
        raise UsageError("HOST is empty")
    scheme = "http"
    if "://" in host:
        parts = urlsplit(host)
        if parts.scheme not in ("http", "https"):
            raise UsageError(f"{host!r}: only http:// and https:// URLs can be tested")
        if parts.path not in ("", "/") or parts.query:
            raise UsageError(
                f"{host!r}: give the device, not a path (use --paths or a profile for paths)"
            )
        if not parts.hostname:
            raise UsageError(f"{host!r}: no host in the URL")
        _, _, port_text = parts.netloc.rpartition("]")[2].rpartition(":")
        if ":" in parts.netloc.rpartition("]")[2]:
            port = _host_port(host, port_text, port)
        return parts.scheme, parts.hostname, port or DEFAULT_PORT
    if host.startswith("[") and "]" in host:
        inner, _, rest = host[1:].partition("]")
        host = inner
        if rest and not rest.startswith(":"):
            raise UsageError(f"{host!r}: unexpected {rest!r} after the address")
        if rest:
            port = _host_port(f"[{inner}]{rest}", rest[1:], port)
    elif host.count(":") == 1:
        name, _, text = host.partition(":")
        host, port = name, _host_port(host, text, port)
    check_host(host)
    return scheme, host, port or DEFAULT_PORT


def check_host(host: str) -> None:
    """A host name, an IPv4 address or an IPv6 literal (no brackets), else UsageError.

    Digits and dots with a dot are an IPv4 address, not a name: `300.1.1.1`, `192.168.0.1355`
    and `12127.0.0.1` are typos, refused here (as httpx refuses them) rather than looked up.
    """
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UsageError(f"{host!r} is not a host name or IP address") from None
    elif not host or "/" in host or any(c.isspace() for c in host):
        raise UsageError(f"{host!r} is not a host name or IP address")
    elif "." in host and IPV4_LIKE.fullmatch(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise UsageError(f"{host!r} is not an IPv4 address (four numbers 0-255)") from None


def doubtful_host(host: str) -> str | None:
    """Why a valid host is probably not what was meant, or None: a name of digits only is read
    as a number-address (`18190` is 0.0.71.14), most often a port typed without its host."""
    if host.isdigit():
        return f"{host!r} is a number, not a device: did you mean a port (host:{host})?"
    return None


def resolve_host(host: str) -> None:
    """The host resolves (the name service answers for it), else UnresolvableHost."""
    try:
        socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"cannot resolve host {host!r}: {exc}") from None


class UnresolvableHost(ValueError):
    """A well-formed host the name service does not know (the CLI's exit 3)."""


def accepts(convert: Callable[[str], Any], text: str) -> bool:
    """Whether `convert` takes `text` (stripped): for a form's live field check."""
    try:
        convert(text.strip())
    except (argparse.ArgumentTypeError, ValueError):
        return False
    return True


def FILE_PATH(text: str) -> str:
    """A file that exists (a certificate, a key, a body); "" = none."""
    if text and not Path(text).expanduser().is_file():
        raise argparse.ArgumentTypeError(f"{text!r}: no such file")
    return str(Path(text).expanduser()) if text else ""


def HOST_BIND(text: str) -> str:
    """An address to listen on: an IP address or a host name."""
    if not text or any(c.isspace() or c in "/[]" for c in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an address to listen on")
    return text


_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def STAGES(text: str) -> tuple[tuple[float, float], ...]:
    """`30s:50,60s:200,30s:0`: (seconds, target) per stage; a duration may end in s, m or h."""
    stages = []
    for part in (p.strip() for p in text.split(",")):
        spelled, sep, target = part.partition(":")
        unit = spelled[-1:] if spelled[-1:] in ("s", "m", "h") else ""
        try:
            seconds = float(spelled[: len(spelled) - len(unit)]) * _UNITS[unit]
            value = float(target)
        except ValueError:
            seconds = value = float("nan")
        if not sep or not seconds > 0 or not value >= 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(
                f"{part!r} is not DURATION:TARGET (e.g. 30s:50; duration > 0, target >= 0)"
            )
        stages.append((seconds, value))
    return tuple(stages)
