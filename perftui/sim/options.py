"""The simulated device's options and the flags of `perftui sim`, without the server.

They live apart from `perftui.sim.device` so that the command line can declare `perftui sim`'s
flags (and `perftui run --sim` can build options) without importing aiohttp: that import costs
a quarter of a second that `perftui --version` should not pay.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, fields
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEBUG_BODIES = ("normal", "malformed", "huge")
DRIFT_TAU_S = 5.0  # default time constant of the drift: the air changes over seconds


class SimOptionError(ValueError):
    """An option value the simulator cannot use; `name` is the SimOptions field."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(slots=True)
class SimOptions:
    """How the simulated device behaves; every fault is off by default."""

    workers: int = 4
    queue_limit: int | None = None  # requests waiting for a worker beyond this get 503
    seed: int | None = None  # seeds the jitter and the fault draws
    slowdown: float = 1.0  # multiplies every service time
    build: str = ""  # the firmware build it reports in /debug/server-stats (empty: none)
    leak_bytes: int = 0  # internal heap lost per handled request
    error_rate: float = 0.0  # share of load requests answered 500
    hang_after: float | None = None  # seconds; then load requests are never answered
    crash_after: float | None = None  # seconds; then the server stops listening, drops sockets
    no_debug: bool = False  # the debug endpoints answer 404, like a device without them
    close_connections: bool = False  # `Connection: close` on every response
    drip: float = 0.0  # seconds between body bytes of load responses; 0 = off
    reset_rate: float = 0.0  # share of load requests whose connection is reset, unanswered
    debug_body: str = "normal"  # "malformed" or "huge" telemetry bodies
    max_lifetime_s: float | None = None  # the server stops itself after this long
    # Noise of a device on a radio link (see `sim.model.Noise`); off by default.
    drift: float = 0.0  # sd of the log of the slowly wandering service-time factor
    drift_tau_s: float = DRIFT_TAU_S  # its time constant: correlation e^(-dt/tau) across dt s
    spikes: float = 0.0  # share of answers delayed by a random 80–300 ms

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, problem: str) -> None:
            if not ok:
                raise SimOptionError(name, f"{problem}, got {getattr(self, name)!r}")

        need(_integer(self.workers) and 1 <= self.workers <= 256, "workers", "must be 1..256")
        need(
            self.queue_limit is None or (_integer(self.queue_limit) and self.queue_limit >= 0),
            "queue_limit",
            "must be an integer >= 0",
        )
        need(self.seed is None or _integer(self.seed), "seed", "must be an integer")
        need(_number(self.slowdown) and self.slowdown > 0, "slowdown", "must be a factor > 0")
        need(_integer(self.leak_bytes) and self.leak_bytes >= 0, "leak_bytes", "must be >= 0")
        for name in ("error_rate", "reset_rate"):
            value = getattr(self, name)
            need(_number(value) and 0 <= value <= 1, name, "must be a share between 0 and 1")
        for name in ("hang_after", "crash_after"):
            value = getattr(self, name)
            need(value is None or (_number(value) and value >= 0), name, "must be seconds >= 0")
        need(_number(self.drip) and 0 <= self.drip <= 1, "drip", "must be seconds 0..1")
        need(self.debug_body in DEBUG_BODIES, "debug_body", f"must be one of {DEBUG_BODIES}")
        need(_number(self.drift) and 0 <= self.drift <= 2, "drift", "must be a log sd 0..2")
        need(_number(self.drift_tau_s) and self.drift_tau_s > 0, "drift_tau_s", "must be s > 0")
        need(_number(self.spikes) and 0 <= self.spikes <= 1, "spikes", "must be a share 0..1")
        need(
            self.max_lifetime_s is None
            or (_number(self.max_lifetime_s) and self.max_lifetime_s > 0),
            "max_lifetime_s",
            "must be seconds > 0",
        )

    def describe(self) -> str:
        """The worker count and every option that differs from its default, for one log line."""
        defaults = SimOptions()
        parts = [f"workers={self.workers}"]
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "workers" and value != getattr(defaults, f.name):
                parts.append(f"{f.name}={value}")
        return ", ".join(parts)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `perftui sim`; each `dest` is the SimOptions field it sets."""
    d = SimOptions()
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (default: %(default)s; 0 = any free)"
    )
    parser.add_argument("--workers", type=int, default=d.workers, help="worker pool size")
    parser.add_argument(
        "--queue-limit",
        type=int,
        default=d.queue_limit,
        metavar="N",
        help="requests that may wait for a worker; beyond this answer 503 (default: unlimited)",
    )
    parser.add_argument("--seed", type=int, default=d.seed, help="seed for jitter and faults")
    parser.add_argument(
        "--slowdown",
        type=float,
        default=d.slowdown,
        metavar="FACTOR",
        help="multiply service times",
    )
    parser.add_argument(
        "--build",
        default=d.build,
        metavar="LABEL",
        help="the firmware build to report in /debug/server-stats (read into the run's record)",
    )
    add_fault_arguments(parser)
    add_noise_arguments(parser)


def add_fault_arguments(parser: argparse.ArgumentParser) -> None:
    """The faults `perftui sim` can inject: a leak, errors, a hang, a crash, resets, slow or
    broken bodies, and a lifetime."""
    d = SimOptions()
    parser.add_argument(
        "--leak-bytes", type=int, default=d.leak_bytes, metavar="N", help="heap lost per request"
    )
    parser.add_argument(
        "--error-rate", type=float, default=d.error_rate, metavar="SHARE", help="share answered 500"
    )
    parser.add_argument(
        "--hang-after",
        type=float,
        default=d.hang_after,
        metavar="S",
        help="after S seconds, accept requests but never answer",
    )
    parser.add_argument(
        "--crash-after",
        type=float,
        default=d.crash_after,
        metavar="S",
        help="after S seconds, stop listening, reset connections and exit",
    )
    parser.add_argument(
        "--no-debug", action="store_true", help="no /debug endpoints (404), like a plain device"
    )
    parser.add_argument(
        "--close-connections", action="store_true", help="send Connection: close on every response"
    )
    parser.add_argument(
        "--drip",
        type=float,
        nargs="?",
        const=0.001,
        default=d.drip,
        metavar="S",
        help="send bodies byte by byte, S seconds apart (default when given: 0.001)",
    )
    parser.add_argument(
        "--reset-rate",
        type=float,
        default=d.reset_rate,
        metavar="SHARE",
        help="share of requests whose connection is reset without an answer",
    )
    parser.add_argument(
        "--debug-body",
        choices=DEBUG_BODIES,
        default=d.debug_body,
        help="telemetry bodies: normal, malformed JSON, or several megabytes",
    )
    parser.add_argument(
        "--max-lifetime-s",
        type=float,
        default=d.max_lifetime_s,
        metavar="S",
        help="stop by itself after S seconds (default: run until Ctrl-C)",
    )


def add_noise_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """The noise flags (`--drift`, `--drift-tau-s`, `--spikes`); `perftui run` adds them with the
    prefix `sim-` for its `--sim` device. Each `dest` is the SimOptions field, prefixed."""
    d = SimOptions()
    parser.add_argument(
        f"--{prefix}drift",
        type=float,
        default=d.drift,
        metavar="SD",
        help="service times wander by a factor whose log has this sd (0.2 ≈ ±20 %%), slowly",
    )
    parser.add_argument(
        f"--{prefix}drift-tau-s",
        type=float,
        default=d.drift_tau_s,
        metavar="S",
        help="time constant of the drift, seconds (default: %(default)s)",
    )
    parser.add_argument(
        f"--{prefix}spikes",
        type=float,
        default=d.spikes,
        metavar="SHARE",
        help="share of answers delayed by a random 80–300 ms",
    )


def options_from_args(args: argparse.Namespace) -> SimOptions:
    """SimOptions from parsed `add_arguments` flags; raises SimOptionError on a bad value."""
    return SimOptions(**{f.name: getattr(args, f.name) for f in fields(SimOptions)})
