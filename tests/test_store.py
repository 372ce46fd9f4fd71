"""The history store on real files: crash safety, concurrent writers, corruption, resolving."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from perftui.engine.schema import RECORD_SCHEMA
from perftui.history.store import (
    DB_NAME,
    INDEX_SCHEMA,
    AmbiguousRun,
    HistoryStore,
    RunNotFound,
    compact,
    encode_doc,
)
from tests.history_factory import make_record

ROOT = Path(__file__).resolve().parent.parent

WRITER = """
import json, sys
from perftui.history.store import HistoryStore
record = json.load(open(sys.argv[2]))
store = HistoryStore(sys.argv[1])
for i in range(int(sys.argv[4])):
    record["run_id"] = f"{sys.argv[3]}-{i:03d}"
    print(store.add_run(record), flush=True)
"""


@pytest.fixture(scope="module")
def small_record_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rec") / "record.json"
    rec = make_record(20.0, runs=1, profiles=["python_light"], phases=["burst"], max_samples=500)
    path.write_text(json.dumps(rec))
    return path


def _writer(history: Path, record_file: Path, prefix: str, count: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(history), str(record_file), prefix, str(count)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def test_record_is_compact(tmp_path: Path) -> None:
    record = make_record([10.1, 10.3, 9.9])
    assert len(encode_doc(compact(record))) < 60_000
    store = HistoryStore(tmp_path)
    run_id = store.add_run(record)
    assert (tmp_path / "runs" / f"{run_id}.json.gz").stat().st_size < 60_000
    assert store.get(run_id)["aggregated"].keys() == record["aggregated"].keys()


def test_sigkill_during_writes_never_loses_a_returned_run(
    tmp_path: Path, small_record_file: Path
) -> None:
    rng = random.Random(7)
    confirmed: list[str] = []
    cut_short = 0
    for round_no in range(10):
        proc = _writer(tmp_path, small_record_file, f"r{round_no}", 50)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # writing has begun (start-up time varies with load)
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        out = first + out
        confirmed += out.split()
        cut_short += 0 < len(out.split()) < 50
        warnings: list[str] = []
        store = HistoryStore(tmp_path, on_warning=warnings.append)
        stored = {s["run_id"] for s in store.list_runs()}
        assert set(confirmed) <= stored and not warnings
    assert cut_short >= 3, "the kills did not land during the writes"


def test_two_writers_lose_nothing(tmp_path: Path, small_record_file: Path) -> None:
    procs = [_writer(tmp_path, small_record_file, name, 25) for name in ("a", "b")]
    ids = [line for p in procs for line in p.communicate()[0].split()]
    assert all(p.returncode == 0 for p in procs)
    stored = {s["run_id"] for s in HistoryStore(tmp_path).list_runs()}
    assert len(ids) == 50 and set(ids) == stored


@pytest.mark.parametrize(
    "content,reason",
    [
        (b'{"meta": {"1": {"schema": 1}}, "runs": {"1": {"run', "invalid JSON"),
        (b"", "empty"),
        (b"\x00\x00\x00", "invalid JSON"),
        (json.dumps({"meta": {"1": {"schema": INDEX_SCHEMA + 1}}}).encode(), "newer perftui"),
    ],
)
def test_bad_database_is_moved_aside_and_runs_rebuilt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, reason: str
) -> None:
    store = HistoryStore(tmp_path)
    run_id = store.add_run(make_record(runs=1, profiles=["api"], phases=["burst"]))
    (tmp_path / DB_NAME).write_bytes(content)
    runs = HistoryStore(tmp_path).list_runs()
    assert [r["run_id"] for r in runs] == [run_id]
    aside = list(tmp_path.glob(f"{DB_NAME}.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == content
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and reason in err and str(aside[0]) in err


def test_orphan_document_comes_back_when_index_is_lost(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    run_id = store.add_run(make_record(runs=1, profiles=["api"], phases=["burst"]))
    os.unlink(tmp_path / DB_NAME)
    assert [r["run_id"] for r in HistoryStore(tmp_path).list_runs()] == [run_id]


def test_records_have_their_own_schema_and_old_stamps_still_load(tmp_path: Path) -> None:
    """A record without a schema gets the record's version, not the index's; one stamped with the
    index's 2 by an older perftui is rebuilt into the index; a future record's is left out."""
    store = HistoryStore(tmp_path)
    bare = make_record(runs=1, profiles=["api"], phases=["burst"], seed=1)
    bare.pop("schema")
    fresh = store.add_run(bare)
    assert store.get(fresh)["schema"] == RECORD_SCHEMA != INDEX_SCHEMA
    old = store.add_run({**make_record(runs=1, profiles=["api"], phases=["burst"], seed=2),
                         "schema": 2})  # fmt: skip
    store.add_run({**make_record(runs=1, profiles=["api"], phases=["burst"], seed=3),
                   "schema": 3})  # fmt: skip
    os.unlink(tmp_path / DB_NAME)
    assert {r["run_id"] for r in HistoryStore(tmp_path).list_runs()} == {fresh, old}


def test_a_run_named_by_its_build(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    kw = {"runs": 1, "profiles": ["api"], "phases": ["burst"]}
    older, newer = (store.add_run(make_record(seed=s, **kw) | {"build": "fw1"}) for s in (1, 2))
    store.add_run(make_record(seed=3, **kw) | {"build": "fw2"})
    assert store.resolve("build:fw1")["run_id"] == newer != older  # the newest of that build
    with pytest.raises(RunNotFound, match="no stored run of build 'fw3'"):
        store.resolve("build:fw3")


def test_resolve_filters_baselines_notes_delete(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    kw = {"runs": 1, "profiles": ["api"], "phases": ["burst"]}
    a = store.add_run(make_record(seed=1, tag="main", **kw))
    b = store.add_run(make_record(seed=2, **kw))
    c = store.add_run(make_record(seed=3, target="10.0.0.2:80", **kw))
    d = store.add_run(make_record(seed=4, tag="main", error_rate=5.0, **kw))
    assert store.add_run(store.get(a)) == a  # same content: nothing added
    assert [r["run_id"] for r in store.list_runs()] == [d, c, b, a]
    assert store.resolve("latest")["run_id"] == d
    assert store.resolve("previous")["run_id"] == b  # same target and profiles as d
    assert store.resolve("main")["run_id"] == d
    assert store.resolve(c[:20])["run_id"] == c
    with pytest.raises(AmbiguousRun):
        store.resolve("2026")
    with pytest.raises(RunNotFound):
        store.resolve("nope")
    with pytest.raises(RunNotFound, match="no baseline"):
        store.resolve("baseline")
    store.set_baseline(a)
    store.set_baseline(b, name="v2")
    assert store.resolve("baseline")["run_id"] == a
    assert store.resolve("baseline:v2")["run_id"] == b
    with pytest.raises(RunNotFound, match="did you mean baseline:v2"):
        store.resolve("v2")
    assert [r["run_id"] for r in store.list_runs(target="10.0.0.2:80")] == [c]
    assert [r["run_id"] for r in store.list_runs(passed=False)] == [d]
    assert [r["run_id"] for r in store.list_runs(tag="main", limit=1)] == [d]
    store.set_note(b, "after the IPC fix")
    assert store.get(b)["note"] == "after the IPC fix"
    assert store.list_runs(limit=3)[2]["note"] == "after the IPC fix"
    assert store.delete(a) == ["default"]
    with pytest.raises(RunNotFound):
        store.get(a)
    assert store.baselines() == {"v2": b}
    assert store.previous_of(store.get(b)) is None


def _marked_history(tmp_path: Path) -> tuple[HistoryStore, str, str]:
    store = HistoryStore(tmp_path)
    kw = {"runs": 1, "profiles": ["api"], "phases": ["burst"]}
    old = store.add_run(make_record(seed=1, started_at=datetime(2026, 10, 5, tzinfo=UTC), **kw))
    new = store.add_run(make_record(seed=2, started_at=datetime(2026, 11, 5, tzinfo=UTC), **kw))
    store.set_baseline(old)
    store.set_baseline(new, name="v2")
    return store, old, new


def test_runs_are_indexed_by_month(tmp_path: Path) -> None:
    store, old, new = _marked_history(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("perftui-*.json")) == [
        "perftui-2026-10.json",
        "perftui-2026-11.json",
    ]
    assert [r["run_id"] for r in store.list_runs()] == [new, old]
    store.set_note(old, "oct")
    assert [r["note"] for r in HistoryStore(tmp_path).list_runs()] == ["", "oct"]
    assert store.delete(new) == ["v2"]
    assert [r["run_id"] for r in HistoryStore(tmp_path).list_runs()] == [old]


@pytest.mark.parametrize("damaged", [DB_NAME, "perftui-2026-11.json"])
def test_baselines_survive_a_rebuild(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damaged: str
) -> None:
    _store, old, new = _marked_history(tmp_path)
    (tmp_path / damaged).write_bytes(b'{"runs": {"1": {"run_id"')
    store = HistoryStore(tmp_path)
    assert store.resolve("baseline")["run_id"] == old
    assert store.resolve("baseline:v2")["run_id"] == new
    assert {r["run_id"] for r in store.list_runs()} == {old, new}
    assert [p.name for p in tmp_path.glob("*.corrupt-*")] != []
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and f"{tmp_path / damaged} is unusable" in err


def test_damaged_baseline_file_is_moved_aside(tmp_path: Path) -> None:
    _store, old, _new = _marked_history(tmp_path)
    (tmp_path / "baselines.json").write_text("{not json")
    warnings: list[str] = []
    store = HistoryStore(tmp_path, on_warning=warnings.append)
    assert store.baselines() == {}
    [aside] = tmp_path.glob("baselines.json.corrupt-*")
    assert aside.read_text() == "{not json" and str(aside) in warnings[0]
    store.set_baseline(old)
    assert store.resolve("baseline")["run_id"] == old


def test_single_file_index_is_split_on_open(tmp_path: Path) -> None:
    """A schema-1 history (every summary and the marks in perftui.json) opens as it was."""
    store, old, _new = _marked_history(tmp_path)
    summaries = [dict(r) for r in store.list_runs()]
    v1 = {
        "meta": {"1": {"schema": 1}},
        "runs": {str(i): s for i, s in enumerate(summaries, start=1)},
        "baselines": {"1": {"name": "default", "run_id": old, "set_at": "2026-11-01T00:00:00Z"}},
    }
    for path in [*tmp_path.glob("perftui-*.json"), tmp_path / "baselines.json"]:
        path.unlink()
    (tmp_path / DB_NAME).write_text(json.dumps(v1))
    warnings: list[str] = []
    store = HistoryStore(tmp_path, on_warning=warnings.append)
    assert store.baselines() == {"default": old}
    assert store.list_runs() == summaries and not warnings
    assert json.loads((tmp_path / DB_NAME).read_text()) == {"meta": {"1": {"schema": INDEX_SCHEMA}}}
    assert len(list(tmp_path.glob("perftui-*.json"))) == 2


def test_a_schema_2_index_is_rebuilt_so_old_runs_match_new_ones(tmp_path: Path) -> None:
    """Runs stored before view-only settings left the fingerprint (their summaries hold a digest
    over them) are found as `previous` and noise of a new run made the same way."""
    store = HistoryStore(tmp_path)
    old = make_record(20.0, runs=1, phases=["burst"], seed=1, max_samples=500)
    old["measurement"] = {**old["measurement"], "snapshot_interval_s": 0.2}
    old["settings_fingerprint"] = "0123456789abcdef"  # what the old code wrote
    old_id = store.add_run(old)
    for shard in tmp_path.glob("perftui-*.json"):  # the index as the old code wrote it
        data = json.loads(shard.read_text())
        for summary in data["runs"].values():
            summary["settings_fingerprint"] = "0123456789abcdef"
        shard.write_text(json.dumps(data))
    (tmp_path / DB_NAME).write_text(json.dumps({"meta": {"1": {"schema": 2}}}))
    new = make_record(20.0, runs=1, phases=["burst"], seed=2, max_samples=500)
    store = HistoryStore(tmp_path)
    store.add_run(new)
    assert store.previous_of(new)["run_id"] == old_id
    assert [r["run_id"] for r in store.noise_candidates(new, new)] == [old_id]
    assert json.loads((tmp_path / DB_NAME).read_text())["meta"]["1"]["schema"] == INDEX_SCHEMA


def test_a_run_that_never_reached_its_first_phase_is_comparable_with_nothing(
    tmp_path: Path,
) -> None:
    """An unreachable device's run (stored by the old code as a bare `hard_stop`) is listed as
    `not_started` and is never `previous`, a baseline, noise or a trend point."""
    from perftui.analysis.trend import select, trends
    from perftui.history.store import StoreError

    store = HistoryStore(tmp_path)
    one = {"runs": 1, "profiles": ["python_light"], "phases": ["burst"], "max_samples": 500}
    made = make_record(20.0, seed=1, **one)
    made_id = store.add_run(made)
    unreachable = make_record(20.0, seed=2, status="hard_stop", **one)
    unreachable.update(raw_runs=[], aggregated={}, hard_stop_reason="health probe failed")
    dead_id = store.add_run(unreachable)
    new = make_record(20.0, seed=3, **one)
    store.add_run(new)
    assert store.list_runs(status="not_started")[0]["run_id"] == dead_id
    assert store.previous_of(new)["run_id"] == made_id
    assert [r["run_id"] for r in store.noise_candidates(new, new)] == [made_id]
    with pytest.raises(StoreError, match="never reached its first phase"):
        store.set_baseline(dead_id)
    assert store.baselines() == {}
    chosen = select(store.list_runs())
    assert dead_id not in {s["run_id"] for s in chosen}
    [trend] = trends(reversed(list(store.records(chosen))), metric="p95_ms")
    assert dead_id not in trend.run_ids and len(trend.run_ids) == 2
