"""How long a client waits after a request that failed at once (refused, reset, garbled).

Without a pause, a refusing device is hammered as fast as the loop can connect, and the error
count measures our retry speed, not the device: ~100 errors/s per client at a fixed 10 ms, against
one per timeout from a device that hangs. So a client backs off as gRPC's connection backoff does
(github.com/grpc/grpc doc/connection-backoff.md: exponential, ±20 % jitter, a cap, reset once a
connection works), scaled to a load test: 10 ms, ×1.6 per failure in a row, at most 1 s. Any
complete answer resets it.

Not a retry library's job (tenacity, backoff): nothing is retried here; the client moves on to
its next request, and only the pause between them is chosen.
"""

from __future__ import annotations

import random

INITIAL_S = 0.01
MULTIPLIER = 1.6
MAX_S = 1.0
JITTER = 0.2


class Backoff:
    """One client's pause schedule: 10 ms, 16 ms, 25.6 ms … 1 s, each ±20 %, until an answer."""

    __slots__ = ("_current", "_rng")

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._current = INITIAL_S

    def next_pause(self) -> float:
        """The pause after one more failure in a row (seconds)."""
        base = self._current
        self._current = min(base * MULTIPLIER, MAX_S)
        return base * self._rng.uniform(1 - JITTER, 1 + JITTER)

    def reset(self) -> None:
        """An answer arrived: the device is reachable again."""
        self._current = INITIAL_S
