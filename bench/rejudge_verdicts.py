"""Re-judge the stored runs of a `bench_verdicts.py --keep DIR` run with this checkout's compare.

The runs a verdict is made from do not depend on the compare code, so a change to the verdict
can be measured on the very runs an earlier bench made, try by try, without an hour of new load.
For each A/A pair (the kept A/A history) the noise is what the live compare had: the 20 newest
runs stored before the pair (the store also holds later ones). Each A/B try's kept history holds
just what the live compare saw, so it is judged as `perftui compare` judges it. "Fails CI" is
what `perftui compare A B --fail-on-regression` would exit 1 on; the ×1.1 tries use the bench's
`--threshold p95_ms=5 --threshold p99_ms=5`.

`--history N` judges each A/B try with the N newest runs of DIR/aa as the device's history (what
the bench would have seeded), instead of the runs kept with the try.

The "oracle" column is what this rule could do if it knew each row's noise: the same rule (95 %
interval beyond zero, change past the threshold, Benjamini–Hochberg over the primary rows), but
with the spread of record means over every other record of the unchanged device with the same
runs per record (the A/A records and the A sides of the tries, leaving out the pair judged) in
place of an estimate. Where it misses a target, a verdict of this rule cannot meet it at this
noise (a one-sided or pooled test might do somewhat better).

    PYTHONPATH=$PWD .venv/bin/python bench/rejudge_verdicts.py DIR [--history 20]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from perftui.analysis.compare import compare_runs  # noqa: E402
from perftui.analysis.comparison import Comparison, Row  # noqa: E402
from perftui.analysis.judge import control_fdr, judge  # noqa: E402
from perftui.analysis.metrics import METRICS  # noqa: E402
from perftui.analysis.stats import quantile  # noqa: E402
from perftui.analysis.thresholds import RegressionThresholds  # noqa: E402
from perftui.cli.compare import gate_exit  # noqa: E402
from perftui.history.store import HistoryStore, record_started  # noqa: E402
from perftui.verdicts import NOISE_RUNS, compare  # noqa: E402

SMALL = {"p95_ms": 5.0, "p99_ms": 5.0}
# The primary rows that vary on this device (error rate and heap drop stay 0 on every side).
ORACLE_METRICS = ("rps_ok", "p95_ms", "p99_ms")


def _key(record: dict[str, Any]) -> tuple[str, str]:
    return record_started(record) or "", record.get("run_id") or ""


def _thresholds(small: bool) -> RegressionThresholds:
    return RegressionThresholds().updated(SMALL, "--threshold") if small else RegressionThresholds()


def _judged(c: Comparison, oracle: bool | None) -> dict:
    p95 = {r.key.split(":")[-1]: r.verdict for r in c.rows if r.metric == "p95_ms" and not r.path}
    gated = [f"{r.key} {r.metric} {r.change:+.1f}" for r in c.regressions]
    fails = gate_exit(c, True, False) == 1
    return {"fails_ci": fails, "oracle_fails_ci": oracle, "p95": p95, "gated": gated}


def _logs(record: dict[str, Any]) -> dict[tuple[str, str], list[float]]:
    """Per (profile:phase, metric) of the oracle, the log of each run's value."""
    out: dict[tuple[str, str], list[float]] = {}
    for run in record.get("raw_runs") or []:
        for res in run.get("results") or []:
            report = res.get("report") or {}
            for name in ORACLE_METRICS:
                value = report.get(name)
                if isinstance(value, int | float) and value > 0:
                    key = (f"{res.get('profile')}:{res.get('phase')}", name)
                    out.setdefault(key, []).append(math.log(value))
    return out


