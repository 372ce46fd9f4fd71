"""The `history`, `compare` and `trend` subcommands, and the compare step of `perftui run`.

Every handler returns an exit code: 0 fine, 1 a regression when `--fail-on-regression` asked for
it, 2 bad input (unknown run, ambiguous prefix, bad file or setting) reported in one stderr line.
Nothing here overwrites stored data; the store itself moves a damaged database aside.

The analysis (numpy, hdrh, plotext, and scipy inside it) is imported by the handlers that use
it, not here: building the parser, `perftui --version` and `history list` do not pay for it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perftui.config import (
    EXIT_BAD_INPUT,
    EXIT_GATE_FAILED,
    EXIT_OK,
    default_history_dir,
    load_thresholds,
)
from perftui.engine.events import RunStatus
from perftui.history.files import atomic_write_bytes

if TYPE_CHECKING:
    from perftui.analysis.comparison import Comparison
    from perftui.analysis.thresholds import RegressionThresholds
    from perftui.history.store import HistoryStore

Handler = Callable[[argparse.Namespace], int]
COMPARE_FORMATS = ("md", "json", "html")


def _fail(message: str) -> int:
    print(f"perftui: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _guarded(handler: Handler) -> Handler:
    """Known problems become one stderr line and exit 2, never a traceback."""

    def run(args: argparse.Namespace) -> int:
        from perftui.history.store import StoreError

        try:
            return handler(args)
        except BrokenPipeError:
            raise  # the reader left (`| head`): `main` ends quietly
        except (StoreError, ValueError, OSError) as exc:  # ValueError covers ConfigError
            return _fail(str(exc))

    run.__doc__ = handler.__doc__
    return run


def _store(args: argparse.Namespace) -> HistoryStore:
    from perftui.history.store import HistoryStore

    return HistoryStore(getattr(args, "history_dir", None) or default_history_dir())


def _when(text: str) -> Any:
    from perftui.history.store import parse_utc

    stamp = parse_utc(text)
    if stamp is None:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}")
    return stamp


def _threshold(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        return name.strip(), float(value) if sep else float("nan")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected METRIC=NUMBER, got {text!r}") from None


def add_compare_options(parser: argparse.ArgumentParser) -> None:
    """Threshold options shared by `compare` and `run --compare-to`."""
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML file: [thresholds] and [run] settings (default HISTORY/perftui.toml if present)",
    )
    parser.add_argument(
        "--threshold",
        type=_threshold,
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="override a threshold, percent (error_rate: points); METRIC as in `trend --metric`",
    )
    parser.add_argument(
        "--alpha", type=float, default=None, help="1 − the intervals' confidence (0.05 = 95 %%)"
    )
    parser.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit 1 when a primary row (whole-phase p95, p99, rps, error rate, heap) regresses; "
        "exit 2 if the runs were set up differently",
    )
    parser.add_argument(
        "--gate-paths",
        action="store_true",
        help="let per-path and secondary rows fail CI too (after FDR control)",
    )
    parser.add_argument(
        "--noise",
        default=None,
        metavar="RUNS|TAG|none",
        help="the noise sample by hand: run ids or prefixes separated by commas, a tag, or none "
        "(default: earlier runs of A's build, from before B's build first ran)",
    )
    parser.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="gate even when the two runs' settings differ (the differences are still shown)",
    )


def thresholds_from_args(args: argparse.Namespace) -> RegressionThresholds:
    """Defaults < config file < `--threshold`/`--alpha` flags."""
    from perftui.analysis.thresholds import ConfigError

    overrides: dict[str, float] = {}
    for name, value in getattr(args, "threshold", []):
        if value != value:  # NaN marks a flag without "=VALUE"
            raise ConfigError(f"--threshold {name}: expected METRIC=NUMBER")
        overrides[name] = value
    if getattr(args, "alpha", None) is not None:
        overrides["alpha"] = args.alpha
    history_dir = getattr(args, "history_dir", None) or default_history_dir()
    return load_thresholds(history_dir, getattr(args, "config", None), overrides)


def _write_or_print(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(output, text.encode())


def _render(comparison: Any, fmt: str, a: dict[str, Any], b: dict[str, Any]) -> str:
    from perftui.analysis.reports import comparison_html, comparison_json, comparison_markdown

    if fmt == "html":
        return comparison_html(comparison, (a, b))  # with the records' timelines
    renderers = {"md": comparison_markdown, "json": comparison_json}
    return renderers[fmt](comparison)


def gate_exit(comparison: Comparison, fail_on_regression: bool, allow_mismatch: bool) -> int:
    """1 on a gated regression when asked; 2 (one line) when asked to gate runs set up
    differently, unless `--allow-mismatch`."""
    if not fail_on_regression:
        return EXIT_OK
    if comparison.mismatches and not allow_mismatch:
        shown, rest = comparison.mismatches[0], len(comparison.mismatches) - 1
        more = f" (and {rest} more)" if rest else ""
        return _fail(
            f"runs set up differently, not gated: {shown}{more}; pass --allow-mismatch to gate"
        )
    if comparison.nothing_reason:
        return _fail(f"nothing compared, not gated: {comparison.nothing_reason}")
    return EXIT_GATE_FAILED if comparison.regressions else EXIT_OK


def compare_after_run(
    store: HistoryStore,
    record: dict[str, Any],
    ref: str,
    thresholds: RegressionThresholds,
    fail_on_regression: bool,
    report_path: Path | None,
    *,
    gate_paths: bool = False,
    allow_mismatch: bool = False,
    noise: str | None = None,
) -> int:
    """`perftui run … --compare-to REF`: the Markdown report on stdout (or `report_path`, whose
    extension picks md/json/html); 1 on a regression if asked to fail, 2 if REF is unknown or
    was set up differently (see `gate_exit`), 0 with a note on stderr when REF is `previous` and
    the run is the first of its kind. A run that regressed is flagged in the store, so that it
    never joins a noise sample."""
    from perftui import verdicts
    from perftui.analysis.reports import summary_line
    from perftui.history.store import StoreError

    try:
        reference = store.resolve(ref, relative_to=record)
    except StoreError as exc:
        if ref == "previous":  # a first run has nothing before it: a note, not an error
            print(
                f"perftui: note: --compare-to previous: run {record.get('run_id')} is the first "
                "of its target and profiles; nothing compared",
                file=sys.stderr,
            )
            return EXIT_OK
        return _fail(f"--compare-to {ref}: {exc}")
    comparison = verdicts.compare(
        store, reference, record, thresholds, noise=noise, gate_paths=gate_paths
    )
    verdicts.flag_regression(store, comparison)
    fmt = _format_for(report_path, None)
    _write_or_print(_render(comparison, fmt, reference, record), report_path)
    if report_path is not None:
        print(f"comparison with {reference['run_id']}: {summary_line(comparison)} → {report_path}")
    return gate_exit(comparison, fail_on_regression, allow_mismatch)


def _format_for(path: Path | None, given: str | None) -> str:
    if given:
        return given
    suffix = path.suffix.lstrip(".").lower() if path else ""
    return {"html": "html", "htm": "html", "json": "json"}.get(suffix, "md")


# ----- handlers ----------------------------------------------------------------------------------


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "target": args.target,
        "profile": args.profile,
        "tag": args.tag,
        "since": args.since,
        "until": args.until,
        "passed": args.passed,
        "status": args.status,
        "limit": args.limit,
    }


@_guarded
def cmd_list(args: argparse.Namespace) -> int:
    """List stored runs, newest first."""
    runs = _store(args).list_runs(**_filters(args))
    if args.json:
        print(json.dumps(runs, indent=1))
        return EXIT_OK
    if not runs:
        print("no stored runs match")
        return EXIT_OK
    rows = [("RUN", "STARTED", "TARGET", "PROFILES", "TAG", "STATUS", "RESULT", "NOTE")]
    for s in runs:
        result = {True: "PASS", False: "FAIL"}.get(s.get("overall_pass"), "-")
        rows.append(
            (
                s["run_id"],
                s.get("started_at") or "?",
                s.get("target") or "?",
                ",".join(s.get("profiles") or []),
                s.get("tag") or "",
                s.get("status") or "",
                result,
                (s.get("note") or "")[:40],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    print("\n".join(line.rstrip() for line in lines))
    return EXIT_OK


@_guarded
def cmd_show(args: argparse.Namespace) -> int:
    """One run: its Markdown summary, or the whole record as JSON."""
    store = _store(args)
    record = store.resolve(args.run)
    if args.json:
        print(json.dumps(record, indent=1))
        return EXIT_OK
    from perftui.engine.record import markdown as run_markdown

    print(run_markdown(record).rstrip())
    extra = [("tag", record.get("tag")), ("note", record.get("note"))]
    extra += [("source", record.get("source")), ("started", record.get("started_at"))]
    meta = record.get("metadata") or {}
    extra += [(k, meta.get(k)) for k in ("tool_version", "hostname", "git_commit", "git_branch")]
    baselines = [n for n, rid in store.baselines().items() if rid == record["run_id"]]
    extra.append(("baseline", ", ".join(baselines)))
    print("\n" + "\n".join(f"- {k}: {v}" for k, v in extra if v))
    return EXIT_OK


@_guarded
def cmd_delete(args: argparse.Namespace) -> int:
    """Delete a run after a y/N question (or `--yes`)."""
    store = _store(args)
    run_id = store.resolve(args.run)["run_id"]
    if not args.yes:
        print(f"delete run {run_id}? [y/N] ", end="", file=sys.stderr, flush=True)
        answer = sys.stdin.readline() if sys.stdin is not None else ""
        if not answer:
            return _fail("no answer on stdin; pass --yes to delete without asking")
        if answer.strip().lower() not in ("y", "yes"):
            print("not deleted")
            return EXIT_OK
    gone = store.delete(run_id)
    print(f"deleted {run_id}" + (f" (was baseline: {', '.join(gone)})" if gone else ""))
    return EXIT_OK


@_guarded
def cmd_baseline(args: argparse.Namespace) -> int:
    """Mark a run as a named baseline, or list the baselines."""
    store = _store(args)
    if args.run is None:
        for name, run_id in sorted(store.baselines().items()):
            print(f"{name}\t{run_id}")
        return EXIT_OK
    run_id = store.resolve(args.run)["run_id"]
    store.set_baseline(run_id, args.name)
    print(f"baseline {args.name!r} → {run_id}")
    return EXIT_OK


@_guarded
def cmd_note(args: argparse.Namespace) -> int:
    """Attach a note to a run (replacing any earlier note)."""
    store = _store(args)
    run_id = store.resolve(args.run)["run_id"]
    store.set_note(run_id, args.text)
    print(f"noted {run_id}")
    return EXIT_OK


@_guarded
def cmd_import(args: argparse.Namespace) -> int:
    """Import the legacy runner's JSON files; exit 2 if any file could not be read."""
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        return _fail(f"no such file or folder: {', '.join(missing)}")
    from perftui.history.legacy import import_paths

    result = import_paths(_store(args), args.paths)
    for error in result.errors:
        print(f"perftui: skipped {error}", file=sys.stderr)
    print(
        f"imported {len(result.added)} run(s), {len(result.duplicates)} already stored, "
        f"{len(result.errors)} unreadable"
    )
    return EXIT_BAD_INPUT if result.errors else EXIT_OK


