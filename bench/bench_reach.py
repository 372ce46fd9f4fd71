"""Reach (issue 22): what HTTPS, a one-off POST, response checks and a ramp cost perftui, each
measured against a reference in the same run on the same machine.

- `https`: nginx (1 KB file) on one port over http and on another over TLS (a self-signed
  ECDSA P-256 certificate the bench makes on loopback), 32 clients: hey and wrk (neither
  verifies) against `perftui run https://127.0.0.1 --insecure`, each also over plain http, so
  every tool's https/http ratio is measured too. Then the 20 ms delay server over TLS at 8 and
  64 clients: p50/p99 against wrk's, and against the server's fixed delay.
- `post`: nginx's `/post` (any method, a fixed answer), 32 clients: `hey -m POST -H … -D FILE`
  against `perftui run … -m POST -H … -d @FILE`, with each tool's GET of the same URL beside;
  then the delay server's POST at 8 clients: p50 against wrk (a Lua script's POST) and hey.
- `checks`: nginx's `/status.json` (a ~1 KB JSON answer), 32 clients: perftui with a profile
  whose request has a `check` table (status set, body_contains, a JSON field, max body size)
  against the same profile without it, hey beside as the reference.
- `ramp`: `--stages` against nginx (open loop, 32 connections, up to about half the ceiling)
  and against the 20 ms delay server (64 connections, up to ~60 % of what they carry): the
  achieved rate of every timeline window against the ramp's mean target over that window,
  computed here from the stages (the truth), not read from perftui.

Tools run one at a time, interleaved per repeat, each after the quiet wait of bench/common.py;
every row records the load average (1 min) before and after it. Run at high priority on a
shared machine (as root): `nice -n -15 .venv/bin/python bench/bench_reach.py`. Raw results:
bench/results/reach_<stamp>.json. Exit 0 when every target below is met:

- https: perftui's rps ≥ 0.3 × hey's (the ceiling target of issue 2, over TLS); p50 within 5 %
  and p99 within 15 % of wrk's at the TLS delay server (issue 2's fidelity targets).
- post: perftui's POST rps ≥ 0.3 × hey's POST rps; p50 within 5 % of wrk's.
- checks: every request passes its check; the engine's CPU per request with checks ≤ 1.1 × without
  (rps itself moves with the CPU share the engine gets on a loaded machine).
- ramp: every window whose mean target is ≥ 10 % of the peak within 5 % of it (issue 22).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from common import (
    LOOPBACK,
    DelayServer,
    add_quiet_options,
    apply_quiet_options,
    checks_table,
    free_port,
    log,
    machine_info,
    measure,
    run_hey,
    run_perftui,
    run_wrk,
    self_signed,
    table,
    write_results,
)
from nginx_run import FILE_NAME, JSON_NAME, Nginx

SECTIONS = ("https", "post", "checks", "ramp")
HEADERS = ("Content-Type: application/json", "X-Bench: reach")
BODY = json.dumps({"name": "bench", "values": list(range(40)), "note": "x" * 64}).encode()
CHECK = (
    'check = { status = [200], body_contains = \'"ok": true\', json = { "heap.free" = 123456 }, '
    "max_body_bytes = 4096 }"
)
WRK_POST = """wrk.method = "POST"
wrk.body = io.open("{body}", "rb"):read("*a")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Bench"] = "reach"
"""


def _insecure(extra: list[str] | None = None) -> list[str]:
    return ["--insecure", *(extra or [])]


def _post_flags(body: Path) -> list[str]:
    flags = ["-m", "POST"]
    for header in HEADERS:
        flags += ["-H", header]
    return [*flags, "-d", f"@{body}"]


def _hey_post(body: Path) -> list[str]:
    flags = ["-m", "POST"]
    for header in HEADERS:
        flags += ["-H", header]
    return [*flags, "-D", str(body)]


def _rounds(
    runners: dict[str, Callable[[], dict[str, Any]]], server: Any, clients: int, repeat: int
) -> dict[str, list[dict[str, Any]]]:
    """Every runner once per round, in turn; a failing run is recorded, not fatal."""
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in runners}
    for _ in range(repeat):
        for name, run in runners.items():
            try:
                out[name].append(measure(name, clients, run, server))
            except Exception as exc:  # one tool failing is a finding
                log(f"{name} c={clients} FAILED: {exc}")
                out[name].append({"tool": name, "clients": clients, "error": str(exc)})
    return out


def _med(rows: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def _load(rows: list[dict[str, Any]]) -> str:
    """The 1-minute load averages seen before and after the runs of one row, as 'lo–hi'."""
    seen = [v for r in rows for v in r.get("loadavg_1m", [])]
    return f"{min(seen):.1f}–{max(seen):.1f}" if seen else "-"


def _cpu_us_per_request(rows: list[dict[str, Any]], duration: int) -> float | None:
    """The tool's CPU per answered request (µs): what one request costs the load generator."""
    vals = [
        1e6 * r["cpu_pct"] / 100 * duration / (r["rps"] * duration)
        for r in rows
        if r.get("rps") and r.get("cpu_pct") is not None
    ]
    return statistics.median(vals) if vals else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _engine_us(run: dict[str, Any]) -> float | None:
    """perftui's engine process CPU per answered request (µs): its CPU share (the busiest of the
    run's processes) over the phase's rps. Unlike rps it does not fall when the engine waits for
    a core, so it shows what a feature costs per request on a loaded machine."""
    per_process = run.get("cpu_pct_per_process")
    return 1e4 * max(per_process.values()) / run["rps"] if per_process and run.get("rps") else None


