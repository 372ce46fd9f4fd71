"""`--metrics-port`: the run's figures as Prometheus/OpenMetrics text, for a Grafana wall.

Served by the process that reads the event stream (the attached `perftui run`, or a detached
run's host), on prometheus_client's own server thread: never in the engine's process, so a
scrape cannot touch the load's event loop. Everything is built from the events at scrape time
by one collector: counters are the run's totals (finished phases from their reports, plus the
running phase's last heartbeat), so they only grow, as Prometheus counters must.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from perftui.engine.device import heap_value
from perftui.engine.events import (
    LATENCY_BUCKETS_MS,
    Event,
    Heartbeat,
    PhaseFinished,
    PhaseStarted,
    RunStarted,
    Stall,
    Telemetry,
)
from perftui.engine.schema import PhaseReport


class _Totals:
    """Counts of one stretch of the run (the finished phases, or the running one)."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()  # (profile, path)
        self.errors: Counter[tuple[str, str]] = Counter()
        self.kinds: Counter[tuple[str, str]] = Counter()  # (profile, kind)
        self.le: dict[str, list[int]] = {}  # profile → answered at or below each bound
        self.sum_ms: Counter[str] = Counter()

    def add(self, other: _Totals) -> None:
        self.requests.update(other.requests)
        self.errors.update(other.errors)
        self.kinds.update(other.kinds)
        self.sum_ms.update(other.sum_ms)
        for profile, counts in other.le.items():
            mine = self.le.setdefault(profile, [0] * len(counts))
            self.le[profile] = [a + b for a, b in zip(mine, counts, strict=True)]


