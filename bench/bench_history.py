"""History at scale: fill a temp history with N realistic runs (default 5,000) and time
`history list`, `compare`, adding a run, and the TUI's History screen, in process and as a fresh
CLI process.

Targets: issue 3, list < 1 s and compare < 0.3 s at 5,000 runs; issue 8, add < 100 ms and list
< 1 s at 20,000 runs (`--runs 20000`, about 2 minutes to fill).
Run: `.venv/bin/python bench/bench_history.py [--runs N] [--adds 50] [--keep DIR]`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from history_factory import make_record  # noqa: E402

from perftui import verdicts  # noqa: E402
from perftui.analysis.reports import comparison_markdown  # noqa: E402
from perftui.analysis.thresholds import RegressionThresholds  # noqa: E402
from perftui.history.store import DOCS_DIR, SHARD_GLOB, HistoryStore, compact, encode_doc  # noqa: E402

CLI = """
import argparse, sys
from pathlib import Path
from perftui.cli.history import register
p = argparse.ArgumentParser()
p.add_argument("--history-dir", type=Path)
register(p.add_subparsers(dest="cmd"))
args = p.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def fill(history: Path, runs: int) -> float:
    """Write N run documents (from 12 distinct templates), then let the store index them.

    One run an hour (20,000 runs span 28 months, about 720 a month, the size of an index
    shard). Going through add_run 20,000 times would take minutes; the store's own rebuild
    indexes the documents in one pass, as after a lost index.
    """
    templates = [
        make_record([20 + i % 4, 20.3 + i % 4, 19.8 + i % 4], seed=i, tag=f"t{i % 3}")
        for i in range(12)
    ]
    docs = history / DOCS_DIR
    docs.mkdir(parents=True)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for n in range(runs):
        record = dict(templates[n % len(templates)])
        moment = start + timedelta(hours=n)
        record["run_id"] = f"{moment:%Y%m%dT%H%M%SZ}-{n:06x}"
        record["started_at"] = moment.isoformat().replace("+00:00", "Z")
        record["content_hash"] = f"{n:064x}"
        (docs / f"{record['run_id']}.json.gz").write_bytes(encode_doc(compact(record)))
    began = time.perf_counter()
    assert len(HistoryStore(history).list_runs()) == runs
    return time.perf_counter() - began


def timed(fn, repeat: int = 5) -> float:
    """Median wall time of `repeat` calls, in seconds."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def cli(history: Path, *argv: str) -> None:
    subprocess.run(
        [sys.executable, "-c", CLI, "--history-dir", str(history), *argv],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )


def add_latencies(history: Path, count: int) -> list[float]:
    """`count` adds of new runs (one store, as a session would), all in the fullest month.

    An add rewrites its month's index shard, so its cost follows that month's run count.
    """
    store = HistoryStore(history)
    months = Counter((s.get("started_at") or "")[:7] for s in store.list_runs())
    month = datetime.strptime(months.most_common(1)[0][0] + "-15", "%Y-%m-%d")
    base = random.randrange(10**6)  # new content on every invocation: never a dedupe no-op
    times = []
    for i in range(count):
        record = make_record(
            [21, 21.2, 20.9],
            seed=base + i,
            tag="bench-add",
            started_at=month.replace(tzinfo=UTC) + timedelta(minutes=base % 600 + i),
        )
        began = time.perf_counter()
        store.add_run(record)
        times.append(time.perf_counter() - began)
    return times


async def history_screen_first_render(history: Path) -> float:
    """From `f2` on Setup to the History screen's first frame with its rows."""
    from textual.widgets import DataTable

    from perftui.tui.factory import create_app
    from perftui.tui.screens.history import HistoryScreen

    app = create_app(history)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        began = time.perf_counter()
        await pilot.press("f2")
        while not (
            isinstance(app.screen, HistoryScreen)
            and app.screen.is_mounted
            and app.screen.query_one("#runs", DataTable).row_count
        ):
            await pilot.pause(0.005)
        return time.perf_counter() - began


def perftui(history: Path, *argv: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "perftui", *argv, "--history-dir", str(history)],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--adds", type=int, default=50, help="adds timed at that size")
    parser.add_argument(
        "--keep", type=Path, help="fill this folder and keep it (a filled one is reused)"
    )
    args = parser.parse_args()
    history = args.keep or Path(tempfile.mkdtemp(prefix="perftui-bench-"))
    try:
        began = time.perf_counter()
        reused = (history / DOCS_DIR).is_dir()
        index_s = 0.0 if reused else fill(history, args.runs)
        fill_s = time.perf_counter() - began
        store = HistoryStore(history)
        ids = [s["run_id"] for s in store.list_runs()]
        record = store.get(ids[0])
        doc_kb = (history / DOCS_DIR / f"{ids[0]}.json.gz").stat().st_size / 1024
        shards = list(history.glob(SHARD_GLOB))
        index_mb = sum(p.stat().st_size for p in shards) / 2**20

        def compare_in_process() -> None:
            """As `perftui compare` does it: the noise sample picked from the history."""
            s = HistoryStore(history)
            a, b = s.resolve(ids[-1][:20]), s.resolve(ids[-4])
            comparison_markdown(verdicts.compare(s, a, b, RegressionThresholds()))

        adds = sorted(add_latencies(history, args.adds))
        rows = [
            (
                "history list, in process (all runs)",
                timed(lambda: HistoryStore(history).list_runs()),
            ),
            (
                "history list --tag t1 --limit 20, in process",
                timed(lambda: HistoryStore(history).list_runs(tag="t1", limit=20)),
            ),
            (
                "compare A B (resolve 2 + verdicts + markdown), in process",
                timed(compare_in_process),
            ),
            (f"add_run at this size, median of {args.adds}", statistics.median(adds)),
            (f"add_run at this size, p95 of {args.adds}", adds[int(0.95 * (len(adds) - 1))]),
            (
                "`history list` CLI, fresh process",
                timed(lambda: cli(history, "history", "list"), 3),
            ),
            (
                "`compare A B` CLI (p95 +15 %: tests run), fresh process",
                timed(lambda: cli(history, "compare", ids[-1][:20], ids[-4]), 3),
            ),
            (
                "`perftui history list` (the real entry point), fresh process",
                timed(lambda: perftui(history, "history", "list"), 3),
            ),
            (
                "TUI: f2 to the History screen's first frame with rows",
                statistics.median(
                    asyncio.run(history_screen_first_render(history)) for _ in range(3)
                ),
            ),
            (
                "python startup + imports only (for reference)",
                timed(
                    lambda: subprocess.run(
                        [sys.executable, "-c", "import perftui.cli.history"], check=True, cwd=ROOT
                    ),
                    3,
                ),
            ),
        ]
        fullest = max(Counter(s["started_at"][:7] for s in store.list_runs()).values())
        filled = "reused" if reused else f"filled in {fill_s:.1f} s (rebuild {index_s:.2f} s)"
        print(
            f"{len(ids)} runs stored ({filled}); run document {doc_kb:.1f} KB gzipped; index "
            f"{index_mb:.2f} MB in {len(shards)} month shard(s), {fullest} runs in the fullest"
        )
        print(f"record: {len(record['raw_runs'])} runs × {len(record['aggregated'])} keys")
        width = max(len(name) for name, _ in rows)
        print(f"{'operation'.ljust(width)}  seconds")
        for name, seconds in rows:
            print(f"{name.ljust(width)}  {seconds:7.3f}")
    finally:
        if args.keep is None:
            shutil.rmtree(history, ignore_errors=True)


if __name__ == "__main__":
    main()