@_guarded
def cmd_export(args: argparse.Namespace) -> int:
    """Export runs (filters as for list) as JSON, CSV, Markdown or HTML."""
    from perftui.analysis.reports import history_html, history_markdown, runs_csv, runs_json

    store = _store(args)
    summaries = store.list_runs(**_filters(args))
    fmt = _format_for(args.output, args.format) if args.format or args.output else "json"
    if fmt == "md":
        text = history_markdown(summaries)
    else:
        records = list(store.records(summaries))
        text = {"json": runs_json, "csv": runs_csv, "html": history_html}[fmt](records)
    _write_or_print(text, args.output)
    return EXIT_OK


@_guarded
def cmd_compare(args: argparse.Namespace) -> int:
    """Compare run A (reference) with run B (candidate)."""
    from perftui import verdicts
    from perftui.analysis.reports import summary_line

    thresholds = thresholds_from_args(args)
    store = _store(args)
    a, b = store.resolve(args.a), store.resolve(args.b)
    comparison = verdicts.compare(
        store, a, b, thresholds, noise=args.noise, gate_paths=args.gate_paths
    )
    fmt = _format_for(args.report, args.format)
    _write_or_print(_render(comparison, fmt, a, b), args.report)
    if args.report is not None:
        print(f"{summary_line(comparison)} → {args.report}")
    return gate_exit(comparison, args.fail_on_regression, args.allow_mismatch)


