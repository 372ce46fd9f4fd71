"""A side's numbers, read from its record: the phase reports by `profile:phase`, per-run values
of a metric (whole phase or one path), the timeline's windows and window histograms, error
counts, and the same for the records of a noise sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from perftui.analysis.metrics import CAPACITY, METRICS, Metric


def capacity_reports(record: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """A capacity search's answer as the one "report" of the key "capacity" (or nothing), so
    earlier searches of the device are its noise like earlier runs are a phase's."""
    value = (record.get("capacity") or {}).get(CAPACITY.name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"capacity": [{CAPACITY.name: value}]}
    return {}


def phase_reports(record: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for run in record.get("raw_runs") or []:
        for res in run.get("results") or []:
            key = f"{res.get('profile')}:{res.get('phase')}"
            out.setdefault(key, []).append(res.get("report") or {})
    return out


def client_bound_runs(record: dict[str, Any]) -> tuple[int, int]:
    """(client-bound phase runs, phase runs) of a record: how much of it measured perftui's
    host rather than the device."""
    reports = [r for runs in phase_reports(record).values() for r in runs]
    return sum(1 for r in reports if r.get("client_bound")), len(reports)


def _value(report: dict[str, Any], metric: Metric, path: str | None) -> float | None:
    src = report if path is None else (report.get("path_metrics") or {}).get(path) or {}
    if metric.source is not None:
        src = src.get(metric.source) or {}
    value = src.get(metric.field or metric.name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def varies(metric: Metric, reports: list[dict[str, Any]], path: str | None) -> bool:
    """A corrected variant (`Metric.variant_of`) earns a row only where it differs somewhere."""
    if metric.variant_of is None:
        return True
    plain = METRICS[metric.variant_of]
    return any(_value(r, metric, path) != _value(r, plain, path) for r in reports)


def run_values(
    reports: list[dict[str, Any]], agg: dict[str, Any], metric: Metric, path: str | None
) -> list[float]:
    """Per-run values; the aggregated median stands in when the raw runs lack the metric
    (imported legacy files that kept only summaries)."""
    values = [v for v in (_value(r, metric, path) for r in reports) if v is not None]
    if not values and metric.source is None:
        if path is not None:
            agg = (agg.get("path_metrics") or {}).get(path) or {}
        summary = agg.get(metric.name)
        median = summary.get("median") if isinstance(summary, dict) else None
        values = [float(median)] if isinstance(median, int | float) else []
    return values


def record_values(records: Sequence[dict[str, Any]], metric: Metric) -> list[list[float]] | None:
    """Each record's per-run values of `metric` on the first `profile:phase` all of them have
    (None when they share none, or a record lacks the metric): what a record's level is."""
    reports = [phase_reports(r) for r in records]
    shared = set.intersection(*(set(r) for r in reports)) if reports else set()
    for key in sorted(shared):
        groups = [run_values(r[key], {}, metric, None) for r in reports]
        if all(groups):
            return groups
    return None


def timeline_windows(report: dict[str, Any], metric: Metric) -> np.ndarray | None:
    """The metric per timeline window of one phase report (None if the record has none)."""
    timeline = report.get("timeline")
    if metric.window is None or not isinstance(timeline, dict):
        return None
    if metric.window == "error_rate":
        requests = np.asarray(timeline.get("requests") or [], dtype=float)
        errors = np.asarray(timeline.get("errors") or [], dtype=float)
        if requests.size == 0 or requests.size != errors.size:
            return None
        keep = requests > 0
        return 100.0 * errors[keep] / requests[keep]
    column = [v for v in timeline.get(metric.window) or [] if isinstance(v, int | float)]
    return np.asarray(column, dtype=float) if column else None


def window_histograms(report: dict[str, Any]) -> list[str] | None:
    """A phase report's window histograms, when the record has one per timeline window."""
    timeline = report.get("timeline")
    if not isinstance(timeline, dict):
        return None
    hists = timeline.get("histograms")
    windows = timeline.get("p95_ms") or []
    if not isinstance(hists, list) or not hists or len(hists) != len(windows):
        return None
    return hists if all(isinstance(h, str) for h in hists) else None


def count_totals(
    reports: list[dict[str, Any]], metric: Metric, path: str | None
) -> tuple[int, int] | None:
    """(events, trials) over every run of a side for a count row, None if a run lacks them."""
    if metric.counts is None:
        return None
    events = trials = 0
    for report in reports:
        src = report if path is None else (report.get("path_metrics") or {}).get(path) or {}
        x, n = (src.get(name) for name in metric.counts)
        if not isinstance(x, int) or not isinstance(n, int) or isinstance(x, bool):
            return None
        events, trials = events + x, trials + n
    return (events, trials) if reports else None


def paths_of(reports: list[dict[str, Any]], agg: dict[str, Any]) -> set[str]:
    paths = set((agg.get("path_metrics") or {}).keys())
    for report in reports:
        paths |= set((report.get("path_metrics") or {}).keys())
    return paths


def noise_series(
    noise: Sequence[dict[str, list[dict[str, Any]]]], key: str, metric: Metric, path: str | None
) -> list[list[float]]:
    """Per earlier run (its phase reports by key), its per-run values of one row."""
    out = []
    for reports in noise:
        found = (_value(r, metric, path) for r in reports.get(key, []))
        values = [v for v in found if v is not None]
        if values:
            out.append(values)
    return out
