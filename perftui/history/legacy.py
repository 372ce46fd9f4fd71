"""Import the old runner's history files (`perf_*.json`, `latest.json`, `latest.partial.json`).

A user's years of history must come along, once: each file is deduplicated on the hash of its
original content, so importing a folder twice, or `latest.json` next to the `perf_*.json` it
copies, adds nothing. Files perftui wrote itself (they carry `schema` and `run_id`) are taken as
they are and deduplicated on their run id, since the run is already in the database.

Keys perftui added later are filled with None (never guessed), except heap drops, which the old
reports hold implicitly in `mem_before`/`mem_after`.
"""

from __future__ import annotations

from perftui.engine.schema import Aggregate, PhaseReport, RawRun, RunRecord

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perftui.analysis.aggregate import SUMMARISED, summary
from perftui.analysis.metrics import METRICS
from perftui.engine.events import RunStatus
from perftui.engine.schema import RECORD_SCHEMA
from perftui.history.store import HistoryStore, content_hash, iso_utc, parse_utc

PARTIAL_NAME = "latest.partial.json"
_NAME_RE = re.compile(r"^perf_(\d{8}T\d{6}Z)(?:_(.+))?\.json$")
NEW_REPORT_KEYS = (
    "p90_ms",
    "p999_ms",
    "max_ms",
    "min_ms",
    "stdev_ms",
    "errors_by_kind",
    "watchdog_budget_s",
    "timed_out",
    "stopped",
    "histogram",
)


class LegacyError(ValueError):
    """A file that is not a legacy history payload; the message is one line."""


@dataclass
class ImportResult:
    added: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def legacy_files(paths: Iterable[Path]) -> list[Path]:
    """The files to import: given files as they are, folders' legacy files sorted by name."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = [
                p
                for p in sorted(path.iterdir())
                if _NAME_RE.match(p.name) or p.name in ("latest.json", PARTIAL_NAME)
            ]
            out += found
        else:
            out.append(path)
    return out


def _heap_drop(report: PhaseReport, key: str) -> int | None:
    before = (report.get("mem_before") or {}).get("heap") or {}
    after = (report.get("mem_after") or {}).get("heap") or {}
    if isinstance(before.get(key), int) and isinstance(after.get(key), int):
        return before[key] - after[key]
    return None


def _upgrade_report(report: PhaseReport) -> PhaseReport:
    report = dict(report)
    for key in NEW_REPORT_KEYS:
        report.setdefault(key, None)
    report.setdefault("heap_internal_drop", _heap_drop(report, "internal_free"))
    report.setdefault("heap_psram_drop", _heap_drop(report, "psram_free"))
    report.setdefault("telemetry_available", bool(report.get("mem_before")))
    return report


def _upgrade_aggregated(aggregated: dict[str, Aggregate], raw_runs: list[RawRun]) -> None:
    """Add `stdev` to the old summaries and the summaries of metrics the old runner lacked."""
    reports: dict[str, list[PhaseReport]] = {}
    for run in raw_runs:
        for res in run.get("results") or []:
            key = f"{res.get('profile')}:{res.get('phase')}"
            reports.setdefault(key, []).append(res.get("report") or {})
    for key, entry in aggregated.items():
        for metric in SUMMARISED:
            if isinstance(entry.get(metric), dict):
                entry[metric].setdefault("stdev", None)
            else:
                values = [r.get(metric) for r in reports.get(key, [])]
                entry[metric] = summary(values, METRICS[metric].higher_is_better)
        for metrics in (entry.get("path_metrics") or {}).values():
            for value in metrics.values():
                if isinstance(value, dict):
                    value.setdefault("stdev", None)


def read_legacy(path: Path) -> tuple[RunRecord, str]:
    """A legacy file as a perftui record, and the hash of its original content."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LegacyError(f"{path}: cannot read: {exc}") from None
    if not isinstance(payload, dict) or not {"timestamp_utc", "raw_runs"} <= payload.keys():
        raise LegacyError(f"{path}: not a legacy perf history file (no timestamp_utc/raw_runs)")
    digest = content_hash(payload)
    if payload.get("schema") and payload.get("run_id"):
        return payload, digest  # written by perftui itself: already a full record
    match = _NAME_RE.match(path.name)
    started = parse_utc(payload.get("timestamp_utc")) or (
        parse_utc(match.group(1)) if match else None
    )
    if started is None:
        raise LegacyError(f"{path}: unreadable timestamp_utc {payload.get('timestamp_utc')!r}")
    record = json.loads(json.dumps(payload))  # a deep copy that is plain JSON
    if path.name == PARTIAL_NAME:
        status = RunStatus.STOPPED
    elif record.get("hard_stop_reason"):
        status = RunStatus.HARD_STOP
    else:
        status = RunStatus.FINISHED
    raw_runs = record.get("raw_runs") or []
    for run in raw_runs:
        for res in run.get("results") or []:
            res["report"] = _upgrade_report(res.get("report") or {})
    record["raw_runs"] = raw_runs
    record["aggregated"] = record.get("aggregated") or {}
    _upgrade_aggregated(record["aggregated"], raw_runs)
    for key in ("comparison_to_previous", "thresholds"):
        record.setdefault(key, None)
    record.setdefault("hard_stop_reason", None)
    record.setdefault("profiles", sorted({r.get("profile") for r in raw_runs} - {None}))
    record.setdefault("overall_pass", False if status == "stopped" else None)
    record.update(
        {
            "schema": RECORD_SCHEMA,
            "run_id": f"{started.strftime('%Y%m%dT%H%M%SZ')}-{digest[:6]}",
            "status": status,
            "started_at": iso_utc(started),
            "finished_at": None,
            "tag": (match.group(2) if match else None) or "",
            "note": "",
            "settings": None,
            "profile_definitions": None,
            "metadata": None,
            "source": f"legacy:{path.name}",
        }
    )
    return record, digest


def import_paths(store: HistoryStore, paths: Iterable[Path]) -> ImportResult:
    """Import files and folders; bad files are reported and skipped, never half-stored."""
    result = ImportResult()
    stored = store.list_runs()
    known = {s["content_hash"] for s in stored} | {s["run_id"] for s in stored}
    for path in legacy_files(paths):
        try:
            record, digest = read_legacy(path)
        except LegacyError as exc:
            result.errors.append(str(exc))
            continue
        if digest in known or record["run_id"] in known:
            result.duplicates.append(str(path))
            continue
        result.added.append(store.add_run(record, digest=digest))
        known |= {digest, record["run_id"]}
    return result
