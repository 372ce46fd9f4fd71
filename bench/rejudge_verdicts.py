"""Re-judge the stored runs of a `bench_verdicts.py --keep DIR` run with this checkout's compare.

The runs a verdict is made from do not depend on the compare code, so a change to the verdict
can be measured on the very runs an earlier bench made, try by try, without an hour of new load.
For each A/A pair (the kept A/A history) the noise is what the live compare had: the 20 newest
runs stored before the pair (the store also holds later ones). Each A/B try's kept history holds
just what the live compare saw, so it is judged as `perftui compare` judges it. "Fails CI" is
what `perftui compare A B --fail-on-regression` would exit 1 on; the ×1.1 tries use the bench's
`--threshold p95_ms=5 --threshold p99_ms=5`.

    PYTHONPATH=$PWD .venv/bin/python bench/rejudge_verdicts.py DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from perftui.analysis.compare import (  # noqa: E402
    Comparison,
    RegressionThresholds,
    compare_runs,
)
from perftui.cli.history import compare_with_noise, gate_exit  # noqa: E402
from perftui.history.store import HistoryStore, record_started  # noqa: E402

NOISE_RUNS = 20
SMALL = {"p95_ms": 5.0, "p99_ms": 5.0}


def _key(record: dict[str, Any]) -> tuple[str, str]:
    return record_started(record) or "", record.get("run_id") or ""


def _thresholds(small: bool) -> RegressionThresholds:
    return RegressionThresholds().updated(SMALL, "--threshold") if small else RegressionThresholds()


def _judged(c: Comparison) -> dict:
    p95 = {r.key.split(":")[-1]: r.verdict for r in c.rows if r.metric == "p95_ms" and not r.path}
    gated = [f"{r.key} {r.metric} {r.change:+.1f}" for r in c.regressions]
    return {"fails_ci": gate_exit(c, True, False) == 1, "p95": p95, "gated": gated}


def aa(history: Path) -> dict[str, list[dict]]:
    """Each A/A pair, judged with the 20 newest comparable runs stored before it."""
    store = HistoryStore(history)
    records = sorted(store.records(store.list_runs()), key=_key)
    by_tag = {r.get("tag"): r for r in records}
    out: dict[str, list[dict]] = {}
    for runs in (1, 3):
        tries = []
        for k in range(0, 1000, 2):
            a, b = by_tag.get(f"aa_r{runs}_{k:02d}"), by_tag.get(f"aa_r{runs}_{k + 1:02d}")
            if a is None or b is None:
                break
            before = [r for r in records if _key(r) < _key(a)][-NOISE_RUNS:]
            tries.append(_judged(compare_runs(a, b, _thresholds(False), noise=before)))
        out[f"A/A R={runs}"] = tries
    return out


def ab(tries_dir: Path) -> list[dict]:
    """Each kept A/B try, as `perftui compare ab_a ab_b` in its history."""
    judged = []
    for try_dir in sorted(p for p in tries_dir.iterdir() if p.is_dir()):
        store = HistoryStore(try_dir)
        a, b = store.resolve("ab_a"), store.resolve("ab_b")
        small = _thresholds(b.get("runs_per_profile") == 5)
        judged.append(_judged(compare_with_noise(store, a, b, small)))
    return judged


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kept", type=Path, help="the --keep DIR of a bench_verdicts run")
    args = ap.parse_args()
    scenarios = aa(args.kept / "aa")
    for tries_dir in sorted((args.kept / "ab").iterdir(), key=lambda p: p.name, reverse=True):
        slowdown, runs = tries_dir.name[1:].split("_r")  # x1.3_r3
        scenarios[f"A/B ×{slowdown} R={runs}"] = ab(tries_dir)
    lines = ["| scenario | tries | fail CI | rate | p95 verdicts |", "|---|---|---|---|---|"]
    for name, tries in scenarios.items():
        failed = sum(t["fails_ci"] for t in tries)
        verdicts = Counter(v for t in tries for v in t["p95"].values())
        counts = ", ".join(f"{v} ×{n}" for v, n in verdicts.most_common())
        rate = f"{failed / len(tries):.0%}" if tries else "–"
        lines.append(f"| {name} | {len(tries)} | {failed} | {rate} | {counts} |")
    print("\n".join(lines))
    print(json.dumps(scenarios, indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
