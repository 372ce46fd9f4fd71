"""The simulated device without a server: the paths it serves and what each answer costs (a
service time per request class, jittered), the heap it reports, its counters, and the noise of a
radio link. `perftui.sim.device` serves it over HTTP (aiohttp); this module imports no aiohttp.
"""

from __future__ import annotations

import html
import json
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Service time per request class, seconds (before jitter and slowdown).
C_STATIC_SMALL_S = 0.0006
C_STATIC_LARGE_S = 0.008
PY_LIGHT_S = 0.006
PY_TEMPLATE_S = 0.020
JITTER = 0.1  # service times vary uniformly by ±10 %
SPIKE_MIN_S = 0.08  # a spiked answer is late by a uniform 80–300 ms (radio retransmissions)
SPIKE_MAX_S = 0.3

# Heap of a typical ESP32 with PSRAM.
INTERNAL_FREE_START = 180_000
INTERNAL_LARGEST_BLOCK = 110_592  # fragmentation: the largest block is smaller than the free heap
PSRAM_FREE = 4_128_768
PSRAM_LARGEST = 3_997_696


class Noise:
    """A radio link's noise: a slowly wandering service-time factor and rare late answers.

    The factor is exp(x), with x a stationary Ornstein-Uhlenbeck process: mean 0, sd `drift`,
    correlation e^(-dt/tau) across dt seconds, advanced exactly for whatever step lies between two
    requests. So the device is unchanged on average, yet one 10 s run can be 20 % slower than the
    next, as a real one on Wi-Fi is. Time is passed in, so a test can drive it with a fake clock.
    """

    def __init__(self, drift: float, tau_s: float, spikes: float, rng: random.Random) -> None:
        self.drift = drift
        self.tau_s = tau_s
        self.spikes = spikes
        self._rng = rng
        self._x = rng.gauss(0.0, drift) if drift else 0.0  # start in the stationary law
        self._t: float | None = None

    def factor(self, now: float) -> float:
        """The service-time factor at `now` (seconds, any monotonic clock)."""
        if not self.drift:
            return 1.0
        if self._t is not None and now > self._t:
            rho = math.exp(-(now - self._t) / self.tau_s)
            self._x = rho * self._x + self.drift * math.sqrt(1 - rho * rho) * self._rng.gauss(0, 1)
        self._t = now if self._t is None else max(self._t, now)
        return math.exp(self._x)

    def spike_s(self) -> float:
        """How late this answer is: 0, or with probability `spikes` a uniform 80–300 ms."""
        if self.spikes and self._rng.random() < self.spikes:
            return self._rng.uniform(SPIKE_MIN_S, SPIKE_MAX_S)
        return 0.0


@dataclass(slots=True)
class SimStats:
    """The device's live counters, as /debug/server-stats reports them."""

    requests_handled: int = 0
    request_errors: int = 0
    accepts_total: int = 0
    accepts_rejected: int = 0  # no socket limit is simulated, so this stays 0
    backpressure_503_sent: int = 0
    queue_high_water: int = 0
    workers_active: int = 0  # gauge
    queue_depth: int = 0  # gauge: requests waiting for a worker

    def reset(self) -> None:
        """Zero the counters; the gauges describe the present and stay."""
        self.requests_handled = self.request_errors = 0
        self.accepts_total = self.accepts_rejected = self.backpressure_503_sent = 0
        self.queue_high_water = self.queue_depth


Rendered = tuple[int, bytes, str]  # status, body, content type
JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"


def _filler(size: int) -> bytes:
    """Printable bytes of an exact size, standing in for a file on the device's flash."""
    line = b"perftui simulated device file: 0123456789 abcdefghijklmnopqrstuvwxyz\n"
    return (line * (size // len(line) + 1))[:size]


def json_answer(status: int, payload: Mapping[str, Any]) -> Rendered:
    return status, json.dumps(payload).encode(), JSON_TYPE


class _BadQuery(ValueError):
    pass


def _typed(query: Mapping[str, str], name: str, kind: type, default: Any) -> Any:
    raw = query.get(name)
    if raw is None:
        return default
    if kind is bool:
        if raw.lower() not in ("true", "false", "1", "0"):
            raise _BadQuery(f"{name} must be true or false")
        return raw.lower() in ("true", "1")
    try:
        return kind(raw)
    except ValueError:
        raise _BadQuery(f"{name} must be {kind.__name__}") from None


def _query_typed(query: Mapping[str, str]) -> Rendered:
    """Echo q, page, ratio, active with their types, as the device's typed-query route does."""
    try:
        echo = {
            "q": _typed(query, "q", str, ""),
            "page": _typed(query, "page", int, 1),
            "ratio": _typed(query, "ratio", float, 1.0),
            "active": _typed(query, "active", bool, False),
        }
    except _BadQuery as exc:
        return json_answer(400, {"error": str(exc)})
    return json_answer(200, echo)


def _listed(query: Mapping[str, str], name: str) -> list[str]:
    return [item for item in query.get(name, "").split(",") if item]


def _template(query: Mapping[str, str]) -> Rendered:
    """A small HTML page from the query, like the device's template routes."""
    try:
        count = _typed(query, "count", int, 1)
    except _BadQuery as exc:
        return 400, f"{exc}\n".encode(), "text/plain"
    if not 0 <= count <= 100:
        return 400, b"count must be 0..100\n", "text/plain"
    name = html.escape(query.get("name", "guest"))
    role = html.escape(query.get("role", "viewer"))
    roles = "".join(f"<li>{html.escape(r)}</li>" for r in _listed(query, "roles"))
    items = "".join(f"<li>{html.escape(i)}</li>" for i in _listed(query, "items"))
    greetings = f"<p>Hello, {name}!</p>" * count
    page = (
        "<!doctype html><html><head><title>perftui sim</title></head><body>"
        f"<h1>{name}</h1>{greetings}<p>Role: {role}</p>"
        f"<ul class='roles'>{roles}</ul><ul class='items'>{items}</ul></body></html>"
    )
    return 200, page.encode(), HTML_TYPE


def _constant(rendered: Rendered) -> Callable[[Mapping[str, str]], Rendered]:
    return lambda _query: rendered


@dataclass(frozen=True, slots=True)
class Endpoint:
    service_s: float
    render: Callable[[Mapping[str, str]], Rendered]


ENDPOINTS: dict[str, Endpoint] = {
    "/hello": Endpoint(PY_LIGHT_S, _constant((200, b"Hello from perftui sim\n", "text/plain"))),
    "/api/ping": Endpoint(PY_LIGHT_S, _constant(json_answer(200, {"ok": True}))),
    "/deps": Endpoint(
        PY_LIGHT_S, _constant(json_answer(200, {"ok": True, "deps": ["json", "re", "asyncio"]}))
    ),
    "/query-typed": Endpoint(PY_LIGHT_S, _query_typed),
    "/template": Endpoint(PY_TEMPLATE_S, _template),
    "/template-compat": Endpoint(PY_TEMPLATE_S, _template),
    "/file": Endpoint(
        C_STATIC_SMALL_S, _constant((200, _filler(1024), "application/octet-stream"))
    ),
    "/static/large.txt": Endpoint(
        C_STATIC_LARGE_S, _constant((200, _filler(102_400), "text/plain"))
    ),
}
