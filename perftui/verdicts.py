"""The comparison service: given a store and two runs, pick the noise sample and compare.

The one place that decides which stored runs show the device's noise when run A (reference) is
compared with run B (candidate); the CLI (`compare`, `run --compare-to`) and the TUI (in a
thread worker) both call `compare`. It sits beside history and analysis because it is the only
code that needs both: analysis takes runs, never the store.

The automatic sample is the device's noise as A's firmware showed it, never B's change:
- only runs comparable with B (same device, profiles, kind and settings fingerprint), finished,
  other than A and B, and never one a stored comparison flagged as a regression;
- labelled history (`--build`): runs of A's build started before B's build first ran (before B
  itself when A and B are the same build);
- unlabelled history: the records of the device, oldest first, split at change points of their
  p95 and rps (`trend.change_points`), A's part then grown from A a record at a time until a
  record's level differs (`trend.segment_around`: other builds interleaved after A have no
  single change point), and only its runs before B;
- never a record with a client-bound run: its numbers describe perftui's host, not the device,
  and its level, read as the device's drift, would widen every interval (on a loaded machine one
  such record of three put a 2× slower build's rows at INCONCLUSIVE);
- at most NOISE_RUNS, the newest.
`choice` picks it by hand instead: "none", a tag, or run ids/prefixes separated by commas.
Every run left out is named with why, so a reader can check the sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from perftui.engine.schema import IndexRow, RunRecord
from perftui.like import identity, settings_key

if TYPE_CHECKING:
    from perftui.analysis.comparison import Comparison
    from perftui.analysis.thresholds import RegressionThresholds
    from perftui.history.store import HistoryStore

NOISE_RUNS = 20  # the newest runs of the sample a comparison takes
SEGMENT_READ = 60  # unlabelled history: the runs nearest A that the split reads
# The metrics whose level marks a new build in unlabelled history.
SEGMENT_METRICS = ("p95_ms", "rps_ok")


NONE_BY_HAND = "none, by hand"


class NoiseChoiceError(ValueError):
    """A hand-picked noise sample that cannot be used; the message is one line."""


class SameRun(ValueError):
    """`compare latest latest`: a run against itself is STABLE by construction, never a test."""


@dataclass
class NoiseSample:
    """The runs that form the noise model, and every candidate left out with why."""

    records: list[RunRecord] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # "RUN_ID: why"
    rule: str = ""

    @property
    def ids(self) -> list[str]:
        return [str(r.get("run_id")) for r in self.records]


def _started(summary: IndexRow) -> tuple[str, str]:
    return summary.get("started_at") or "", summary.get("run_id") or ""


def pick_noise(
    store: HistoryStore,
    a: RunRecord,
    b: RunRecord,
    choice: str | Sequence[str] | None = None,
    limit: int = NOISE_RUNS,
) -> NoiseSample:
    """The noise sample for comparing A with B (module docstring)."""
    if choice is not None:
        return _by_hand(store, a, b, choice)
    if settings_key(a) != settings_key(b):
        return NoiseSample(rule="none: A and B were set up differently")
    left: list[str] = []
    unflagged = []
    for s in store.noise_candidates(a, b):  # newest first
        if s.get("flagged"):
            left.append(f"{s['run_id']}: flagged by a stored comparison ({s['flagged']})")
        else:
            unflagged.append(s)
    build_a, build_b = a.get("build") or "", b.get("build") or ""
    if build_a:
        # Build and start are in the index: only the runs they keep are read from disk.
        picked, rule = _labelled(unflagged, a, b, build_a, build_b, left)
        loaded = _device_records(store, picked, left, want=limit)
        kept = [s for s in picked if s["run_id"] in loaded]
    else:
        near = _nearest_a(unflagged, a, left)
        loaded = _device_records(store, near, left)
        measured = [s for s in near if s["run_id"] in loaded]
        kept, rule = _unlabelled(loaded, measured, a, b, left)
    for s in kept[limit:]:
        left.append(f"{s['run_id']}: beyond the {limit} newest")
    return NoiseSample([loaded[s["run_id"]] for s in kept[:limit]], left, rule)


def _nearest_a(summaries: list[IndexRow], a: RunRecord, left: list[str]) -> list[IndexRow]:
    """The SEGMENT_READ runs nearest A in start order, the only ones the unlabelled split reads:
    A's segment is about A, and a history of thousands of runs must not be read whole."""
    from perftui.history.store import record_started

    ordered = sorted(summaries, key=_started)
    a_key = (record_started(a) or "", a.get("run_id") or "")
    at = sum(_started(s) < a_key for s in ordered)
    half = SEGMENT_READ // 2
    lo = max(0, min(at - half, len(ordered) - SEGMENT_READ))
    near = ordered[lo : lo + SEGMENT_READ]
    if far := len(ordered) - len(near):
        left.append(f"{far} runs further from A: not read (the {SEGMENT_READ} nearest A are)")
    return near[::-1]  # newest first, as the candidates come


