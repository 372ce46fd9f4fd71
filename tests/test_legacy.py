"""Importing the old runner's files: statuses, tags, filled keys, and no duplicates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from perftui.history.legacy import import_paths, read_legacy
from perftui.history.store import HistoryStore
from tests.history_factory import make_record

FIXTURES = Path(__file__).parent / "fixtures" / "legacy"


def test_import_folder_statuses_and_tags(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h")
    result = import_paths(store, [FIXTURES])
    assert not result.errors
    assert len(result.added) == 4  # latest.json repeats perf_20250302T090000Z.json
    assert result.duplicates == [str(FIXTURES / "perf_20250302T090000Z.json")]
    runs = {r["source"]: r for r in store.list_runs()}
    normal = runs["legacy:perf_20250301T101500Z_baseline_isolated_v1.json"]
    assert normal["status"] == "finished" and normal["overall_pass"] is True
    assert normal["tag"] == "baseline_isolated_v1"
    assert normal["started_at"] == "2025-03-01T10:15:00Z"
    assert normal["run_id"].startswith("20250301T101500Z-")
    failed = runs["legacy:latest.json"]
    assert failed["overall_pass"] is False and failed["failed_keys"] == ["python_light:long"]
    hard = runs["legacy:perf_20250303T080000Z_soak.json"]
    assert hard["status"] == "hard_stop" and "health probe" in hard["hard_stop_reason"]
    assert runs["legacy:latest.partial.json"]["status"] == "stopped"


def test_import_twice_adds_nothing(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h")
    first = import_paths(store, [FIXTURES])
    copy = tmp_path / "copy"
    shutil.copytree(FIXTURES, copy)
    again = import_paths(store, [copy, FIXTURES / "latest.json"])
    assert again.added == [] and len(again.duplicates) == 6
    assert len(store.list_runs()) == len(first.added)


def test_new_keys_filled_and_heap_drop_derived() -> None:
    record, digest = read_legacy(FIXTURES / "perf_20250301T101500Z_baseline_isolated_v1.json")
    assert len(digest) == 64 and record["schema"] == 1
    assert record["settings"] is None and record["metadata"] is None
    report = record["raw_runs"][0]["results"][0]["report"]
    assert report["histogram"] is None and report["p999_ms"] is None
    assert report["heap_internal_drop"] == 512 and report["telemetry_available"] is True
    agg = record["aggregated"]["python_light:burst"]
    assert agg["p95_ms"]["stdev"] is None and agg["p95_ms"]["median"] == 48.0
    assert agg["heap_internal_drop"]["median"] == 512


def test_bad_files_are_reported_not_stored(tmp_path: Path) -> None:
    (tmp_path / "perf_20250101T000000Z.json").write_text("{truncated")
    (tmp_path / "other.json").write_text('{"hello": 1}')
    store = HistoryStore(tmp_path / "h")
    result = import_paths(store, [tmp_path / "perf_20250101T000000Z.json", tmp_path / "other.json"])
    assert len(result.errors) == 2 and all("\n" not in e for e in result.errors)
    assert "not a legacy" in result.errors[1]
    assert store.list_runs() == []


def test_files_written_by_perftui_dedupe_on_run_id(tmp_path: Path) -> None:
    record = make_record(20.0, runs=1, profiles=["api"], phases=["burst"], max_samples=300)
    store = HistoryStore(tmp_path / "h")
    store.add_run(record)
    (tmp_path / "perf_20260101T000000Z.json").write_text(json.dumps(record))
    result = import_paths(store, [tmp_path])
    assert result.added == [] and len(result.duplicates) == 1
    other = HistoryStore(tmp_path / "other")
    assert import_paths(other, [tmp_path]).added == [record["run_id"]]
    assert other.get(record["run_id"])["settings"] == record["settings"]