@_guarded
def cmd_trend(args: argparse.Namespace) -> int:
    """A metric across runs with a verdict per `profile:phase` and a text chart."""
    from perftui.analysis.metrics import METRICS
    from perftui.analysis.trend import chart, describe, select, trends

    if args.metric not in METRICS:  # checked here: the parser does not load the analysis
        raise ValueError(f"--metric: unknown {args.metric!r} (known: {', '.join(METRICS)})")
    store = _store(args)
    chosen = select(store.list_runs(target=args.target), args.profile, args.phase, args.last)
    items = trends(
        reversed(list(store.records(chosen))),  # oldest first
        profile=args.profile,
        phase=args.phase,
        metric=args.metric,
    )
    if args.json:
        print(json.dumps([dataclasses.asdict(t) for t in items], indent=1))
        return EXIT_OK
    if not items:
        print("no stored runs have that metric")
        return EXIT_OK
    if not args.no_chart:
        print(chart(items, color=sys.stdout.isatty()))
    print("\n".join(describe(t) for t in items))
    return EXIT_OK


# ----- parser ------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", help="host:port")
    p.add_argument("--profile", help="runs that include this profile")
    p.add_argument("--tag")
    p.add_argument("--since", type=_when, help="ISO 8601 date or time (UTC unless given)")
    p.add_argument("--until", type=_when, help="ISO 8601 date or time (UTC unless given)")
    p.add_argument("--status", choices=[str(s) for s in RunStatus])
    group = p.add_mutually_exclusive_group()
    group.add_argument("--passed", dest="passed", action="store_const", const=True, default=None)
    group.add_argument("--failed", dest="passed", action="store_const", const=False)
    p.add_argument("--limit", type=_positive_int)


