"""The Live screen's chart of a `--stages` rate ramp: the planned target and the achieved rate
on one plot, so where the device starts to fall behind shows as the two lines parting.

The target is the ramp itself (its stages' corners: the engine paces by exactly that line,
`engine/pacing.Ramp`), drawn whole when the phase starts, so the x axis (the phase's seconds)
and the scale are set from the first frame. The achieved rate is each heartbeat's last window,
folded by time into fixed buckets (`series.WholeRunSeries`), so an hour-long ramp stays a few
hundred points. plotext rebuilds the whole figure on every render, so the chart is redrawn only
when a new bucket begins (about once a second, less on long ramps) or the phase ends, never at
every heartbeat. Hidden (`display: none`) for any phase without a rate ramp.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual_plotext import PlotextPlot

from perftui.tui.view.series import WholeRunSeries


def ramp_corners(stages: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """(seconds into the phase, target) at each corner of the ramp: from 0 at 0 through each
    stage's target at its end (a stage of no duration jumps)."""
    corners = [(0.0, 0.0)]
    t = 0.0
    for duration, target in stages:
        t += duration
        corners.append((t, float(target)))
    return corners


class RampChart(PlotextPlot):
    """Achieved against target rate of the current ramp phase."""

    # Shares the rows left with the event log: 7 on a small terminal, up to 12 on a tall one.
    DEFAULT_CSS = """
    RampChart { height: 1fr; min-height: 7; max-height: 12; display: none; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.target: list[tuple[float, float]] = []  # the ramp's corners; empty: no ramp
        self.achieved = WholeRunSeries({"rps": "mean"})
        self._drawn = -1  # achieved points in the last drawing
        self.draws = 0  # figures built (a test and the benchmark read this)

    def start(self, stages: Sequence[tuple[float, float]] | None) -> None:
        """A phase begins: with a rate ramp's stages, show its target; else hide."""
        self.target = ramp_corners(stages) if stages else []
        self.achieved = WholeRunSeries({"rps": "mean"})
        self._drawn = -1
        self.display = bool(self.target)

    def add(self, elapsed: float, rps: float, covers_s: float) -> None:
        """A heartbeat of the ramp phase: its window's rate, over the `covers_s` seconds up to
        `elapsed` (placed at the window's middle, so a second's bucket holds that second)."""
        if self.target:
            self.achieved.add(max(elapsed - covers_s / 2, 0.0), {"rps": rps}, covers_s)

    def points(self) -> list[tuple[float, float]]:
        """(bucket middle in phase seconds, mean achieved rate) so far."""
        width = self.achieved.width_s
        return [(width * (i + 0.5), v) for i, v in enumerate(self.achieved.points("rps"))]

    def draw(self, force: bool = False) -> None:
        """Build the figure again when a bucket was added (or `force`: the phase ended)."""
        if not self.target:
            return
        achieved = self.points()
        if len(achieved) == self._drawn and not force:
            return
        self._drawn = len(achieved)
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        xs, ys = zip(*self.target, strict=True)
        plt.plot(xs, ys, marker="braille", label="target")
        if achieved:
            ax, ay = zip(*achieved, strict=True)
            plt.plot(ax, ay, marker="braille", label="achieved")
        top = max(max(ys), max((y for _, y in achieved), default=0.0))
        plt.xlim(0, max(xs[-1], 1e-9))
        plt.ylim(0, top * 1.05 or 1)
        plt.xlabel("s")
        plt.ylabel("req/s")
        self.draws += 1
        self.refresh()
