"""What a comparison is: its rows (`Row`), and the whole (`Comparison`) with its headline
verdict, where the non-stable rows are, and what a report says about each run. Made by
`perftui.analysis.compare.compare_runs`; read by the reports, the CLI and the TUI.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from perftui.analysis.stages import StageRow
from perftui.analysis.verdict import (
    IMPROVEMENT,
    INCONCLUSIVE,
    NOTHING_COMPARED,
    REGRESSION,
    STABLE,
    VERDICT_ORDER,
    Verdict,
)

MIN_HISTORY_RUNS = 3  # earlier records of A's build that make a noise model


@dataclass
class Row:
    """One metric of one `profile:phase` (or one path in it), A against B."""

    key: str
    path: str | None
    metric: str
    a: float | None
    b: float | None
    change: float | None
    unit: str
    threshold: float
    verdict: Verdict
    test: str  # how the interval was made: "t(runs)", "t(runs+history)", "block-bootstrap"…
    p_value: float | None = None  # two-sided, of the same interval
    note: str = ""
    n_a: int = 0
    n_b: int = 0
    low: float | None = None  # the interval of `change`, same unit
    high: float | None = None
    evidence: str = ""  # "3 runs each", "1 run: 20 windows", "history: 12 runs"
    primary: bool = False
    # After Benjamini–Hochberg, for secondary rows, when some secondary row was called a change.
    p_adjusted: float | None = None
    runs_needed: int | None = None
    varied: bool = True  # False when every value of both sides is the same (e.g. 0 errors)

    @property
    def place(self) -> str:
        """Where the row is shown: primary, secondary or per-path rows."""
        if self.path is not None:
            return "per-path"
        return "primary" if self.primary else "secondary"


@dataclass
class Comparison:
    a: dict[str, Any]
    b: dict[str, Any]
    rows: list[Row]
    only_in_a: list[str]
    only_in_b: list[str]
    notes: list[str]
    thresholds: dict[str, float]
    alpha: float
    mismatches: list[str] = field(default_factory=list)  # settings that differ, A vs B
    gate_paths: bool = False
    noise_runs: int = 0
    # The noise sample by name (filled by the comparison service): the runs in it, and each
    # run of the device left out with why ("r1: build B", "r2: after B's first run", …).
    noise_ids: list[str] = field(default_factory=list)
    noise_left_out: list[str] = field(default_factory=list)
    noise_rule: str = ""  # how the sample was picked: "build A before B", "by hand", …
    stages: list[StageRow] = field(default_factory=list)  # ramps: `analysis.stages`

    def gated(self) -> list[Row]:
        """The rows that decide CI: primary ones, and the rest when `gate_paths` asks."""
        return [r for r in self.rows if r.primary or self.gate_paths]

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.gated() if r.verdict == REGRESSION]

    @property
    def verdict(self) -> str:
        """The worst verdict of the gated rows; NOTHING COMPARED when none had an interval."""
        if not any(r.low is not None for r in self.gated()):
            return NOTHING_COMPARED
        seen = {r.verdict for r in self.gated()}
        return next((v for v in VERDICT_ORDER if v in seen), STABLE)

    @property
    def nothing_reason(self) -> str:
        """Why nothing was compared (empty when something was)."""
        if self.verdict != NOTHING_COMPARED:
            return ""
        if not self.rows:
            return "the phases do not overlap"
        return "no gated row could be tested"

    @property
    def has_noise_model(self) -> bool:
        """Enough earlier comparable runs for the history to show drift between runs."""
        return self.noise_runs >= MIN_HISTORY_RUNS

    @property
    def tested(self) -> int:
        """How many rows were tested: those with an interval and some variation (the two
        families of the FDR control)."""
        return sum(1 for r in self.rows if r.low is not None and r.varied)

    @property
    def tested_text(self) -> str:
        """ "12 of 40 rows tested", and how many of the rest had an interval but did not vary
        (0 errors on both sides: bounded by their counts, not tested), so the STABLE rows
        beside a small count do not read as untested."""
        still = sum(1 for r in self.rows if r.low is not None and not r.varied)
        rest = f"; {still} did not vary" if still else ""
        return f"{self.tested} of {len(self.rows)} rows tested{rest}"

    def counts(self) -> dict[str, int]:
        return {v: sum(1 for r in self.rows if r.verdict == v) for v in (*VERDICT_ORDER, "N/A")}

    def where(self) -> list[str]:
        """Where the non-stable verdicts are: ["2 regression in primary rows", …]."""
        out = []
        for verdict in (REGRESSION, IMPROVEMENT, INCONCLUSIVE):
            for place in ("primary", "secondary", "per-path"):
                n = sum(1 for r in self.rows if r.verdict == verdict and r.place == place)
                if n:
                    out.append(f"{n} {verdict.lower()} in {place} rows")
        return out

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for row, data in zip(self.rows, out["rows"], strict=True):
            data["place"] = row.place
        out["verdict"] = self.verdict
        out["counts"] = self.counts()
        out["tested"] = self.tested
        return out


def run_label(record: dict[str, Any]) -> dict[str, Any]:
    """What a report says about a compared run."""
    return {
        key: record.get(key)
        for key in (
            "run_id",
            "started_at",
            "timestamp_utc",
            "target",
            "device",
            "tag",
            "build",
            "status",
            "note",
        )
    } | {
        "profiles": record.get("profiles") or [],
        "runs_per_profile": record.get("runs_per_profile"),
    }
