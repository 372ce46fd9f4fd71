"""Charts drawn as inline SVG for the self-contained HTML reports (no script, no asset): grouped
bars, lines over runs, and A and B over a phase with its stalls; `fmt`, the numbers they and the
reports print.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

PALETTE = ("#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#76b7b2", "#b07aa1")


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}g}" if abs(value) < 10**digits else f"{value:.0f}"


def _frame(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img"><title>{html.escape(title)}</title>'
        f'<text x="8" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>'
        + "".join(body)
        + "</svg>"
    )


def _legend(names: Sequence[str], y: int) -> list[str]:
    out = []
    for i, name in enumerate(names):
        x = 50 + i * 150
        out.append(
            f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{x + 14}" y="{y}" font-size="11">{html.escape(name[:22])}</text>'
        )
    return out


def svg_bar_chart(
    groups: Sequence[str], series: dict[str, Sequence[float | None]], title: str
) -> str:
    """Grouped bars (one group per label, one bar per series)."""
    width, height, left, bottom, top = 640, 240, 50, 60, 28
    peak = max((v for vals in series.values() for v in vals if v is not None), default=1.0) or 1.0
    plot_w, plot_h = width - left - 10, height - top - bottom
    group_w = plot_w / max(1, len(groups))
    bar_w = group_w * 0.8 / max(1, len(series))
    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" '
        'stroke="#888"/>',
        f'<text x="4" y="{top + 10}" font-size="11">{fmt(peak)}</text>',
    ]
    for gi, group in enumerate(groups):
        x0 = left + gi * group_w + group_w * 0.1
        for si, (name, vals) in enumerate(series.items()):
            value = vals[gi]
            if value is None:
                continue
            h = plot_h * value / peak
            body.append(
                f'<rect x="{x0 + si * bar_w:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{PALETTE[si % len(PALETTE)]}"><title>'
                f"{html.escape(name)} {html.escape(group)}: {fmt(value)}</title></rect>"
            )
        body.append(
            f'<text x="{left + (gi + 0.5) * group_w:.1f}" y="{top + plot_h + 14}" font-size="10" '
            f'text-anchor="middle">{html.escape(group)}</text>'
        )
    body += _legend(list(series), height - 14)
    return _frame(width, height, title, body)


def svg_line_chart(series: dict[str, Sequence[float | None]], title: str) -> str:
    """Lines over the run index (oldest left); gaps where a run lacks the value."""
    width, height, left, bottom, top = 640, 220, 50, 36, 28
    values = [v for vals in series.values() for v in vals if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    span = (high - low) or 1.0
    count = max((len(v) for v in series.values()), default=1)
    plot_w, plot_h = width - left - 10, height - top - bottom
    body = [
        f'<text x="4" y="{top + 10}" font-size="11">{fmt(high)}</text>',
        f'<text x="4" y="{top + plot_h}" font-size="11">{fmt(low)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" '
        'stroke="#888"/>',
    ]
    for si, (name, vals) in enumerate(series.items()):
        points = [
            f"{left + plot_w * i / max(1, count - 1):.1f},{top + plot_h * (high - v) / span:.1f}"
            for i, v in enumerate(vals)
            if v is not None
        ]
        colour = PALETTE[si % len(PALETTE)]
        body.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
            f'points="{" ".join(points)}"><title>{html.escape(name)}</title></polyline>'
        )
    body += _legend(list(series), height - 8)
    return _frame(width, height, title, body)


def svg_time_chart(
    lines: list[tuple[str, list[tuple[float, float]]]],
    stalls: list[tuple[str, float]],
    title: str,
) -> str:
    width, height, left, bottom, top = 640, 220, 60, 36, 28
    xs = [t for _, pts in lines for t, _ in pts] + [at for _, at in stalls]
    ys = [v for _, pts in lines for _, v in pts]
    x_hi = max(xs) or 1.0
    low, high = min(ys), max(ys)
    span = (high - low) or 1.0
    plot_w, plot_h = width - left - 10, height - top - bottom
    colour = {"A": PALETTE[0], "B": PALETTE[1]}

    def x(t: float) -> float:
        return left + plot_w * t / x_hi

    body = [
        f'<text x="4" y="{top + 10}" font-size="11">{fmt(high)}</text>',
        f'<text x="4" y="{top + plot_h}" font-size="11">{fmt(low)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" '
        'stroke="#888"/>',
        f'<text x="{width - 10}" y="{top + plot_h + 14}" font-size="10" text-anchor="end">'
        f"{fmt(x_hi)} s</text>",
    ]
    for side, at in stalls:
        body.append(
            f'<line x1="{x(at):.1f}" y1="{top}" x2="{x(at):.1f}" y2="{top + plot_h}" '
            f'stroke="{colour.get(side, "#888")}" stroke-dasharray="3,3"><title>{side} stall at '
            f"{fmt(at)} s</title></line>"
        )
    for side, pts in lines:
        points = " ".join(f"{x(t):.1f},{top + plot_h * (high - v) / span:.1f}" for t, v in pts)
        body.append(
            f'<polyline fill="none" stroke="{colour.get(side, "#888")}" stroke-width="1.2" '
            f'points="{points}"><title>{side}</title></polyline>'
        )
    body += _legend(["A", "B"], height - 8)
    return _frame(width, height, title, body)
