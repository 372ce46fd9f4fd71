"""The on-disk event stream: every event type round-trips, old heartbeats roll up, readers
follow."""

from __future__ import annotations

import dataclasses
import itertools
import tracemalloc
import typing
from pathlib import Path

import pytest

from perftui.config import GateLimits, RunConfig
from perftui.engine import eventjson, stream
from perftui.engine.events import (
    Event,
    Heartbeat,
    Log,
    PathCounts,
    PhaseFinished,
    PhaseStarted,
    RunFinished,
    RunStarted,
    Stall,
    Telemetry,
)
from perftui.profiles import resolve_profiles


def beat(elapsed: float) -> Heartbeat:
    return Heartbeat(
        "api", 1, "long", elapsed, 3600.0, 9000.0, 10, 9, 1, 5.0, 1.0, 2.0, 3.0, 1.5, 2.5, 3.5,
        {"timeout": 1}, {"200": 9}, {"/a": PathCounts(10, 9, 1, 1.0, 2.0, 3.0)},
    )  # fmt: skip


EVERY = [
    RunStarted("t:1", ["api"], 1, ["long"], 1, "2026-01-01T00:00:00", {"runs": 1}),
    PhaseStarted("api", 1, "long", 8, 3600.0, 9000.0, 1, 1),
    beat(0.25),
    Stall("api", 1, "long", 12.5, 1500.0),
    Telemetry("api", 1, "long", "during", {"heap": {"internal_free": 1000}}, None),
    PhaseFinished("api", 1, "long", False, ["p95 too high"], {"p95_ms": 3.0}, 1, 1),
    Log("warning", "careful"),
    RunFinished("finished", True, 0, None, {"json": "x.json"}, {"run_id": "r"}, "r"),
]


def test_every_event_type_is_covered_and_round_trips() -> None:
    assert {type(e) for e in EVERY} == set(typing.get_args(Event))  # a new type needs a case
    for event in EVERY:
        back = eventjson.event_from_json(eventjson.event_to_json(event))
        assert back == event and type(back) is type(event)
    back = eventjson.event_from_json(eventjson.event_to_json(beat(1)))
    assert isinstance(back, Heartbeat) and isinstance(back.paths["/a"], PathCounts)
    assert eventjson.event_from_json({"type": "FromTheFuture", "x": 1}) is None


def test_the_config_round_trips_for_a_viewer_that_did_not_start_the_run(tmp_path: Path) -> None:
    config = RunConfig(
        host="10.0.0.5",
        port=8081,
        profiles=resolve_profiles("api,mixed"),
        runs=2,
        history_dir=tmp_path,
        phase_overrides={"long": {"duration": 30.0}},
        gate_limits=GateLimits(max_p95_ms=123.0),
        tag="x",
    )
    back = eventjson.config_from_json(eventjson.config_to_json(config))
    assert dataclasses.asdict(back) == dataclasses.asdict(config)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_old_heartbeats_roll_up_and_a_tailing_reader_misses_nothing_new(tmp_path: Path) -> None:
    """One hour at 4 heartbeats/s: the last 5 minutes stay whole, older ones keep 1 per 10 s;
    a reader that started before the roll-up carries on after it without a duplicate."""
    clock = Clock()
    config = RunConfig(host="h", profiles=resolve_profiles("api"), history_dir=tmp_path)
    writer = stream.EventWriter(config, "run1", 123, clock=clock)
    tail = stream.EventTail(writer.path)
    writer.write([EVERY[0], EVERY[1]])
    early = tail.read()
    assert [type(e) for e in early] == [RunStarted, PhaseStarted]
    seen = 0
    for i in range(4 * 3600):
        clock.now += 0.25
        writer.write([beat(i * 0.25)])
        if i % 997 == 0:
            seen += len(tail.read())
    seen += len(tail.read())
    assert seen == 4 * 3600  # across several roll-ups: each heartbeat read once
    writer.roll_up()
    clock.now += 1
    writer.write([EVERY[-1]])
    late = stream.EventTail(writer.path).read()  # a viewer attaching at the end
    beats = [e for e in late if isinstance(e, Heartbeat)]
    recent = [b for b in beats if b.elapsed >= 3600 - stream.KEEP_RECENT_S]
    assert abs(len(recent) - 4 * stream.KEEP_RECENT_S) <= 2  # the last minutes, whole
    old = [b for b in beats if b.elapsed < 3600 - stream.KEEP_RECENT_S - 1]
    gaps = [b.elapsed - a.elapsed for a, b in itertools.pairwise(old)]
    assert min(gaps) >= stream.THIN_PERIOD_S - 0.25 and max(gaps) <= stream.THIN_PERIOD_S + 0.25
    assert old[0].elapsed == 0.0  # the start of the run is still there
    assert isinstance(late[0], RunStarted) and isinstance(late[-1], RunFinished)
    assert writer.path.stat().st_size < 3 * 1024 * 1024
    writer.close()
    assert not writer.status_file.exists() and writer.path.exists()


def test_a_reader_follows_a_roll_up_from_the_tail_in_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a roll-up a reader does not read the new file again from its start: it steps back
    from the end to the first line it has not seen, holding a chunk at a time (re-reading 2–3 MB
    at each roll-up was a lasting step in a viewer's RSS, issue 11). A reader that is behind
    still gets every unseen event, once."""
    clock = Clock()
    config = RunConfig(host="h", profiles=resolve_profiles("api"), history_dir=tmp_path)
    writer = stream.EventWriter(config, "run1", 123, clock=clock)
    tail = stream.EventTail(writer.path)
    for i in range(0, 12_000, 100):
        clock.now += 0.25
        writer.write([beat((i + k) * 0.2) for k in range(100)])
    assert len(tail.read()) == 12_000
    writer.roll_up()  # all of it recent: the file is replaced by a copy of itself
    size = writer.path.stat().st_size
    assert size > 16 * stream.READ_CHUNK
    writer.write([beat(9999.0)])
    scanned: list[int] = []
    parse = tail._parse
    monkeypatch.setattr(
        tail, "_parse", lambda chunk, out: scanned.append(len(chunk)) or parse(chunk, out)
    )
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        new = tail.read()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [e.elapsed for e in new] == [9999.0]  # only the unseen event
    assert sum(scanned) < 2 * stream.READ_CHUNK  # the tail of the file, not all of it
    assert peak < 4 * stream.READ_CHUNK  # a chunk, its lines, one parsed
    behind = stream.EventTail(writer.path)
    assert len(behind.read()) == 12_001
    writer.write([beat(20_000.0 + k) for k in range(3000)])  # more than a chunk unread
    writer.roll_up()
    writer.write([beat(30_000.0)])
    got = [e.elapsed for e in behind.read()]
    assert got == [20_000.0 + k for k in range(3000)] + [30_000.0]
    writer.close()
