"""The `compare` and `trend` subcommands, and the compare step of `perftui run` (`--compare-to`):
thresholds from the config file and flags, the comparison through `perftui.verdicts`, its
report (Markdown, JSON or HTML) and the exit code its gates give.

The analysis (numpy, hdrh, plotext, and scipy inside it) is imported by the handlers that use
it, not here: building the parser and `perftui --version` do not pay for it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perftui.cli.handlers import fail, format_for, guarded, open_store, positive_int, write_or_print
from perftui.config import EXIT_GATE_FAILED, EXIT_OK, default_history_dir, load_thresholds

if TYPE_CHECKING:
    from perftui.analysis.comparison import Comparison
    from perftui.analysis.thresholds import RegressionThresholds
    from perftui.history.store import HistoryStore

COMPARE_FORMATS = ("md", "json", "html")


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
        return fail(
            f"runs set up differently, not gated: {shown}{more}; pass --allow-mismatch to gate"
        )
    if comparison.nothing_reason:
        return fail(f"nothing compared, not gated: {comparison.nothing_reason}")
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
    verdict: dict[str, str] | None = None,
) -> int:
    """`perftui run … --compare-to REF`: the Markdown report on stdout (or `report_path`, whose
    extension picks md/json/html); 1 on a regression if asked to fail, 2 if REF is unknown or
    was set up differently (see `gate_exit`), 0 with a note on stderr when REF is `previous` and
    the run is the first of its kind. A run that regressed is flagged in the store, so that it
    never joins a noise sample. `verdict`, if given, receives the reference and the headline
    (for `run --json`)."""
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
        return fail(f"--compare-to {ref}: {exc}")
    comparison = verdicts.compare(
        store, reference, record, thresholds, noise=noise, gate_paths=gate_paths
    )
    verdicts.flag_regression(store, comparison)
    if verdict is not None:
        verdict.update(reference=str(reference.get("run_id")), verdict=str(comparison.verdict))
    fmt = format_for(report_path, None)
    write_or_print(_render(comparison, fmt, reference, record), report_path)
    if report_path is not None:
        print(f"comparison with {reference['run_id']}: {summary_line(comparison)} → {report_path}")
    return gate_exit(comparison, fail_on_regression, allow_mismatch)


@guarded
def cmd_compare(args: argparse.Namespace) -> int:
    """Compare run A (reference) with run B (candidate)."""
    from perftui import verdicts
    from perftui.analysis.reports import summary_line

    thresholds = thresholds_from_args(args)
    store = open_store(args)
    a, b = store.resolve(args.a), store.resolve(args.b)
    comparison = verdicts.compare(
        store, a, b, thresholds, noise=args.noise, gate_paths=args.gate_paths
    )
    fmt = format_for(args.report, args.format)
    write_or_print(_render(comparison, fmt, a, b), args.report)
    if args.report is not None:
        print(f"{summary_line(comparison)} → {args.report}")
    return gate_exit(comparison, args.fail_on_regression, args.allow_mismatch)


@guarded
def cmd_trend(args: argparse.Namespace) -> int:
    """A metric across runs with a verdict per `profile:phase` and a text chart."""
    from perftui.analysis.metrics import METRICS
    from perftui.analysis.trend import chart, describe, select, trends

    if args.metric not in METRICS:  # checked here: the parser does not load the analysis
        raise ValueError(f"--metric: unknown {args.metric!r} (known: {', '.join(METRICS)})")
    store = open_store(args)
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


def register(subparsers: Any) -> None:
    """Add `compare` and `trend` to the main parser's subparsers."""
    p = subparsers.add_parser("compare", help="compare run A (reference) with run B")
    p.add_argument(
        "a",
        metavar="A",
        help="the reference: run id, prefix, tag, latest, previous, baseline[:NAME], build:LABEL",
    )
    p.add_argument("b", metavar="B", help="the candidate, named the same ways")
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
    p.add_argument("--last", type=positive_int, default=30)
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-chart", action="store_true")
    p.set_defaults(func=cmd_trend)
