"""When an open-loop request is *meant* to leave: the schedule wrk2 measures latency from.

A closed-loop client sends when its previous answer arrives, so a device that freezes also
freezes the load and the wait is never measured (coordinated omission). An open-loop phase
instead fixes each request's intended send time in advance, at a constant rate or with Poisson
arrivals. The schedule is a counter, not a queue: whichever connection is free takes the next
intended time, so a backlog costs no memory, and a request that had to wait for a free connection
carries that wait in its latency (end − intended). Clock and sleep are injected so the pacing can
be tested on a fake clock.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

from perftui.engine.metrics import OpenLoopStats

ARRIVALS = ("constant", "poisson")
LATE_AFTER_S = 0.002  # sent more than this after its intended time: counted as `late`


class ArrivalSchedule:
    """The intended send times of one phase, drawn one at a time in order."""

    def __init__(self, rate: float, arrivals: str, start: float, seed: int | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        if arrivals not in ARRIVALS:
            raise ValueError(f"arrivals must be one of {', '.join(ARRIVALS)}")
        self.rate = rate
        self.poisson = arrivals == "poisson"
        self.start = start
        self._k = 0
        self._next = start
        self._rng = random.Random(seed)

    def take(self) -> float:
        """The next intended time. Constant arrivals are computed from the count (no drift)."""
        if self.poisson:
            t = self._next
            self._next += self._rng.expovariate(self.rate)
            return t
        t = self.start + self._k / self.rate
        self._k += 1
        return t


class Pacer:
    """Hands a free connection its next intended time, waiting for it if it is still ahead."""

    def __init__(
        self,
        schedule: ArrivalSchedule,
        deadline: float,
        stats: OpenLoopStats,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[object]],
    ) -> None:
        self.schedule = schedule
        self.deadline = deadline
        self.stats = stats
        self.clock = clock
        self.sleep = sleep

    async def next(self) -> float | None:
        """The intended time of the request to send now, or None once the phase's load is over.

        Nothing is sent after the deadline: a backlog left then shows as achieved < target. The
        load lasts the whole duration, as a closed-loop phase does, even if the last request
        is due earlier.
        """
        intended = self.schedule.take()
        until = min(intended, self.deadline)
        while (now := self.clock()) < until:  # uvloop's timers may fire a little early
            await self.sleep(until - now)
        if intended >= self.deadline or now >= self.deadline:
            return None
        self.stats.note_send(now - intended, now - intended > LATE_AFTER_S)
        return intended
