"""A phase's figures over time, in windows whose width is chosen from the phase's duration."""

from __future__ import annotations

from typing import Any

from hdrh.histogram import HdrHistogram

from perftui.engine.hdr import clear, encode, new_histogram, new_scratch, quick_percentiles_ms
from perftui.engine.schema import JsonObject

TIMELINE_MAX_POINTS = 300  # a phase of any length keeps at most this many windows in its record
TIMELINE_WINDOWS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


def timeline_window_s(duration: float) -> int:
    """The narrowest round window that keeps a phase of `duration` within the point budget."""
    need = max(duration, 0.0) / TIMELINE_MAX_POINTS
    return next((w for w in TIMELINE_WINDOWS_S if w >= need), TIMELINE_WINDOWS_S[-1])


class Timeline:
    """A phase's figures per window of a fixed width, chosen from the phase's duration so that
    an 8-hour soak and a 12-second burst both keep a few hundred points at most.

    It is fed the recorder's snapshot windows (each a fraction of a timeline window), so each
    window's percentiles come from its own histogram, not from merged percentiles. The verdicts
    use the windows as blocks of one run (with each window's histogram, `histograms`, so that a
    resample of windows has a whole-run percentile); the soak views draw them.
    """

    COLUMNS = ("t_s", "requests", "errors", "rps", "p50_ms", "p95_ms", "p99_ms", "heap_free")

    def __init__(self, duration: float) -> None:
        self.window_s = timeline_window_s(duration)
        self.columns: dict[str, list[Any]] = {c: [] for c in self.COLUMNS}
        self.histograms: list[str] = []  # each window's latency histogram, encoded
        self._hist = new_histogram()
        self._scratch = new_scratch()
        self._start = 0.0
        self._requests = self._errors = 0
        self._heap: int | None = None

    def add(self, window: HdrHistogram, requests: int, errors: int, elapsed: float) -> None:
        """One snapshot window ending at `elapsed` s, with its new requests and errors."""
        self._hist.add(window)
        self._requests += requests
        self._errors += errors
        if elapsed - self._start >= self.window_s - 1e-6:
            self._close(elapsed)

    def note_heap(self, free_bytes: int | None) -> None:
        """The device's free heap, polled during the window; the last value read is kept."""
        if free_bytes is not None:
            self._heap = free_bytes

    def _close(self, end: float) -> None:
        span = end - self._start
        if span <= 0 or (self._requests == 0 and self._heap is None):
            self._start = end
            return
        p50, p95, p99 = quick_percentiles_ms(self._hist, self._scratch)
        row = (round(end, 3), self._requests, self._errors, round(self._requests / span, 3))
        for key, value in zip(self.COLUMNS, (*row, p50, p95, p99, self._heap), strict=True):
            self.columns[key].append(value)
        self.histograms.append(encode(self._hist))
        clear(self._hist)
        self._requests = self._errors = 0
        self._heap = None
        self._start = end

    def to_dict(self, end: float) -> JsonObject:
        """The record's form, with the last partial window closed at `end`."""
        if self._requests or self._heap is not None:
            self._close(max(end, self._start))
        columns = dict(self.columns)
        if all(v is None for v in columns["heap_free"]):
            del columns["heap_free"]
        return {"window_s": self.window_s, **columns, "histograms": list(self.histograms)}


def window_spans(timeline: JsonObject) -> list[tuple[float, float]]:
    """(start, end) of each of a stored timeline's windows: from the previous window's end,
    unless windows without a request were skipped between them (a ramp from 0): then one width."""
    width = float(timeline.get("window_s") or 1)
    spans = []
    previous = 0.0
    for end in timeline.get("t_s") or []:
        start = previous if end - previous < 2 * width else end - width
        spans.append((start, float(end)))
        previous = end
    return spans
