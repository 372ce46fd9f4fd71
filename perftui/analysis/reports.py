"""Renderers for comparisons and history: Markdown (PR comments), JSON, CSV and one-file HTML.

The HTML report is self-contained (inline CSS, and SVG drawn by `perftui.analysis.svg`) so it
can be attached to a CI run or mailed without any asset going missing.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Iterable, Sequence

from perftui.analysis import stages
from perftui.analysis.comparison import Comparison, Row
from perftui.analysis.metrics import ALL_METRICS, METRICS
from perftui.analysis.svg import fmt, svg_bar_chart, svg_line_chart, svg_time_chart
from perftui.engine.schema import IndexRow, PhaseReport, RunRecord

VERDICT_MARK = {
    "REGRESSION": "🔴 REGRESSION",
    "INCONCLUSIVE": "🟡 INCONCLUSIVE",
    "IMPROVEMENT": "🟢 IMPROVEMENT",
    "STABLE": "✅ STABLE",
    "N/A": "⚠️ N/A",
}
LEGEND = (
    "Change is B against A (A is the reference), with its {confidence} % interval. Latency and "
    "rps are geometric means over runs (one run: its value), judged as ratios. **REGRESSION** / "
    "**IMPROVEMENT** = the interval lies wholly on that side of zero and the change passes the "
    "threshold; **STABLE** = the interval lies within ±threshold; **INCONCLUSIVE** = neither: "
    "the data cannot tell (never read it as 'no change'). Evidence: `t(runs)` = run-to-run "
    "spread of both sides; `history` = spread of earlier runs of the same device and settings; "
    "`block-bootstrap` = one run a side, spread from its timeline windows (blind to drift slower "
    "than a run). Only primary rows (whole-phase p95, p99, rps, error rate, heap drop) fail CI. "
    "The primary rows, and apart from them the other rows, are under Benjamini–Hochberg "
    "false-discovery control."
)
CSV_METRICS = (
    "error_rate",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "p95_tail_ms",
    "rps_ok",
    "p999_ms",
    "max_ms",
    "heap_internal_drop",
)
CSV_COLUMNS = (
    "timestamp",
    "target",
    "tag",
    "key",
    "profile",
    "phase",
    "sample_count",
    "pass_rate",
    *(f"{m}_median" for m in CSV_METRICS),
    "p95_ms_stdev",
    "rps_ok_stdev",
    "run_id",
    "status",
    "overall_pass",
)


def fmt_change(row: Row) -> str:
    if row.change is None:
        return "–"
    return f"{row.change:+.1f} {row.unit}"


def fmt_interval(row: Row) -> str:
    """The change's interval, e.g. "[+3.1, +40] %"; "–" when the data gave none."""
    if row.low is None or row.high is None:
        return "–"
    return f"[{row.low:+.3g}, {row.high:+.3g}] {row.unit}"


def _run_line(label: RunRecord | IndexRow) -> str:
    tag = f" tag `{label['tag']}`" if label.get("tag") else ""
    tag += f" build `{label['build']}`" if label.get("build") else ""
    started = label.get("started_at") or label.get("timestamp_utc") or "?"
    where, device = label.get("target"), label.get("device")
    if device and device != where:  # the simulated device: one device whatever its port
        where = f"{device} at {where}"
    return f"`{label.get('run_id')}` ({started}, {where}{tag}, {label.get('status')})"


def summary_line(comparison: Comparison) -> str:
    """The verdict of the gated rows and where the non-stable verdicts are."""
    c = comparison
    if c.nothing_reason:
        only_a, only_b = ", ".join(c.only_in_a) or "–", ", ".join(c.only_in_b) or "–"
        only = f"only in A: {only_a}; only in B: {only_b}"
        return f"**{c.verdict}**: {c.nothing_reason} ({only})"
    where = ", ".join(c.where()) or "nothing changed beyond noise"
    return f"**{c.verdict}**: {where} ({c.tested_text})"


SHOWN_LEFT_OUT = 12  # runs left out of the noise model named in a report (the JSON has all)