def _device_records(
    store: HistoryStore, summaries: list[IndexRow], left: list[str], want: int | None = None
) -> dict[str, RunRecord]:
    """The readable records of `summaries` that measured the device, by run id, up to `want`
    (the rest named in `left` unread): a record with a client-bound run measured perftui's host
    instead (named in `left`)."""
    loaded: dict[str, RunRecord] = {}
    for n, s in enumerate(summaries):
        if want is not None and len(loaded) >= want:
            left += [f"{r['run_id']}: beyond the {want} newest" for r in summaries[n:]]
            break
        for record in store.records([s]):  # none if unreadable
            if bound := client_bound(record):
                left.append(f"{s['run_id']}: client-bound in {bound}: it measured perftui's host")
            else:
                loaded[s["run_id"]] = record
    return loaded


def client_bound(record: RunRecord) -> str:
    """Where a record's phases were client-bound ("2 of 6 phase runs"), empty when none was."""
    from perftui.analysis.samples import client_bound_runs

    bound, runs = client_bound_runs(record)
    return f"{bound} of {runs} phase runs" if bound else ""


def _labelled(
    kept: list[IndexRow],
    a: RunRecord,
    b: RunRecord,
    build_a: str,
    build_b: str,
    left: list[str],
) -> tuple[list[IndexRow], str]:
    """Runs of A's build started before B's build first ran."""
    from perftui.history.store import record_started

    b_key = (record_started(b) or "", b.get("run_id") or "")
    if build_b and build_b != build_a:
        firsts = [_started(s) for s in kept if s.get("build") == build_b]
        cut = min([b_key, *firsts])
        rule = f"build {build_a} before build {build_b} first ran"
    else:
        cut = b_key
        rule = f"build {build_a} before B"
    out = []
    for s in kept:
        build = s.get("build") or ""
        if build != build_a:
            left.append(f"{s['run_id']}: build {build or 'unlabelled'}, not A's")
        elif _started(s) >= cut:
            after = "B's build first ran" if cut != b_key else "B"
            left.append(f"{s['run_id']}: started after {after}")
        else:
            out.append(s)
    return out, rule


def _unlabelled(
    loaded: dict[str, RunRecord],
    kept: list[IndexRow],
    a: RunRecord,
    b: RunRecord,
    left: list[str],
) -> tuple[list[IndexRow], str]:
    """Runs in A's segment of the device's history (`_a_segment`), before B."""
    from perftui.history.store import record_started

    b_key = (record_started(b) or "", b.get("run_id") or "")
    before = [s for s in kept if _started(s) < b_key]
    left += [f"{s['run_id']}: started after B" for s in kept if _started(s) >= b_key]
    a_key = (record_started(a) or "", a.get("run_id") or "")
    chain = sorted(
        [*((_started(s), loaded[s["run_id"]]) for s in before), (a_key, a), (b_key, b)],
        key=lambda item: item[0],
    )  # fmt: skip
    ordered = [r for _, r in chain]
    lo, hi = _a_segment(ordered, next(i for i, r in enumerate(ordered) if r is a))
    mine = {r.get("run_id") for r in ordered[lo:hi]}
    out = []
    for s in before:
        if s["run_id"] in mine:
            out.append(s)
        else:
            left.append(f"{s['run_id']}: unlabelled, a change of level lies between it and A")
    rule = "unlabelled: A's segment of the history, cut where the level changes"
    return out, rule


