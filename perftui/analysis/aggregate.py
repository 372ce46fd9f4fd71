"""Summaries across the N runs of each `profile:phase` (the payload's `aggregated`)."""

from __future__ import annotations

import statistics

from perftui.analysis.metrics import METRICS, PATH_METRICS
from perftui.engine.schema import Aggregate, PhaseResult, RawRun

# The top-level phase-report metrics summarised per `profile:phase`.
SUMMARISED = tuple(name for name, m in METRICS.items() if m.source is None)


def summary(values: list[float], higher_is_better: bool) -> dict[str, float | None]:
    """{median, best, worst, mean, stdev}; best is the highest only for throughput."""
    vals = [v for v in values if v is not None]
    if not vals:
        return dict.fromkeys(("median", "best", "worst", "mean", "stdev"))
    best, worst = (max(vals), min(vals)) if higher_is_better else (min(vals), max(vals))
    return {
        "median": round(statistics.median(vals), 4),
        "best": best,
        "worst": worst,
        "mean": round(statistics.fmean(vals), 4),
        "stdev": round(statistics.stdev(vals), 4) if len(vals) > 1 else 0.0,
    }


def aggregate(raw_runs: list[RawRun]) -> dict[str, Aggregate]:
    """Group phase results by `profile:phase` and summarise each metric and each path."""
    groups: dict[str, list[PhaseResult]] = {}
    for run in raw_runs:
        for result in run["results"]:
            groups.setdefault(f"{result['profile']}:{result['phase']}", []).append(result)
    out: dict[str, Aggregate] = {}
    for key, results in groups.items():
        reports = [r["report"] for r in results]
        entry: Aggregate = {
            "profile": results[0]["profile"],
            "phase": results[0]["phase"],
            "sample_count": len(results),
            "pass_rate": round(sum(1 for r in results if r["pass"]) / len(results), 4),
        }
        for metric in SUMMARISED:
            values = [rep.get(metric) for rep in reports]
            entry[metric] = summary(values, METRICS[metric].higher_is_better)
        paths: None = {}
        for rep in reports:
            for path in rep.get("path_metrics", {}):
                paths.setdefault(path, None)
        entry["path_metrics"] = {
            path: {
                m: summary(
                    [rep.get("path_metrics", {}).get(path, {}).get(m) for rep in reports],
                    METRICS[m].higher_is_better,
                )
                for m in PATH_METRICS
            }
            for path in paths
        }
        out[key] = entry
    return out