class RunMetrics(Collector):
    """The collector: fed events by `handle`, read by the server thread at each scrape."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._done = _Totals()
        self._running = _Totals()
        self._gauges: dict[str, float] = {}
        self._heap: dict[str, float] = {}
        self._stalls = 0
        self._phase = ("", "")

    def handle(self, events: Iterable[Event]) -> None:
        with self._lock:
            for event in events:
                self._take(event)

    def _take(self, event: Event) -> None:
        match event:
            case RunStarted():
                self.target = event.target
            case PhaseStarted():
                self._running = _Totals()
                self._phase = (event.profile, event.phase)
                self._gauges["target_rps"] = event.rate or 0.0
            case Heartbeat():
                self._running = self._from_heartbeat(event)
                self._gauges.update(
                    achieved_rps=event.rps_now,
                    p50=event.window_p50_ms or 0.0,
                    p95=event.window_p95_ms or 0.0,
                    p99=event.window_p99_ms or 0.0,
                    elapsed=event.elapsed,
                )
            case PhaseFinished():
                final = self._from_report(event.profile, event.report)
                final.le, final.sum_ms = self._running.le, self._running.sum_ms
                self._done.add(final)
                self._running = _Totals()
                self._gauges["achieved_rps"] = 0.0
            case Stall():
                self._stalls += 1
            case Telemetry() if event.memory:
                for kind in ("internal_free", "psram_free"):
                    if (value := heap_value(event.memory, kind)) is not None:
                        self._heap[kind] = float(value)

    @staticmethod
    def _from_heartbeat(beat: Heartbeat) -> _Totals:
        out = _Totals()
        for path, counts in beat.paths.items():
            out.requests[(beat.profile, path)] = counts.requests
            out.errors[(beat.profile, path)] = counts.err
        for kind, n in beat.errors_by_kind.items():
            out.kinds[(beat.profile, kind)] = n
        if beat.latency_le is not None:
            out.le[beat.profile] = list(beat.latency_le)
            out.sum_ms[beat.profile] = beat.latency_sum_ms or 0.0
        return out

    @staticmethod
    def _from_report(profile: str, report: PhaseReport) -> _Totals:
        """A finished phase's exact counts, from its report (the last heartbeat may lag)."""
        out = _Totals()
        for path, entry in (report.get("path_metrics") or {}).items():
            out.requests[(profile, path)] = entry.get("requests_total", 0)
            out.errors[(profile, path)] = entry.get("err", 0)
        for kind, n in (report.get("errors_by_kind") or {}).items():
            out.kinds[(profile, kind)] = n
        return out

    def collect(self) -> Iterator[Any]:
        with self._lock:
            total = _Totals()
            total.add(self._done)
            total.add(self._running)
            gauges, heap, stalls, phase = (
                dict(self._gauges),
                dict(self._heap),
                self._stalls,
                self._phase,
            )
        yield from self._counted(total)
        yield from self._gauged(gauges, phase)
        heap_g = GaugeMetricFamily(
            "perftui_device_heap_free_bytes",
            "The device's free heap, last read",
            labels=["target", "kind"],
        )
        for kind, value in sorted(heap.items()):
            heap_g.add_metric([self.target, kind.removesuffix("_free")], value)
        yield heap_g
        stall_count = CounterMetricFamily(
            "perftui_stalls", "Stalls: no answer while requests waited", labels=["target"]
        )
        stall_count.add_metric([self.target], stalls)
        yield stall_count

    def _counted(self, total: _Totals) -> Iterator[Any]:
        """Requests, errors and errors by kind per profile (and path), and the latency
        histogram."""
        t = self.target
        requests = CounterMetricFamily(
            "perftui_requests",
            "Requests sent, by profile and path",
            labels=["target", "profile", "path"],
        )
        errors = CounterMetricFamily(
            "perftui_errors",
            "Failed requests, by profile and path",
            labels=["target", "profile", "path"],
        )
        for (profile, path), n in sorted(total.requests.items()):
            requests.add_metric([t, profile, path], n)
            errors.add_metric([t, profile, path], total.errors[(profile, path)])
        kinds = CounterMetricFamily(
            "perftui_errors_by_kind",
            "Failed requests by kind (timeout, refused, reset, http_4xx, http_5xx, other, check)",
            labels=["target", "profile", "kind"],
        )
        for (profile, kind), n in sorted(total.kinds.items()):
            kinds.add_metric([t, profile, kind], n)
        latency = HistogramMetricFamily(
            "perftui_latency_seconds",
            "Latency of answered requests (HDR precision at each bound)",
            labels=["target", "profile"],
        )
        bounds = [f"{ms / 1000:g}" for ms in LATENCY_BUCKETS_MS] + ["+Inf"]
        for profile, counts in sorted(total.le.items()):
            buckets = list(zip(bounds, counts, strict=True))
            latency.add_metric([t, profile], buckets, total.sum_ms[profile] / 1000)
        yield from (requests, errors, kinds, latency)

    def _gauged(self, gauges: dict[str, float], phase: tuple[str, str]) -> Iterator[Any]:
        """The running phase's rates and elapsed time, and the last window's percentiles."""
        t = self.target
        profile, name = phase
        for metric, help_text, value in (
            (
                "perftui_achieved_rps",
                "Requests per second in the last heartbeat",
                gauges.get("achieved_rps", 0.0),
            ),
            (
                "perftui_target_rps",
                "Open loop: the rate asked for (0 = closed loop)",
                gauges.get("target_rps", 0.0),
            ),
            (
                "perftui_phase_elapsed_seconds",
                "Seconds into the running phase",
                gauges.get("elapsed", 0.0),
            ),
        ):
            g = GaugeMetricFamily(metric, help_text, labels=["target", "profile", "phase"])
            g.add_metric([t, profile, name], value)
            yield g
        window = GaugeMetricFamily(
            "perftui_window_latency_ms",
            "Latency percentiles of the last heartbeat's window",
            labels=["target", "percentile"],
        )
        for q in ("p50", "p95", "p99"):
            window.add_metric([t, q], gauges.get(q, 0.0))
        yield window


class Exporter:
    """The metrics server of one run: `handle(events)` as they are read; `close()` at the end."""

    def __init__(self, port: int, bind: str, target: str) -> None:
        self.metrics = RunMetrics(target)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.metrics)
        self._server, self._thread = start_http_server(port, addr=bind, registry=registry)
        self.port = self._server.server_port

    def handle(self, events: Iterable[Event]) -> None:
        self.metrics.handle(events)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
