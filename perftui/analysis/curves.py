"""A phase's latency distribution as a few percentiles, for charts of A against B.

Decoding HDR histograms is work for a worker thread, not for a screen: the comparison service
(`perftui.verdicts.compare_view`) computes the curves, and the Compare screen only draws them.
"""

from __future__ import annotations

from perftui.engine.hdr import decode
from perftui.engine.schema import RunRecord

CURVE = (1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9)


def latency_curve(record: RunRecord, key: str) -> list[float] | None:
    """Latency (ms) at each CURVE percentile, from every run's histogram of `key` merged."""
    merged = None
    for run in record.get("raw_runs") or []:
        for res in run.get("results") or []:
            encoded = (res.get("report") or {}).get("histogram")
            if f"{res.get('profile')}:{res.get('phase')}" != key or not encoded:
                continue
            hist = decode(encoded)
            if merged is None:
                merged = hist
            else:
                merged.add(hist)
    if merged is None or not merged.get_total_count():
        return None
    return [merged.get_value_at_percentile(q) / 1000.0 for q in CURVE]