class Oracle:
    """The verdict's rule with the true noise: the sd of record means of each row, over the
    unchanged device's other records of the same number of runs."""

    def __init__(self, unchanged: list[dict[str, Any]]) -> None:
        self.means: dict[tuple[int, str, str], dict[str, float]] = {}
        for record in unchanged:
            for (key, name), logs in _logs(record).items():
                shape = self.means.setdefault((len(logs), key, name), {})
                shape[record.get("run_id") or ""] = statistics.fmean(logs)

    def fails_ci(
        self, a: dict[str, Any], b: dict[str, Any], thresholds: RegressionThresholds
    ) -> bool | None:
        """Would the oracle fail CI on A against B (None: under 10 other records of its shape)?"""
        la, lb = _logs(a), _logs(b)
        pair, z = {a.get("run_id"), b.get("run_id")}, quantile(0.975, math.inf)
        rows = []
        for (key, name), va in la.items():
            vb = lb.get((key, name))
            others = [m for run_id, m in self.means.get((len(va), key, name), {}).items()
                      if run_id not in pair]  # fmt: skip
            if not vb or len(vb) != len(va) or len(others) < 10:
                return None
            metric = METRICS[name]
            se = statistics.stdev(others) * math.sqrt(2.0)
            diff = statistics.fmean(vb) - statistics.fmean(va)
            change, low, high = (100 * math.expm1(d) for d in (diff, diff - z * se, diff + z * se))
            threshold = thresholds.values[name]
            verdict = judge(change, low, high, threshold, metric.higher_is_better)
            row = Row(key, None, name, None, None, change, "%", threshold, verdict, "oracle")
            row.primary, row.low, row.high = True, low, high
            row.p_value = math.erfc(abs(diff) / se / math.sqrt(2.0))
            rows.append(row)
        if not rows:
            return None
        control_fdr(rows, thresholds.alpha)
        return any(r.verdict == "REGRESSION" for r in rows)


def aa(history: Path, oracle: Oracle) -> dict[str, list[dict]]:
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
            c = compare_runs(a, b, _thresholds(False), noise=before)
            tries.append(_judged(c, oracle.fails_ci(a, b, _thresholds(False))))
        out[f"A/A R={runs}"] = tries
    return out


def ab(tries_dir: Path, oracle: Oracle, history: list[dict[str, Any]] | None) -> list[dict]:
    """Each kept A/B try, as `perftui compare ab_a ab_b` in its history (or, with `history`,
    in a history of those runs and the try's two)."""
    judged = []
    for try_dir in sorted(p for p in tries_dir.iterdir() if p.is_dir()):
        store = HistoryStore(try_dir)
        a, b = store.resolve("ab_a"), store.resolve("ab_b")
        small = _thresholds(b.get("runs_per_profile") == 5)
        if history is None:
            c = compare(store, a, b, small)
        else:
            c = compare_runs(a, b, small, noise=history)
        judged.append(_judged(c, oracle.fails_ci(a, b, small)))
    return judged


def _a_sides(kept: Path) -> list[dict[str, Any]]:
    sides = []
    for try_dir in sorted(kept.glob("ab/*/*")):
        if try_dir.is_dir():
            sides.append(HistoryStore(try_dir).resolve("ab_a"))
    return sides


def replay(kept: Path, history_runs: int | None = None) -> tuple[str, dict[str, list[dict]]]:
    """Every kept pair and try judged again, with the oracle's: a Markdown table and the tries."""
    aa_store = HistoryStore(kept / "aa")
    aa_records = sorted(aa_store.records(aa_store.list_runs()), key=_key)
    oracle = Oracle(aa_records + _a_sides(kept))
    history = aa_records[-history_runs:] if history_runs else None
    scenarios = aa(kept / "aa", oracle)
    for tries_dir in sorted((kept / "ab").iterdir(), key=lambda p: p.name, reverse=True):
        slowdown, runs = tries_dir.name[1:].split("_r")  # x1.3_r3
        scenarios[f"A/B ×{slowdown} R={runs}"] = ab(tries_dir, oracle, history)
    lines = [
        "| scenario | tries | fail CI | rate | oracle fails CI | p95 verdicts |",
        "|---|---|---|---|---|---|",
    ]
    for name, tries in scenarios.items():
        failed = sum(t["fails_ci"] for t in tries)
        known = [t["oracle_fails_ci"] for t in tries if t["oracle_fails_ci"] is not None]
        ideal = f"{sum(known)} of {len(known)}" if known else "–"
        verdicts = Counter(v for t in tries for v in t["p95"].values())
        counts = ", ".join(f"{v} ×{n}" for v, n in verdicts.most_common())
        rate = f"{failed / len(tries):.0%}" if tries else "–"
        lines.append(f"| {name} | {len(tries)} | {failed} | {rate} | {ideal} | {counts} |")
    return "\n".join(lines), scenarios


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kept", type=Path, help="the --keep DIR of a bench_verdicts run")
    ap.add_argument(
        "--history", type=int, help="judge the A/B tries with the N newest runs of DIR/aa"
    )
    args = ap.parse_args()
    text, scenarios = replay(args.kept, args.history)
    print(text)
    print(json.dumps(scenarios, indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
