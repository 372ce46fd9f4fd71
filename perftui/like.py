"""Like with like: which stored settings make two runs comparable, and their digest.

A run's `measurement` holds the settings that shape its load and what it measures. Records
written before view-only settings were left out of it still carry them (and a fingerprint over
them), so the digest is always recomputed from `measurement` without those keys: old and new
records made the same way compare, whichever face (TUI or CLI) made them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from perftui.engine.events import RunStatus
from perftui.engine.schema import JsonObject, RunRecord
from perftui.settings import SETTINGS

# The settings the registry (`perftui.settings`) declares outside the fingerprint, by their
# RunConfig name. Among them, how often a viewer is sent snapshots, per-path percentiles and heap
# telemetry: the TUI asks for them to draw its live view, the CLI does not. They change what a
# viewer sees during a run, not the clients, rates, durations or requests measured (a heap read
# every few seconds goes over the control connection, not the load's), so runs differing only
# there are like with like; records written before they left `measurement` still hold them.
NOT_FINGERPRINTED = frozenset(s.field for s in SETTINGS if not s.fingerprint)


def like_settings(settings: JsonObject) -> JsonObject:
    """`measurement` without the settings outside the fingerprint (in records written before)."""
    return {k: v for k, v in settings.items() if k not in NOT_FINGERPRINTED}


def fingerprint(settings: JsonObject) -> str:
    """A short stable digest of a run's `measurement`, settings outside it left out."""
    text = json.dumps(like_settings(settings), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def settings_key(record: RunRecord) -> str | None:
    """The fingerprint `record` is matched by: recomputed from its `measurement` (so a record
    stored with an older digest still matches), else the stored one (None for runs made before
    settings were kept, which then match only each other)."""
    settings = record.get("measurement")
    if isinstance(settings, dict):
        return fingerprint(settings)
    stored = record.get("settings_fingerprint")
    return stored if isinstance(stored, str) else None


# A run stopped before any phase gave a result (an unreachable device, a failed first probe, a
# stop or a hard timeout before the first phase) measured nothing: it is stored as such and is
# comparable with nothing (not `previous`, a baseline, a trend point or noise).
NOT_STARTED = RunStatus.NOT_STARTED


def run_status(record: RunRecord) -> str:
    """A run record's status; one stopped before its first phase result is NOT_STARTED, also
    when it was stored (as `hard_stop` or `stopped`) before that status existed."""
    status = record.get("status") or "finished"
    if status in ("hard_stop", "stopped") and not any(
        run.get("results") for run in record.get("raw_runs") or []
    ):
        return NOT_STARTED
    return str(status)


# ----- the differences between two runs' settings ------------------------------------------


def identity(record: dict[str, Any]) -> str:
    """The device a run measured: a stable name ("sim" for the built-in simulator, whatever its
    port) or the target."""
    return str(record.get("device") or record.get("target") or "?")


def setting_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Every difference between the settings that shape the two runs' load and measurement
    (the record's `measurement`), the device, and "settings unknown" for a run without them."""
    out = []
    if identity(a) != identity(b):
        out.append(f"device: A {identity(a)}, B {identity(b)}")
    ma, mb = a.get("measurement"), b.get("measurement")
    if not isinstance(ma, dict) or not isinstance(mb, dict):
        unknown = [s for s, m in (("A", ma), ("B", mb)) if not isinstance(m, dict)]
        out.append(f"settings unknown for {' and '.join(unknown)} (recorded before they were kept)")
        return out
    for name, va, vb in _diff(like_settings(ma), like_settings(mb), ""):
        if None in (va, vb) and isinstance(va if vb is None else vb, dict):
            out.append(f"{name}: only in {'A' if vb is None else 'B'}")  # a profile of one side
        else:
            out.append(f"{name}: A {_short(va)}, B {_short(vb)}")
    return out


def _diff(a: Any, b: Any, prefix: str) -> list[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += _diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if a == b else [(prefix, a, b)]


def _short(value: Any) -> str:
    text = "–" if value is None else str(value)
    return text if len(text) <= 40 else text[:37] + "…"
