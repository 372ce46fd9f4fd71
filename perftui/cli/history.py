"""The `history` subcommands: list, show, delete, baseline, note, import and export stored runs
(`compare` and `trend` are `perftui.cli.compare`'s; `register` adds them too).

Every handler returns an exit code: 0 fine, 2 bad input (unknown run, ambiguous prefix, bad
file) reported in one stderr line. Nothing here overwrites stored data; the store itself moves a
damaged database aside.

The analysis is imported by the handlers that use it, not here: building the parser,
`perftui --version` and `history list` do not pay for it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from perftui.cli import compare
from perftui.cli.handlers import fail, format_for, guarded, open_store, positive_int, write_or_print
from perftui.config import EXIT_BAD_INPUT, EXIT_OK
from perftui.engine.events import RunStatus


def _when(text: str) -> Any:
    from perftui.history.store import parse_utc

    stamp = parse_utc(text)
    if stamp is None:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}")
    return stamp


# ----- handlers ----------------------------------------------------------------------------------


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "target": args.target,
        "profile": args.profile,
        "tag": args.tag,
        "build": args.build,
        "since": args.since,
        "until": args.until,
        "passed": args.passed,
        "status": args.status,
        "limit": args.limit,
    }


@guarded
def cmd_list(args: argparse.Namespace) -> int:
    """List stored runs, newest first."""
    runs = open_store(args).list_runs(**_filters(args))
    if args.json:
        print(json.dumps(runs, indent=1))
        return EXIT_OK
    if not runs:
        print("no stored runs match")
        return EXIT_OK
    rows = [("RUN", "STARTED", "TARGET", "PROFILES", "TAG", "BUILD", "STATUS", "RESULT", "NOTE")]
    for s in runs:
        result = {True: "PASS", False: "FAIL"}.get(s.get("overall_pass"), "-")
        rows.append(
            (
                s["run_id"],
                s.get("started_at") or "?",
                s.get("target") or "?",
                ",".join(s.get("profiles") or []),
                s.get("tag") or "",
                s.get("build") or "",
                s.get("status") or "",
                result,
                (s.get("note") or "")[:40],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    print("\n".join(line.rstrip() for line in lines))
    return EXIT_OK


@guarded
def cmd_show(args: argparse.Namespace) -> int:
    """One run: its Markdown summary, or the whole record as JSON."""
    store = open_store(args)
    record = store.resolve(args.run)
    if args.json:
        print(json.dumps(record, indent=1))
        return EXIT_OK
    from perftui.engine.record import markdown as run_markdown

    print(run_markdown(record).rstrip())
    extra = [("tag", record.get("tag")), ("build", record.get("build"))]
    extra += [("device", record.get("device")), ("note", record.get("note"))]
    extra += [("source", record.get("source")), ("started", record.get("started_at"))]
    meta = record.get("metadata") or {}
    extra += [(k, meta.get(k)) for k in ("tool_version", "hostname", "git_commit", "git_branch")]
    baselines = [n for n, rid in store.baselines().items() if rid == record["run_id"]]
    extra.append(("baseline", ", ".join(baselines)))
    print("\n" + "\n".join(f"- {k}: {v}" for k, v in extra if v))
    return EXIT_OK


@guarded
def cmd_delete(args: argparse.Namespace) -> int:
    """Delete a run after a y/N question (or `--yes`)."""
    store = open_store(args)
    run_id = store.resolve(args.run)["run_id"]
    if not args.yes:
        print(f"delete run {run_id}? [y/N] ", end="", file=sys.stderr, flush=True)
        answer = sys.stdin.readline() if sys.stdin is not None else ""
        if not answer:
            return fail("no answer on stdin; pass --yes to delete without asking")
        if answer.strip().lower() not in ("y", "yes"):
            print("not deleted")
            return EXIT_OK
    gone = store.delete(run_id)
    print(f"deleted {run_id}" + (f" (was baseline: {', '.join(gone)})" if gone else ""))
    return EXIT_OK


@guarded
def cmd_baseline(args: argparse.Namespace) -> int:
    """Mark a run as a named baseline, or list the baselines."""
    store = open_store(args)
    if args.run is None:
        for name, run_id in sorted(store.baselines().items()):
            print(f"{name}\t{run_id}")
        return EXIT_OK
    run_id = store.resolve(args.run)["run_id"]
    store.set_baseline(run_id, args.name)
    print(f"baseline {args.name!r} → {run_id}")
    return EXIT_OK


@guarded
def cmd_note(args: argparse.Namespace) -> int:
    """Attach a note to a run (replacing any earlier note)."""
    store = open_store(args)
    run_id = store.resolve(args.run)["run_id"]
    store.set_note(run_id, args.text)
    print(f"noted {run_id}")
    return EXIT_OK


@guarded
def cmd_import(args: argparse.Namespace) -> int:
    """Import the legacy runner's JSON files; exit 2 if any file could not be read."""
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        return fail(f"no such file or folder: {', '.join(missing)}")
    from perftui.history.legacy import import_paths

    result = import_paths(open_store(args), args.paths)
    for error in result.errors:
        print(f"perftui: skipped {error}", file=sys.stderr)
    print(
        f"imported {len(result.added)} run(s), {len(result.duplicates)} already stored, "
        f"{len(result.errors)} unreadable"
    )
    return EXIT_BAD_INPUT if result.errors else EXIT_OK


