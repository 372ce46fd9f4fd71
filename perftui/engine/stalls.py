"""Stalls: spans during which requests were outstanding and none completed."""

from __future__ import annotations

from dataclasses import dataclass

from perftui.engine.hdr import ms
from perftui.engine.schema import JsonObject

STALL_MIN_S = 0.2  # a stall is longer than max(this, STALL_P50_FACTOR × the running p50)
STALL_P50_FACTOR = 20
STALLS_AT_MAX = 1000  # offsets kept in the report; count/longest/total go on counting


@dataclass(slots=True)
class Stall:
    at_s: float  # offset from the phase start
    duration_s: float


class StallDetector:
    """Spans during which requests were outstanding and none completed (both loop modes).

    A closed-loop client stops sending while the device is frozen, so its percentiles hide the
    freeze; the span without any answer does not hide. O(1) per request: a counter of requests
    in flight and the time the current quiet span began.
    """

    def __init__(self, start: float) -> None:
        self.start = start
        self.threshold_s = STALL_MIN_S
        self.outstanding = 0
        self.quiet_since = start
        self.count = 0
        self.longest_s = 0.0
        self.total_s = 0.0
        self.at: list[float] = []
        self.new: list[Stall] = []  # found since the last `drain()`, for the live events

    def set_p50(self, p50_ms: float | None) -> None:
        """The phase's running p50 raises the bar: a slow device is not a stalling one."""
        if p50_ms is not None:
            self.threshold_s = max(STALL_MIN_S, STALL_P50_FACTOR * p50_ms / 1000)

    def sent(self, now: float) -> None:
        if self.outstanding == 0:
            self.quiet_since = now
        self.outstanding += 1

    def ended(self, now: float) -> None:
        """A request ended (an answer or a failure): the quiet span, if any, is over."""
        span = now - self.quiet_since
        if span > self.threshold_s:
            self._add(self.quiet_since, span)
        self.quiet_since = now
        self.outstanding = max(0, self.outstanding - 1)

    def finish(self, now: float) -> None:
        """At the phase's end, requests still unanswered may be inside a stall."""
        if self.outstanding and now - self.quiet_since > self.threshold_s:
            self._add(self.quiet_since, now - self.quiet_since)
            self.quiet_since = now

    def _add(self, began: float, span: float) -> None:
        stall = Stall(round(began - self.start, 3), span)
        self.count += 1
        self.total_s += span
        self.longest_s = max(self.longest_s, span)
        if len(self.at) < STALLS_AT_MAX:
            self.at.append(stall.at_s)
        self.new.append(stall)

    def drain(self) -> list[Stall]:
        out, self.new = self.new, []
        return out

    def to_dict(self) -> JsonObject:
        return {
            "count": self.count,
            "longest_ms": ms(self.longest_s * 1e6),
            "total_ms": ms(self.total_s * 1e6),
            "at": list(self.at),
        }
