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

import math
import random
from collections.abc import Awaitable, Callable, Sequence

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


class Ramp:
    """`--stages`: a target that moves linearly from 0 to each stage's target over the stage's
    duration (k6's ramping executors), as a function of the phase's time and its integral."""

    def __init__(self, stages: Sequence[tuple[float, float]]) -> None:
        self.segments: list[tuple[float, float, float, float, float]] = []  # t0, d, a, b, N0
        t = total = level = 0.0
        for duration, target in stages:
            if duration > 0:
                self.segments.append((t, duration, level, target, total))
                total += (level + target) / 2 * duration
                t += duration
            level = target
        self.duration = t
        self.total = total  # arrivals (req) over the ramp, or client-seconds

    def at(self, t: float) -> float:
        """The target at `t` s into the phase."""
        for t0, d, a, b, _ in self.segments:
            if t < t0 + d:
                return a + (b - a) * max(t - t0, 0.0) / d
        return self.segments[-1][3] if self.segments else 0.0

    def integral(self, t: float) -> float:
        """∫ target from 0 to `t`."""
        for t0, d, a, b, n0 in self.segments:
            if t < t0 + d:
                tau = max(t - t0, 0.0)
                return n0 + a * tau + (b - a) * tau * tau / (2 * d)
        return self.total

    def mean(self, t0: float, t1: float) -> float:
        """The mean target over [t0, t1]."""
        return (self.integral(t1) - self.integral(t0)) / (t1 - t0) if t1 > t0 else self.at(t0)

    def time_of(self, m: float) -> float:
        """The time at which the integral reaches `m` (past the end: infinity)."""
        for t0, d, a, b, n0 in self.segments:
            seg_total = (a + b) / 2 * d
            if m - n0 <= seg_total and seg_total > 0:
                c, rest = (b - a) / (2 * d), m - n0
                if rest <= 0:
                    return t0
                root = a * a + 4 * c * rest
                return t0 + 2 * rest / (a + math.sqrt(max(root, 0.0)))  # stable for c < 0
        return math.inf


class RampSchedule(ArrivalSchedule):
    """Intended send times under a rate ramp: arrival k when the ramp's integral reaches k
    (Poisson: a unit-rate Poisson process, time-rescaled through the ramp)."""

    def __init__(self, ramp: Ramp, arrivals: str, start: float, seed: int | None = None) -> None:
        super().__init__(1.0, arrivals, start, seed)
        self.ramp = ramp
        self._m = 0.0

    def take(self) -> float:
        if self.poisson:
            self._m += self._rng.expovariate(1.0)
            return self.start + self.ramp.time_of(self._m)
        t = self.start + self.ramp.time_of(self._k)
        self._k += 1
        return t


class ClientRamp:
    """`--stages` in closed loop: client `i` sends only while the target is above `i`."""

    def __init__(self, ramp: Ramp, start: float, deadline: float) -> None:
        self.ramp = ramp
        self.start = start
        self.deadline = deadline

    def wait_s(self, index: int, now: float) -> float:
        """How long client `index` must wait before its next request (0 = go now)."""
        t = now - self.start
        if self.ramp.at(t) > index:
            return 0.0
        step = 0.05  # the target is piecewise linear: look ahead in short steps
        ahead = t
        while ahead < self.ramp.duration and self.ramp.at(ahead) <= index:
            ahead += step
        return min(ahead - t, max(self.deadline - now, 0.0))


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