@guarded
def cmd_export(args: argparse.Namespace) -> int:
    """Export runs (filters as for list) as JSON, CSV, Markdown or HTML."""
    from perftui.analysis.reports import history_html, history_markdown, runs_csv, runs_json

    store = open_store(args)
    summaries = store.list_runs(**_filters(args))
    fmt = format_for(args.output, args.format) if args.format or args.output else "json"
    if fmt == "md":
        text = history_markdown(summaries)
    else:
        records = list(store.records(summaries))
        text = {"json": runs_json, "csv": runs_csv, "html": history_html}[fmt](records)
    write_or_print(text, args.output)
    return EXIT_OK


# ----- parser ------------------------------------------------------------------------------------


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", help="host:port, or sim for the simulated device")
    p.add_argument("--profile", help="runs that include this profile")
    p.add_argument("--tag")
    p.add_argument("--build", help="runs of this firmware build (run --build)")
    p.add_argument("--since", type=_when, help="ISO 8601 date or time (UTC unless given)")
    p.add_argument("--until", type=_when, help="ISO 8601 date or time (UTC unless given)")
    p.add_argument("--status", choices=[str(s) for s in RunStatus])
    group = p.add_mutually_exclusive_group()
    group.add_argument("--passed", dest="passed", action="store_const", const=True, default=None)
    group.add_argument("--failed", dest="passed", action="store_const", const=False)
    p.add_argument("--limit", type=positive_int)


def register(subparsers: Any) -> None:
    """Add `history`, `compare` and `trend` to the main parser's subparsers."""
    history = subparsers.add_parser("history", help="list, show, import and export stored runs")
    hsub = history.add_subparsers(dest="history_command", metavar="ACTION", required=True)

    p = hsub.add_parser("list", help="stored runs, newest first")
    _add_filters(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = hsub.add_parser("show", help="one run")
    p.add_argument(
        "run", help="run id, id prefix, tag, latest, previous, baseline[:NAME] or build:LABEL"
    )
    p.add_argument("--json", action="store_true", help="the whole stored record")
    p.set_defaults(func=cmd_show)

    p = hsub.add_parser("delete", help="delete a run (asks unless --yes)")
    p.add_argument("run")
    p.add_argument("--yes", action="store_true")
    p.set_defaults(func=cmd_delete)

    p = hsub.add_parser("baseline", help="mark a run as baseline (no RUN: list baselines)")
    p.add_argument("run", nargs="?")
    p.add_argument("--name", default="default")
    p.set_defaults(func=cmd_baseline)

    p = hsub.add_parser("note", help="attach a note to a run")
    p.add_argument("run")
    p.add_argument("text")
    p.set_defaults(func=cmd_note)

    p = hsub.add_parser("import", help="import the legacy runner's perf_*.json / latest*.json")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.set_defaults(func=cmd_import)

    p = hsub.add_parser("export", help="export runs (filters as for list)")
    _add_filters(p)
    p.add_argument("--format", choices=("json", "csv", "md", "html"), default=None)
    p.add_argument("--output", type=Path, default=None, help="file (default stdout)")
    p.set_defaults(func=cmd_export)

    compare.register(subparsers)
