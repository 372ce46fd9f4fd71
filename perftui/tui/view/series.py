"""The whole run in fixed memory: a live series folded into a fixed number of time buckets.

Recent heartbeats are kept at full resolution elsewhere (capped deques); this keeps the rest.
Each bucket covers `width_s` seconds of run time; when the run outgrows the buckets, neighbours
are merged in pairs and the width doubles, so an 8-hour soak and a 10-second burst both take
`buckets` points, and the first minute of the soak is still on screen at hour 8.

Each field says how a bucket sums up its samples: "max" (a p95: the worst window must not be
averaged away), "mean" (a rate: weighted by the time each sample covers), "sum" (errors) or
"last" (heap: the latest reading). Plain Python, no Textual, so it is unit-tested directly.
"""

from __future__ import annotations

from typing import Literal

Fold = Literal["max", "mean", "sum", "last"]

DEFAULT_BUCKETS = 240
DEFAULT_BASE_S = 1.0


class WholeRunSeries:
    """Several fields on one time axis, each folded into the same buckets."""

    def __init__(
        self,
        fields: dict[str, Fold],
        buckets: int = DEFAULT_BUCKETS,
        base_s: float = DEFAULT_BASE_S,
    ) -> None:
        if buckets < 2 or buckets % 2:
            raise ValueError("buckets must be an even number >= 2")
        self.fields = dict(fields)
        self.buckets = buckets
        self.width_s = base_s
        # Per field, per bucket: [value, weight]; weight is seconds for "mean", else a count.
        self._acc: dict[str, list[list[float] | None]] = {f: [None] * buckets for f in fields}
        self.version = 0  # bumped on every change, so a view redraws only when it must

    def add(self, t_s: float, values: dict[str, float | None], weight_s: float = 1.0) -> None:
        """One sample at run time `t_s` covering `weight_s` seconds; None values are gaps."""
        t_s = max(t_s, 0.0)
        while t_s >= self.width_s * self.buckets:
            self._halve()
        index = int(t_s // self.width_s)
        for name, value in values.items():
            fold = self.fields.get(name)
            if fold is None or value is None:
                continue
            cell = self._acc[name][index]
            w = max(weight_s, 1e-9) if fold == "mean" else 1.0
            if cell is None:
                self._acc[name][index] = [value * w if fold == "mean" else value, w]
            elif fold == "max":
                cell[0] = max(cell[0], value)
            elif fold == "mean":
                cell[0] += value * w
                cell[1] += w
            elif fold == "sum":
                cell[0] += value
            else:  # last
                cell[0] = value
        self.version += 1

    def _halve(self) -> None:
        """Merge neighbouring buckets in pairs: twice the width, half the points."""
        for name, cells in self._acc.items():
            fold = self.fields[name]
            merged: list[list[float] | None] = []
            for a, b in zip(cells[0::2], cells[1::2], strict=True):
                merged.append(_merge(fold, a, b))
            self._acc[name] = merged + [None] * (self.buckets - len(merged))
        self.width_s *= 2

    def points(self, name: str) -> list[float]:
        """The field's value per bucket from the run's start up to the last filled bucket;
        an empty bucket in between repeats its predecessor (a gap, not a fall to zero)."""
        cells = self._acc[name]
        last = max((i for i, c in enumerate(cells) if c is not None), default=-1)
        out: list[float] = []
        for cell in cells[: last + 1]:
            if cell is None:
                out.append(out[-1] if out else 0.0)
            elif self.fields[name] == "mean":
                out.append(cell[0] / cell[1])
            else:
                out.append(cell[0])
        return out

    def bucket(self, name: str, index: int) -> float | None:
        """One bucket's folded value, or None when it holds nothing."""
        cell = self._acc[name][index]
        if cell is None:
            return None
        return cell[0] / cell[1] if self.fields[name] == "mean" else cell[0]


def _merge(fold: Fold, a: list[float] | None, b: list[float] | None) -> list[float] | None:
    if a is None or b is None:
        return list(a or b) if (a or b) else None
    if fold == "max":
        return [max(a[0], b[0]), a[1] + b[1]]
    if fold in ("mean", "sum"):
        return [a[0] + b[0], a[1] + b[1]]
    return list(b)  # last
