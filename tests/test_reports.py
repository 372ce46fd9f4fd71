"""Report formats parse: Markdown tables and legend, JSON loads, CSV rows, HTML with inline SVG."""

from __future__ import annotations

import csv
import io
import json
import re

from perftui.analysis.compare import compare_runs
from perftui.analysis.reports import (
    CSV_COLUMNS,
    comparison_html,
    comparison_json,
    comparison_markdown,
    history_html,
    history_markdown,
    runs_csv,
)
from tests.history_factory import make_record

KW = {"profiles": ["python_light", "api"], "max_samples": 2000}


def _pair() -> tuple[dict, dict]:
    return make_record([20, 20.4, 19.8], seed=1, **KW), make_record([27, 27.2, 26.5], seed=2, **KW)


def test_markdown_has_summary_tables_and_legend() -> None:
    a, b = _pair()
    text = comparison_markdown(compare_runs(a, b))
    assert text.splitlines()[2].startswith("**REGRESSION**: 8 regression in primary rows")
    assert "(96 of 122 rows tested; 26 did not vary)" in text.splitlines()[2]  # 0 errors a side
    assert "### python_light:burst" in text and "### api:long" in text
    # The interval shown is the one the verdict used: BH's adjusted level (issue 19).
    row = (
        "| p95 ms | 20.1 | 26.9 | +34.1 % | [+29.1, +39.2] % | 20 % | 🔴 REGRESSION "
        "(96.7 % interval (FDR over 12 primary rows)) | 3 runs each |"
    )
    assert row in text
    assert "<details><summary>per-path rows" in text and "**INCONCLUSIVE**" in text  # legend


def test_reports_show_settings_differences_first() -> None:
    a, b = _pair()
    b = {**b, "measurement": {**b["measurement"], "timeout": 2.0}}
    comparison = compare_runs(a, b)
    text = comparison_markdown(comparison)
    assert text.splitlines()[2] == "> ⚠️ **Runs set up differently**, so this is not like with like:"
    assert "no noise model" not in text  # the mismatch, not a missing history, is the news
    assert "no noise model yet (0 of 3 earlier runs)" in comparison_markdown(compare_runs(*_pair()))
    assert "> - timeout: A 6.0, B 2.0" in text
    page = comparison_html(comparison)
    assert page.index("timeout: A 6.0, B 2.0") < page.index("<table>")
    assert "`" not in page and f"<code>{comparison.a['run_id']}</code>" in page  # no Markdown


def test_json_round_trips() -> None:
    a, b = _pair()
    data = json.loads(comparison_json(compare_runs(a, b)))
    assert data["verdict"] == "REGRESSION" and data["a"]["run_id"] == a["run_id"]
    assert {"key", "path", "metric", "verdict", "low", "high", "evidence"} <= data["rows"][0].keys()
    tested = [r for r in data["rows"] if r["low"] is not None and r["varied"]]
    assert data["tested"] == len(tested) < len(data["rows"]) and data["mismatches"] == []


def test_the_simulated_device_is_named_beside_its_port() -> None:
    """A `--sim` run's target is a new port each time; the device is "sim" in every report."""
    a, b = _pair()
    a["device"], a["target"] = "sim", "127.0.0.1:41979"
    text = comparison_markdown(compare_runs(a, b))
    assert "sim at 127.0.0.1:41979" in text


def test_csv_one_row_per_run_per_key() -> None:
    records = list(_pair())
    rows = list(csv.DictReader(io.StringIO(runs_csv(records))))
    assert len(rows) == 2 * 4
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert CSV_COLUMNS[:14] == (
        "timestamp", "target", "tag", "key", "profile", "phase", "sample_count", "pass_rate",
        "error_rate_median", "p50_ms_median", "p95_ms_median", "p99_ms_median",
        "p95_tail_ms_median", "rps_ok_median",
    )  # fmt: skip
    assert float(rows[0]["p95_ms_median"]) == 20.0


def test_html_is_self_contained_with_svg() -> None:
    a, b = _pair()
    for page in (comparison_html(compare_runs(a, b)), history_html([a, b])):
        assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<style>" in page
        assert not re.search(r"""(src|href)=["']?https?:""", page)
        assert "<script" not in page


def test_history_markdown_lists_runs() -> None:
    summaries = [{"run_id": "r1", "started_at": "2026", "target": "t", "profiles": ["api"],
                  "tag": "x", "status": "stopped", "overall_pass": False, "note": "n"}]  # fmt: skip
    assert "| `r1` | 2026 | t | api | x | stopped | FAIL | n |" in history_markdown(summaries)