def noise_lines(comparison: Comparison) -> list[str]:
    """The runs in the noise model, and those of the device left out with why."""
    c = comparison
    rule = f" ({c.noise_rule})" if c.noise_rule else ""
    runs = "run(s)" if "by hand" in c.noise_rule else "earlier run(s)"  # picked: any time
    lines = [f"noise model: {len(c.noise_ids)} {runs}{rule}: {', '.join(c.noise_ids) or '–'}"]
    if c.noise_left_out:
        shown, rest = c.noise_left_out[:SHOWN_LEFT_OUT], len(c.noise_left_out) - SHOWN_LEFT_OUT
        more = f"; and {rest} more (all in the JSON report)" if rest > 0 else ""
        lines.append("left out of the noise model: " + "; ".join(shown) + more)
    return lines


def comparison_markdown(comparison: Comparison) -> str:
    """A PR comment: summary line, a table per `profile:phase`, secondary and per-path rows
    folded."""
    c = comparison
    lines = ["## perftui comparison", ""]
    if c.mismatches:
        lines += ["> ⚠️ **Runs set up differently**, so this is not like with like:", ">"]
        lines += [f"> - {m}" for m in c.mismatches]
        lines.append("")
    lines += [
        summary_line(c),
        "",
        f"- A: {_run_line(c.a)}",
        f"- B: {_run_line(c.b)}",
    ]
    lines += [f"- {line}" for line in noise_lines(c)]
    lines += [f"- ⚠️ {note}" for note in c.notes]
    if c.only_in_a or c.only_in_b:
        lines += [f"- only in A: {', '.join(c.only_in_a) or '–'}"]
        lines += [f"- only in B: {', '.join(c.only_in_b) or '–'}"]
    for key in dict.fromkeys(r.key for r in c.rows):
        rows = [r for r in c.rows if r.key == key]
        primary = [r for r in rows if r.place == "primary"]
        lines += ["", f"### {key}", "", *_md_table(primary, False)]
        for place, with_path in (("secondary", False), ("per-path", True)):
            part = [r for r in rows if r.place == place]
            if part:
                seen = sorted({r.verdict for r in part if r.verdict != "STABLE"}) or ["STABLE"]
                lines += ["", f"<details><summary>{place} rows ({', '.join(seen)})</summary>", ""]
                lines += [*_md_table(part, with_path), "", "</details>"]
    lines += stages.markdown(c.stages)
    confidence = f"{(1 - c.alpha) * 100:g}"
    lines += ["", "<sub>" + LEGEND.format(confidence=confidence) + "</sub>", ""]
    return "\n".join(lines)


def _label(metric: str) -> str:
    return ALL_METRICS[metric].label