def register(subparsers: Any) -> None:
    """Add `history`, `compare` and `trend` to the main parser's subparsers."""
    history = subparsers.add_parser("history", help="list, show, import and export stored runs")
    hsub = history.add_subparsers(dest="history_command", metavar="ACTION", required=True)

    p = hsub.add_parser("list", help="stored runs, newest first")
    _add_filters(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = hsub.add_parser("show", help="one run")
    p.add_argument("run", help="run id, id prefix, tag, latest, previous or baseline[:NAME]")
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

    p = subparsers.add_parser("compare", help="compare run A (reference) with run B")
    p.add_argument("a", metavar="A", help="run id, id prefix, tag, latest, previous, baseline")
    p.add_argument("b", metavar="B")
    p.add_argument("--format", choices=COMPARE_FORMATS, default=None, help="default md")
    p.add_argument("--report", type=Path, default=None, help="write the report to FILE")
    add_compare_options(p)
    p.set_defaults(func=cmd_compare)

    p = subparsers.add_parser("trend", help="a metric across runs, with a verdict and a chart")
    p.add_argument("--target")
    p.add_argument("--profile")
    p.add_argument("--phase", choices=("burst", "long"))
    p.add_argument(
        "--metric",
        default="p95_ms",
        help="a compared metric (default p95_ms); an unknown name lists them",
    )
    p.add_argument("--last", type=_positive_int, default=30)
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-chart", action="store_true")
    p.set_defaults(func=cmd_trend)