def _engine_us_per_request(rows: list[dict[str, Any]]) -> float | None:
    vals = [v for v in map(_engine_us, rows) if v is not None]
    return statistics.median(vals) if vals else None


def _paired(
    rows: list[dict[str, Any]],
    ref: list[dict[str, Any]],
    value: Callable[[dict[str, Any]], float | None] = lambda run: run.get("rps"),
) -> str:
    """`value` (rps by default) of each round over the reference's in the same round: 'median
    (lo–hi)'. On a loaded machine this is steadier than a ratio of medians of different minutes."""
    pairs = [(value(a), value(b)) for a, b in zip(rows, ref, strict=False)]
    vals = sorted(x / y for x, y in pairs if x is not None and y)
    if not vals:
        return "-"
    return f"{statistics.median(vals):.2f} ({vals[0]:.2f}–{vals[-1]:.2f})"


def _ceiling_table(
    title: str,
    runs: dict[str, list[dict[str, Any]]],
    tools: tuple[str, ...],
    variants: tuple[str, str],
    duration: int,
) -> None:
    """Medians per tool and variant (`hey https`), against hey's and wrk's rps in the same
    variant, and against the tool's own first variant (what the second costs it)."""
    first, second = variants
    rows = []
    for tool in tools:
        for variant in variants:
            rr = runs[f"{tool} {variant}"]
            rps = _med(rr, "rps")
            wrk = runs.get(f"wrk {variant}")
            rows.append(
                [
                    tool,
                    variant,
                    rps,
                    _ratio(rps, _med(runs[f"hey {variant}"], "rps")),
                    _ratio(rps, _med(wrk, "rps")) if wrk else None,
                    _ratio(rps, _med(runs[f"{tool} {first}"], "rps")),
                    _paired(rr, runs[f"{tool} {first}"]) if variant == second else "",
                    _med(rr, "p50_ms"),
                    _med(rr, "p99_ms"),
                    _med(rr, "cpu_pct"),
                    _cpu_us_per_request(rr, duration),
                    _engine_us_per_request(rr),
                    _paired(rr, runs[f"{tool} {first}"], _engine_us)
                    if variant == second and tool == "perftui"
                    else "",
                    _med(rr, "server_cpu_pct"),
                    _med(rr, "other_cpu_pct"),
                    _med(rr, "errors"),
                    _load(rr),
                ]
            )
    print(f"\n### {title}\n")
    print(
        table(
            ["tool", "variant", "rps", "rps/hey", "rps/wrk", f"{second}/{first}",
             f"{second}/{first} by round", "p50 ms", "p99 ms", "tool CPU %", "CPU µs/req",
             "engine µs/req", "engine µs by round", "server CPU %", "other CPU %", "errors",
             "load 1m"],
            rows,
        )
    )  # fmt: skip


def _at_least(
    checks: list[dict[str, Any]],
    name: str,
    runs: list[dict[str, Any]],
    ref: list[dict[str, Any]],
    share: float = 0.3,
) -> None:
    """perftui's median rps is at least `share` of the reference's (issue 2's ceiling target)."""
    got, want = _med(runs, "rps"), _med(ref, "rps")
    ok = got is not None and want is not None and got >= share * want
    _check(checks, name, _ratio(got, want), ok)