def _a_segment(ordered: list[RunRecord], index: int) -> tuple[int, int]:
    """The records (oldest first) around `ordered[index]` (A) at A's level on each of
    SEGMENT_METRICS of the first `profile:phase` they share, as `(lo, hi)`: the history split at
    change points (`trend.change_points`), then A's part grown from A one neighbour at a time
    (`trend.segment_around`), which also stops at an interleave of other builds."""
    from perftui.analysis.metrics import METRICS
    from perftui.analysis.samples import record_values
    from perftui.analysis.thresholds import RegressionThresholds
    from perftui.analysis.trend import change_points, segment_around

    thresholds = RegressionThresholds()
    lo, hi = 0, len(ordered)
    for name in SEGMENT_METRICS:
        groups = record_values(ordered, METRICS[name])
        for start in change_points(groups or [], thresholds.values[name], thresholds.alpha):
            lo, hi = (max(lo, start), hi) if start <= index else (lo, min(hi, start))
    for name in SEGMENT_METRICS:
        groups = record_values(ordered[lo:hi], METRICS[name])
        if groups is not None:
            step = thresholds.values[name]
            first, last = segment_around(groups, index - lo, step, thresholds.alpha)
            lo, hi = lo + first, lo + last
    return lo, hi


def _by_hand(
    store: HistoryStore, a: RunRecord, b: RunRecord, choice: str | Sequence[str]
) -> NoiseSample:
    """`--noise none|TAG|RUN[,RUN…]`: the user's sample; runs set up unlike B are refused."""
    if isinstance(choice, str):
        if not choice.strip():
            raise NoiseChoiceError("--noise: give run ids, a tag, or none")
        if choice.strip().lower() == "none":
            return NoiseSample(rule=NONE_BY_HAND)
        tagged = [
            s
            for s in store.list_runs(tag=choice)
            if s["run_id"] not in (a.get("run_id"), b.get("run_id"))
        ]
        refs = [s["run_id"] for s in tagged] or [x.strip() for x in choice.split(",") if x]
    else:
        refs = list(choice)
    records = []
    for ref in refs:
        record = store.resolve(ref)
        if record.get("run_id") in (a.get("run_id"), b.get("run_id")):
            raise NoiseChoiceError(f"--noise: {ref} is A or B itself, not an earlier run")
        if settings_key(record) != settings_key(b):
            raise NoiseChoiceError(f"--noise: run {record.get('run_id')} was set up unlike B")
        if identity(record) != identity(b):
            raise NoiseChoiceError(
                f"--noise: run {record.get('run_id')} measured {identity(record)}, not B's "
                f"device {identity(b)}"
            )
        records.append(record)
    return NoiseSample(records, [], "by hand")


def compare(
    store: HistoryStore,
    a: RunRecord,
    b: RunRecord,
    thresholds: RegressionThresholds,
    *,
    noise: str | Sequence[str] | None = None,
    gate_paths: bool = False,
) -> Comparison:
    """Compare A with B, the noise sample picked by `pick_noise` and named in the result."""
    from perftui.analysis.compare import compare_runs

    if a.get("run_id") and a.get("run_id") == b.get("run_id"):
        raise SameRun(f"A and B are the same run ({a['run_id']}): nothing to compare")
    sample = pick_noise(store, a, b, noise)
    comparison = compare_runs(
        a,
        b,
        thresholds,
        noise=sample.records,
        gate_paths=gate_paths,
        noise_refused=sample.rule == NONE_BY_HAND,
    )
    comparison.noise_ids = sample.ids
    comparison.noise_left_out = sample.left_out
    comparison.noise_rule = sample.rule
    return comparison


@dataclass
class CompareView:
    """What the Compare screen draws, all of it made off the UI loop: the comparison, the runs
    the user may put in or take out of the noise sample (summaries, newest first), and each
    `profile:phase`'s latency curve of A and B (`analysis.curves`)."""

    comparison: Comparison
    candidates: list[IndexRow]
    curves: dict[str, tuple[list[float] | None, list[float] | None]]


def compare_view(
    store: HistoryStore,
    a: RunRecord,
    b: RunRecord,
    thresholds: RegressionThresholds,
    noise: str | Sequence[str] | None = None,
) -> CompareView:
    """`compare`, with what a screen needs beside it; blocking (store and numpy): call it from a
    thread worker."""
    from perftui.analysis.curves import latency_curve

    comparison = compare(store, a, b, thresholds, noise=noise)
    keys = dict.fromkeys(r.key for r in comparison.rows)
    curves = {key: (latency_curve(a, key), latency_curve(b, key)) for key in keys}
    return CompareView(comparison, store.noise_candidates(a, b), curves)


def flag_regression(store: HistoryStore, comparison: Comparison) -> None:
    """Mark B of a stored comparison that regressed, so it never joins a noise sample."""
    if comparison.regressions and not comparison.mismatches:
        first = comparison.regressions[0]
        text = f"regressed against {comparison.a.get('run_id')}: {first.key} {first.metric}"
        store.set_flag(str(comparison.b.get("run_id")), text)
