"""The comparison's HTML report draws A and B over the phase from the records' timelines."""

from __future__ import annotations

import re
from pathlib import Path

from perftui.analysis.compare import compare_runs
from perftui.analysis.reports import comparison_html, timeline_svgs
from perftui.history.store import HistoryStore
from tests.history_factory import make_record
from tests.test_cli_history import cli

KW = {"profiles": ["python_light"], "phases": ["burst"], "max_samples": 2000}


def test_html_overlays_every_run_of_a_and_b_over_the_phase() -> None:
    a = make_record([20, 21], seed=1, timeline=True, **KW)
    b = make_record([27, 26, 28], seed=2, timeline=True, **KW)
    b["raw_runs"][0]["results"][0]["report"]["stalls"] = {
        "count": 1, "longest_ms": 1000.0, "total_ms": 1000.0, "at": [7.5],
    }  # fmt: skip
    page = comparison_html(compare_runs(a, b), (a, b))
    titles = re.findall(r"<title>(python_light:burst: [^<]+ over the phase)</title>", page)
    assert titles == [
        "python_light:burst: p95 (ms) over the phase",
        "python_light:burst: requests/s over the phase",
        "python_light:burst: free heap (B) over the phase",
    ]
    p95_chart = page.split("p95 (ms) over the phase</title>")[1].split("</svg>")[0]
    lines = re.findall(r'<polyline [^>]*points="([^"]+)"><title>([AB])</title>', p95_chart)
    assert [side for _, side in lines] == ["A", "A", "B", "B", "B"]  # 2 runs of A, 3 of B
    assert all(len(points.split()) == 20 for points, _ in lines)  # 20 one-second windows
    assert "<title>B stall at 7.5 s</title>" in p95_chart
    assert "<script" not in page


def test_records_without_timelines_get_no_timeline_charts() -> None:
    a, b = make_record(20, seed=1, **KW), make_record(27, seed=2, **KW)
    assert timeline_svgs(a, b, "python_light:burst") == []
    assert "over the phase" not in comparison_html(compare_runs(a, b), (a, b))


def test_compare_command_writes_the_timelines_into_its_html_report(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    store.add_run(make_record([20, 21], seed=1, tag="a", timeline=True, **KW))
    store.add_run(make_record([27, 26], seed=2, tag="b", timeline=True, **KW))
    report = tmp_path / "cmp.html"
    assert cli(tmp_path, "compare", "a", "b", "--report", str(report)) == 0
    assert "python_light:burst: p95 (ms) over the phase" in report.read_text()