def _fidelity_rounds(
    args: argparse.Namespace,
    counts: list[int],
    tls: Path | None,
    wrk_script: Path | None = None,
    perftui_extra: list[str] | None = None,
    hey_extra: list[str] | None = None,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """wrk, perftui and hey against the delay server (over TLS with `tls`), per client count."""
    out = {}
    d = args.duration
    for clients in counts:
        port = free_port()
        budget = int(args.repeat * 3 * (d + 40 + args.quiet_wait) + 60)
        with DelayServer(port, args.delay_ms, budget, tls=tls) as srv:
            host = f"https://{LOOPBACK}" if tls else LOOPBACK
            runners = {
                "wrk": partial(run_wrk, srv.url, clients, d, script=wrk_script),
                "perftui": partial(run_perftui, port, "/delay", clients, d, host=host,
                                   extra=perftui_extra),
                "hey": partial(run_hey, srv.url, clients, d, extra=hey_extra),
            }  # fmt: skip
            out[str(clients)] = _rounds(runners, srv, clients, args.repeat)
    return out


def _check(checks: list[dict[str, Any]], name: str, value: float | None, ok: bool) -> None:
    checks.append({"check": name, "value": value, "pass": bool(ok)})


# --------------------------------------------------------------------------- https


def run_https(args: argparse.Namespace, tls: Path) -> dict[str, Any]:
    d, c = args.duration, args.clients
    port, tls_port = free_port(), free_port()
    budget = int(args.repeat * 6 * (d + 40 + args.quiet_wait) + 60)
    url_http = f"http://{LOOPBACK}:{port}/{FILE_NAME}"
    url_tls = f"https://{LOOPBACK}:{tls_port}/{FILE_NAME}"
    path = f"/{FILE_NAME}"
    with Nginx(port, budget, tls_port=tls_port, tls=tls) as ng:
        log(f"nginx {url_http} and {url_tls} (stops within {budget} s)")
        runners = {
            "hey http": partial(run_hey, url_http, c, d),
            "hey https": partial(run_hey, url_tls, c, d),
            "wrk http": partial(run_wrk, url_http, c, d),
            "wrk https": partial(run_wrk, url_tls, c, d),
            "perftui http": partial(run_perftui, port, path, c, d),
            "perftui https": partial(run_perftui, tls_port, path, c, d,
                                     host=f"https://{LOOPBACK}", extra=_insecure(),
                                     keep_report=True),
        }  # fmt: skip
        ceiling = _rounds(runners, ng, c, args.repeat)
    handshakes = [r.pop("report", {}).get("tls_handshake_ms") for r in ceiling["perftui https"]]
    fidelity = _fidelity_rounds(args, args.fid_clients, tls, perftui_extra=_insecure())
    return {"ceiling": ceiling, "fidelity": fidelity, "handshakes": handshakes}


def show_https(args: argparse.Namespace, res: dict[str, Any], checks: list[dict[str, Any]]) -> None:
    d, c, ceiling = args.duration, args.clients, res["ceiling"]
    _ceiling_table(
        f"HTTPS ceiling: nginx 1 KB, {c} clients, {d} s, median of {args.repeat}",
        ceiling, ("hey", "wrk", "perftui"), ("http", "https"), d,
    )  # fmt: skip
    print(f"\nperftui's TLS handshakes (ms, per phase): {res['handshakes']}")
    _at_least(checks, "https: perftui rps / hey rps >= 0.3", ceiling["perftui https"],
              ceiling["hey https"])  # fmt: skip
    _fidelity_table("HTTPS fidelity: delay server over TLS", res["fidelity"], args, checks, "https")


def _fidelity_table(
    title: str,
    by_clients: dict[str, dict[str, list[dict[str, Any]]]],
    args: argparse.Namespace,
    checks: list[dict[str, Any]],
    label: str,
    p99: bool = True,
) -> None:
    rows = []
    for clients, tools in by_clients.items():
        ref = tools["wrk"]
        for tool, runs in tools.items():
            p50, p99_ms = _med(runs, "p50_ms"), _med(runs, "p99_ms")
            rows.append(
                [
                    clients,
                    tool,
                    p50,
                    p99_ms,
                    _med(runs, "rps"),
                    _ratio(p50, _med(ref, "p50_ms")),
                    _ratio(p99_ms, _med(ref, "p99_ms")),
                    _ratio(p50, args.delay_ms),
                    _med(runs, "cpu_pct"),
                    _med(runs, "other_cpu_pct"),
                    _load(runs),
                ]
            )
        r50 = _ratio(_med(tools["perftui"], "p50_ms"), _med(ref, "p50_ms"))
        _check(checks, f"{label} c={clients}: perftui p50 / wrk p50 within 5 %", r50,
               r50 is not None and abs(r50 - 1) <= 0.05)  # fmt: skip
        if p99:
            r99 = _ratio(_med(tools["perftui"], "p99_ms"), _med(ref, "p99_ms"))
            _check(checks, f"{label} c={clients}: perftui p99 / wrk p99 within 15 %", r99,
                   r99 is not None and abs(r99 - 1) <= 0.15)  # fmt: skip
    print(f"\n### {title} ({args.delay_ms:g} ms), {args.duration} s, median of {args.repeat}\n")
    print(
        table(
            ["clients", "tool", "p50 ms", "p99 ms", "rps", "p50/wrk", "p99/wrk", "p50/delay",
             "tool CPU %", "other CPU %", "load 1m"],
            rows,
        )
    )  # fmt: skip


# --------------------------------------------------------------------------- post


def run_post(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    d, c = args.duration, args.clients
    body = tmp / "body.json"
    body.write_bytes(BODY)
    lua = tmp / "post.lua"
    lua.write_text(WRK_POST.format(body=body))
    port = free_port()
    url = f"http://{LOOPBACK}:{port}/post"
    budget = int(args.repeat * 4 * (d + 40 + args.quiet_wait) + 60)
    with Nginx(port, budget) as ng:
        runners = {
            "hey GET": partial(run_hey, url, c, d),
            "hey POST": partial(run_hey, url, c, d, extra=_hey_post(body)),
            "perftui GET": partial(run_perftui, port, "/post", c, d),
            "perftui POST": partial(run_perftui, port, "/post", c, d, extra=_post_flags(body)),
        }
        ceiling = _rounds(runners, ng, c, args.repeat)
    fidelity = _fidelity_rounds(args, args.post_clients, None, lua, _post_flags(body),
                                _hey_post(body))  # fmt: skip
    return {"ceiling": ceiling, "fidelity": fidelity}


def show_post(args: argparse.Namespace, res: dict[str, Any], checks: list[dict[str, Any]]) -> None:
    d, c, ceiling = args.duration, args.clients, res["ceiling"]
    _ceiling_table(
        f"One-off POST ceiling: nginx /post, {c} clients, {d} s, median of {args.repeat}",
        ceiling, ("hey", "perftui"), ("GET", "POST"), d,
    )  # fmt: skip
    _at_least(checks, "post: perftui POST rps / hey POST rps >= 0.3", ceiling["perftui POST"],
              ceiling["hey POST"])  # fmt: skip
    _fidelity_table(
        "One-off POST fidelity: delay server", res["fidelity"], args, checks, "post", p99=False
    )


# --------------------------------------------------------------------------- checks


def run_checks(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    d, c = args.duration, args.clients
    plain = tmp / "status_plain.toml"
    plain.write_text(f'[[requests]]\npath = "/{JSON_NAME}"\n')
    checked = tmp / "status_checked.toml"
    checked.write_text(f'[[requests]]\npath = "/{JSON_NAME}"\n{CHECK}\n')
    port = free_port()
    url = f"http://{LOOPBACK}:{port}/{JSON_NAME}"
    budget = int(args.repeat * 3 * (d + 40 + args.quiet_wait) + 60)

    def perftui(profile: Path) -> dict[str, Any]:
        res = run_perftui(port, f"/{JSON_NAME}", c, d, extra=["--profiles", str(profile)],
                          keep_report=True)  # fmt: skip
        kinds = res.pop("report").get("errors_by_kind") or {}
        res["check_errors"] = kinds.get("check", 0)
        return res

    with Nginx(port, budget) as ng:
        runners = {
            "hey": partial(run_hey, url, c, d),
            "perftui, no check": partial(perftui, plain),
            "perftui, check": partial(perftui, checked),
        }
        return {"runs": _rounds(runners, ng, c, args.repeat)}


def show_checks(
    args: argparse.Namespace, res: dict[str, Any], checks: list[dict[str, Any]]
) -> None:
    d, c, runs = args.duration, args.clients, res["runs"]
    hey_rps = _med(runs["hey"], "rps")
    base_runs = runs["perftui, no check"]
    rows = [
        [
            name,
            _med(rr, "rps"),
            _ratio(_med(rr, "rps"), hey_rps),
            _paired(rr, runs["hey"]),
            _paired(rr, base_runs) if name == "perftui, check" else "",
            _med(rr, "p50_ms"),
            _med(rr, "p99_ms"),
            _med(rr, "cpu_pct"),
            _cpu_us_per_request(rr, d),
            _engine_us_per_request(rr),
            _paired(rr, base_runs, _engine_us) if name == "perftui, check" else "",
            _med(rr, "errors"),
            _med(rr, "other_cpu_pct"),
            _load(rr),
        ]
        for name, rr in runs.items()
    ]
    print(
        f"\n### Response checks: nginx /{JSON_NAME}, {c} clients, {d} s, median of {args.repeat}\n"
    )
    print(f"check: `{CHECK}`\n")
    print(
        table(
            ["tool", "rps", "rps/hey", "rps/hey by round", "vs no check by round", "p50 ms",
             "p99 ms", "tool CPU %", "CPU µs/req", "engine µs/req", "engine µs by round",
             "errors", "other CPU %", "load 1m"],
            rows,
        )
    )  # fmt: skip
    failed = sum(r.get("check_errors", 0) or 0 for r in runs["perftui, check"])
    errors = sum(r.get("errors", 0) or 0 for r in runs["perftui, check"])
    _check(checks, "checks: no request fails its check", failed, failed == 0 and errors == 0)
    cost = _ratio(_engine_us_per_request(runs["perftui, check"]), _engine_us_per_request(base_runs))
    _check(checks, "checks: engine CPU per request with checks / without <= 1.1", cost,
           cost is not None and cost <= 1.1)  # fmt: skip


# --------------------------------------------------------------------------- ramp


def parse_stages(text: str) -> list[tuple[float, float]]:
    """'4s:2000,8s:16000,4s:0' → [(4, 2000), (8, 16000), (4, 0)] (seconds, target)."""
    out = []
    for part in text.split(","):
        dur, target = part.split(":")
        out.append((float(dur.strip().removesuffix("s")), float(target)))
    return out


def ramp_target(stages: list[tuple[float, float]], t: float) -> float:
    """The ramp's target at `t` s: linear from 0 to each stage's target in turn, 0 after."""
    start, level = 0.0, 0.0
    for dur, target in stages:
        if t <= start + dur:
            return level + (target - level) * (t - start) / dur
        start, level = start + dur, target
    return 0.0


def mean_target(stages: list[tuple[float, float]], a: float, b: float, steps: int = 1000) -> float:
    """The ramp's mean target over [a, b] (the midpoint rule: the truth a window is held to)."""
    if b <= a:
        return ramp_target(stages, a)
    h = (b - a) / steps
    return sum(ramp_target(stages, a + (i + 0.5) * h) for i in range(steps)) / steps


def _ramp_windows(stages: list[tuple[float, float]], report: dict[str, Any]) -> list[list[Any]]:
    timeline = report["timeline"]
    width = timeline.get("window_s", 1)
    theirs = (report.get("ramp") or {}).get("target") or []
    rows, previous = [], 0.0
    for i, (end, rps) in enumerate(zip(timeline["t_s"], timeline["rps"], strict=True)):
        start = previous if end - previous < 2 * width else end - width
        truth = mean_target(stages, start, end)
        err = 100 * (rps - truth) / truth if truth > 0 else None
        rows.append([round(start, 2), round(end, 2), truth, theirs[i] if i < len(theirs) else None,
                     rps, err])  # fmt: skip
        previous = end
    return rows


def run_ramp(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, stages_text, clients in (
        ("nginx", args.ramp_nginx, args.clients),
        ("delay", args.ramp_delay, 64),
    ):
        stages = parse_stages(stages_text)
        duration = int(sum(s for s, _ in stages))
        port = free_port()
        budget = int(args.repeat * (duration + 40 + args.quiet_wait) + 60)
        server = (
            Nginx(port, budget) if name == "nginx" else DelayServer(port, args.delay_ms, budget)
        )
        path = f"/{FILE_NAME}" if name == "nginx" else "/delay"
        runs = []
        with server as srv:
            for _ in range(args.repeat):
                extra = ["--stages", stages_text, "--stages-unit", "rps"]
                run = partial(run_perftui, port, path, clients, duration, extra=extra,
                              phase="long", keep_report=True)  # fmt: skip
                res = measure(f"perftui ramp {name}", clients, run, srv)
                report = res.pop("report")
                res["windows"] = _ramp_windows(stages, report)
                res.update(late=report.get("late"), client_bound=report.get("client_bound"))
                runs.append(res)
        out[name] = {"stages": stages_text, "clients": clients, "runs": runs}
    return out


def show_ramp(args: argparse.Namespace, res: dict[str, Any], checks: list[dict[str, Any]]) -> None:
    for name, ramp in res.items():
        stages = parse_stages(ramp["stages"])
        duration = sum(s for s, _ in stages)
        peak = max(t for _, t in stages)
        label = "nginx 1 KB" if name == "nginx" else f"delay server {args.delay_ms:g} ms"
        for n, run in enumerate(ramp["runs"]):
            rows = run["windows"]
            held = [r for r in rows if r[2] >= 0.1 * peak]
            worst = max((abs(r[5]) for r in held), default=None)
            print(
                f"\n### Ramp `--stages {ramp['stages']}` against {label}, {ramp['clients']} "
                f"connections, run {n + 1} of {len(ramp['runs'])} (load 1m {run['loadavg_1m']}, "
                f"client_bound {run.get('client_bound')}, late {run.get('late')})\n"
            )
            print(
                table(
                    ["from s", "to s", "target (truth)", "target (perftui)", "achieved rps",
                     "error %"],
                    rows,
                )
            )  # fmt: skip
            sent = mean_target(stages, 0, duration, 10_000) * duration
            got = run.get("requests") or 0
            shown = "-" if worst is None else f"{worst:.2f}"
            print(
                f"\nrequests {got} of {sent:,.0f} the ramp sends "
                f"({100 * (got - sent) / sent:+.2f} %); worst window at ≥ 10 % of the peak: "
                f"{shown} %"
            )
            _check(checks, f"ramp {name} run {n + 1}: every window within 5 % of its target",
                   worst, worst is not None and worst <= 5.0)  # fmt: skip


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma list (default all)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    ap.add_argument("--repeat", type=int, default=1, help="rounds; medians are compared")
    ap.add_argument("--clients", type=int, default=32, help="ceiling clients (default 32)")
    ap.add_argument("--fid-clients", default="8,64", help="https fidelity clients (8,64)")
    ap.add_argument("--post-clients", default="8", help="POST fidelity clients (8)")
    ap.add_argument("--delay-ms", type=float, default=20.0)
    ap.add_argument("--ramp-nginx", default="5s:2000,10s:16000,5s:0", help="stages vs nginx")
    ap.add_argument("--ramp-delay", default="5s:500,10s:2000,5s:0", help="stages vs delay server")
    ap.add_argument("--report", type=Path, help="print the tables of a saved reach_*.json again")
    add_quiet_options(ap)
    args = ap.parse_args(argv)
    if args.report:
        saved = json.loads(args.report.read_text())
        args = argparse.Namespace(**saved["args"])
        show(args, saved["results"])
        return 0
    apply_quiet_options(args)
    args.fid_clients = [int(x) for x in args.fid_clients.split(",")]
    args.post_clients = [int(x) for x in args.post_clients.split(",")]
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="perftui-bench-reach-") as name:
        tmp = Path(name)
        tmp.chmod(0o755)
        tls = self_signed(tmp / "tls")
        for section in sections:
            log(f"section {section} …")
            if section == "https":
                results[section] = run_https(args, tls)
            elif section == "post":
                results[section] = run_post(args, tmp)
            elif section == "checks":
                results[section] = run_checks(args, tmp)
            else:
                results[section] = run_ramp(args)
    checks = show(args, results)
    path = write_results(
        "reach",
        {"machine": machine_info(), "args": vars(args), "results": results, "checks": checks},
    )
    print(f"\nraw results: {path}")
    return 0 if all(c["pass"] for c in checks) else 1


def show(args: argparse.Namespace, results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every section's tables and the targets, from the runs (live or saved)."""
    checks: list[dict[str, Any]] = []
    shows = {"https": show_https, "post": show_post, "checks": show_checks, "ramp": show_ramp}
    for section, res in results.items():
        shows[section](args, res, checks)
    print("\n### Targets\n")
    print(checks_table(checks))
    return checks


if __name__ == "__main__":
    sys.exit(main())