def _md_table(rows: Sequence[Row], with_path: bool) -> list[str]:
    head = "| path " if with_path else ""
    out = [
        f"{head}| metric | A | B | change | interval | threshold | verdict | evidence |",
        ("|---" if with_path else "") + "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        cell = f"| `{r.path}` " if with_path else ""
        note = f" ({r.note})" if r.note else ""
        out.append(
            f"{cell}| {_label(r.metric)} | {fmt(r.a)} | {fmt(r.b)} | {fmt_change(r)} | "
            f"{fmt_interval(r)} | {r.threshold:g} {r.unit} | {VERDICT_MARK[r.verdict]}{note} | "
            f"{r.evidence or r.test} |"
        )
    return out


def comparison_json(comparison: Comparison) -> str:
    return json.dumps(comparison.to_dict(), indent=2, allow_nan=False, default=str)


def csv_rows(records: Iterable[RunRecord]) -> Iterable[dict[str, str | float | int | None]]:
    """One row per run per `profile:phase`, the seeds' `performance_summary.csv` and more."""
    for record in records:
        for key, agg in (record.get("aggregated") or {}).items():
            row: dict[str, str | float | int | None] = {
                "timestamp": record.get("started_at") or record.get("timestamp_utc"),
                "target": record.get("target"),
                "tag": record.get("tag") or "",
                "key": key,
                "profile": agg.get("profile"),
                "phase": agg.get("phase"),
                "sample_count": agg.get("sample_count"),
                "pass_rate": agg.get("pass_rate"),
                "run_id": record.get("run_id"),
                "status": record.get("status"),
                "overall_pass": record.get("overall_pass"),
            }
            for metric in CSV_METRICS:
                row[f"{metric}_median"] = (agg.get(metric) or {}).get("median")
            for metric in ("p95_ms", "rps_ok"):
                row[f"{metric}_stdev"] = (agg.get(metric) or {}).get("stdev")
            yield row


def runs_csv(records: Iterable[RunRecord]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(records))
    return out.getvalue()


def runs_json(records: Iterable[RunRecord]) -> str:
    return json.dumps(list(records), indent=1, default=str)


def history_markdown(summaries: Sequence[IndexRow]) -> str:
    lines = [
        "| run | started | target | profiles | tag | status | result | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        result = {True: "PASS", False: "FAIL"}.get(s.get("overall_pass"), "–")
        lines.append(
            f"| `{s['run_id']}` | {s.get('started_at') or '?'} | {s.get('target')} | "
            f"{', '.join(s.get('profiles') or [])} | {s.get('tag') or ''} | {s.get('status')} | "
            f"{result} | {s.get('note') or ''} |"
        )
    return "\n".join(lines) + "\n"


# ----- HTML and SVG ------------------------------------------------------------------------------

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.REGRESSION{background:#fdd}.INCONCLUSIVE{background:#ffc}.IMPROVEMENT{background:#dfd}
.legend{color:#555;font-size:12px}svg{display:block;margin:.5em 0}
.mismatch{border:2px solid #c60;background:#fff4e5;padding:.3em 1em}
"""


def _html_page(title: str, body: list[str]) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>'
        f"{html.escape(title)}</title><style>{CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def comparison_html(
    comparison: Comparison, records: tuple[RunRecord, RunRecord] | None = None
) -> str:
    """The comparison with a latency bar chart per key and the full verdict tables; given the
    two run records (A, B), also each key's timelines over the phase."""
    c = comparison

    def e(text: str) -> str:
        """Escaped, with the Markdown's `code` spans (run ids, builds) as <code>."""
        return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))

    body = ["<h1>perftui comparison</h1>"]
    if c.mismatches:
        items = "".join(f"<li>{e(m)}</li>" for m in c.mismatches)
        body.append(f'<div class="mismatch"><b>⚠️ Runs set up differently</b><ul>{items}</ul></div>')
    body += [
        f"<p><b>{e(c.verdict)}</b> — {e(summary_line(c).split(': ', 1)[1])}</p>",
        f"<p>A: {e(_run_line(c.a))}<br>B: {e(_run_line(c.b))}</p>",
    ]
    body += [f"<p>{e(line)}</p>" for line in noise_lines(c)]
    body += [f"<p>⚠️ {e(n)}</p>" for n in c.notes]
    if c.only_in_a or c.only_in_b:
        body.append(
            f"<p>Only in A: {e(', '.join(c.only_in_a) or '–')}<br>"
            f"Only in B: {e(', '.join(c.only_in_b) or '–')}</p>"
        )
    for key in dict.fromkeys(r.key for r in c.rows):
        rows = [r for r in c.rows if r.key == key]
        latency = [r for r in rows if r.path is None and r.metric in ("p50_ms", "p95_ms", "p99_ms")]
        body.append(f"<h2>{e(key)}</h2>")
        if latency:
            body.append(
                svg_bar_chart(
                    [_label(r.metric) for r in latency],
                    {"A": [r.a for r in latency], "B": [r.b for r in latency]},
                    f"{key}: latency, A vs B",
                )
            )
        body.append(_html_table(rows))
        body += timeline_svgs(*records, key) if records else []
    body += stages.html(c.stages)
    confidence = f"{(1 - c.alpha) * 100:g}"
    body.append(f'<p class="legend">{e(LEGEND.format(confidence=confidence))}</p>')
    return _html_page("perftui comparison", body)


TIMELINE_CHARTS = (("p95_ms", "p95 (ms)"), ("rps", "requests/s"), ("heap_free", "free heap (B)"))


def _phase_timelines(record: RunRecord, key: str) -> list[PhaseReport]:
    """Every run's phase report of `profile:phase` that holds a timeline."""
    return [
        res.get("report") or {}
        for run in record.get("raw_runs") or []
        for res in run.get("results") or []
        if f"{res.get('profile')}:{res.get('phase')}" == key
        and (res.get("report") or {}).get("timeline")
    ]


def timeline_svgs(a: RunRecord, b: RunRecord, key: str) -> list[str]:
    """A and B over the phase (every run; A blue, B red; stalls as dashed lines) for p95, rps
    and heap, as inline SVG: the record's timelines, no script. Nothing when neither run has
    one (records made before timelines)."""
    sides = {"A": _phase_timelines(a, key), "B": _phase_timelines(b, key)}
    if not any(sides.values()):
        return []
    charts = []
    for column, label in TIMELINE_CHARTS:
        lines = [
            (
                side,
                [
                    (t, v)
                    for t, v in zip(r["timeline"].get("t_s") or [], values, strict=False)
                    if v is not None
                ],
            )
            for side, reports in sides.items()
            for r in reports
            if (values := r["timeline"].get(column))
        ]
        lines = [(side, pts) for side, pts in lines if pts]
        if not lines:
            continue
        stalls = {
            (side, at)
            for side, reports in sides.items()
            for r in reports
            for at in ((r.get("stalls") or {}).get("at") or [])
        }
        charts.append(svg_time_chart(lines, sorted(stalls), f"{key}: {label} over the phase"))
    return charts


def _html_table(rows: Sequence[Row]) -> str:
    e = html.escape
    out = [
        "<table><tr><th>rows</th><th>path</th><th>metric</th><th>A</th><th>B</th><th>change</th>"
        "<th>interval</th><th>threshold</th><th>verdict</th><th>evidence</th></tr>"
    ]
    for r in rows:
        note = f" ({r.note})" if r.note else ""
        out.append(
            f'<tr class="{e(r.verdict)}"><td>{r.place}</td><td>{e(r.path or "(all)")}</td>'
            f"<td>{e(_label(r.metric))}</td><td class=n>{fmt(r.a)}</td>"
            f"<td class=n>{fmt(r.b)}</td><td class=n>{e(fmt_change(r))}</td>"
            f"<td class=n>{e(fmt_interval(r))}</td>"
            f"<td class=n>{r.threshold:g} {r.unit}</td><td>{e(r.verdict + note)}</td>"
            f"<td>{e(r.evidence or r.test)}</td></tr>"
        )
    return "".join(out) + "</table>"


def history_html(records: Sequence[RunRecord]) -> str:
    """Runs oldest first: per key, p95 and rps medians across runs, then the run table."""
    ordered = sorted(records, key=lambda r: r.get("started_at") or r.get("timestamp_utc") or "")
    keys = sorted({k for r in ordered for k in (r.get("aggregated") or {})})
    body = ["<h1>perftui history</h1>", f"<p>{len(ordered)} run(s)</p>"]
    for metric in ("p95_ms", "rps_ok"):
        series = {
            key: [
                ((r.get("aggregated") or {}).get(key, {}).get(metric) or {}).get("median")
                for r in ordered
            ]
            for key in keys
        }
        body.append(svg_line_chart(series, f"{METRICS[metric].label} (median) per run"))
    e = html.escape
    body.append("<table><tr><th>run</th><th>started</th><th>target</th><th>tag</th>")
    body.append("<th>status</th><th>result</th></tr>")
    for r in reversed(ordered):
        result = {True: "PASS", False: "FAIL"}.get(r.get("overall_pass"), "–")
        body.append(
            f"<tr><td>{e(str(r.get('run_id')))}</td><td>{e(str(r.get('started_at')))}</td>"
            f"<td>{e(str(r.get('target')))}</td><td>{e(r.get('tag') or '')}</td>"
            f"<td>{e(str(r.get('status')))}</td><td>{result}</td></tr>"
        )
    body.append("</table>")
    return _html_page("perftui history", body)
