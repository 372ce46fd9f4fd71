"""The headless view of the event stream: progress on stderr, heartbeats and a summary on stdout.

Heartbeat lines start with `heartbeat phase_running elapsed=…s budget=…s`, as the legacy
runner's did, and go to stdout as its did; with `run --json` stdout holds only the JSON summary
and every line for people goes to stderr.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from perftui.config import EXIT_COULD_NOT_RUN, EXIT_MEANINGS
from perftui.engine import events as ev
from perftui.engine import notes
from perftui.engine.schema import JsonObject


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


class Printer:
    """Prints one heartbeat line per `heartbeat_ms` of phase time, plus every notable event."""

    def __init__(
        self,
        heartbeat_ms: int,
        out: TextIO | None = None,
        err: TextIO | None = None,
        json_mode: bool = False,
    ) -> None:
        self.period = heartbeat_ms / 1000
        self.err = err or sys.stderr
        # With --json, stdout is kept for the JSON summary alone.
        self.out = self.err if json_mode else (out or sys.stdout)
        self._next_beat = self.period
        self._runs = 1
        self._last = (0.0, 0)  # (elapsed, requests) at the previous line: rps over the line

    def _say(self, text: str) -> None:
        print(f"[perftui] {text}", file=self.err, flush=True)

    def handle(self, event: ev.Event) -> None:
        match event:
            case ev.RunStarted():
                self._runs = event.runs
                self._say(
                    f"target {event.target}: profiles {', '.join(event.profiles)} × "
                    f"{event.runs} run(s), {event.total_phases} phase(s)"
                )
            case ev.PhaseStarted():
                self._phase_started(event)
            case ev.Heartbeat() if event.elapsed + 0.02 >= self._next_beat:  # timers may wake early
                self._heartbeat(event)
            case ev.PhaseFinished():
                self._phase_finished(event)
            case ev.Stall():
                self._say(
                    f"  stall in {event.profile}/{event.phase} at {event.at_s:.1f} s: no answer "
                    f"for {event.duration_ms:.0f} ms with requests outstanding"
                )
            case ev.Log():
                self._say(
                    f"{event.level}: {event.message}" if event.level != "info" else event.message
                )
            case ev.Telemetry():
                pass
            case ev.RunFinished():
                self.summary(event)

    def _phase_started(self, event: ev.PhaseStarted) -> None:
        self._next_beat = self.period
        self._last = (0.0, 0)
        load = (
            f"{event.rate:g} req/s over at most {event.clients} connections"
            if event.rate
            else f"{event.clients} clients"
        )
        self._say(
            f"[{event.ordinal}/{event.total_phases}] {event.profile} run "
            f"{event.run_index}/{self._runs} {event.phase}: {load}, "
            f"{event.duration:g} s (watchdog {event.budget_s:g} s)"
        )

    def _heartbeat(self, event: ev.Heartbeat) -> None:
        """The legacy heartbeat line (one per period, whatever the engine's rate)."""
        self._next_beat += self.period * max(
            1, int((event.elapsed - self._next_beat) / self.period) + 1
        )
        span = event.elapsed - self._last[0]
        rps = (event.requests - self._last[1]) / span if span > 0 else 0.0
        self._last = (event.elapsed, event.requests)
        print(
            f"heartbeat phase_running elapsed={event.elapsed:.1f}s "
            f"budget={event.budget_s:g}s {event.profile}/{event.phase} "
            f"run={event.run_index}/{self._runs} duration={event.duration:g}s "
            f"req={event.requests} ok={event.ok} err={event.errors} "
            f"rps={rps:.1f} p50={_ms(event.p50_ms)} p95={_ms(event.p95_ms)} "
            f"p99={_ms(event.p99_ms)}ms"
            # perftui's own, after the legacy fields: open-loop target, stalls, self-check
            + (f" target_rps={event.target_rps:g}" if event.target_rps else "")
            + (f" stalls={event.stalls}" if event.stalls else "")
            + (" client_bound=yes" if event.client_bound else ""),
            file=self.out,
            flush=True,
        )

    def _phase_finished(self, event: ev.PhaseFinished) -> None:
        rep = event.report
        verdict = "PASS" if event.passed else "FAIL: " + "; ".join(event.fail_reasons)
        self._say(
            f"  done {event.profile}/{event.phase}: {rep['requests_total']} req, "
            f"rps_ok={rep['rps_ok']:.1f} p50={_ms(rep['p50_ms'])} "
            f"p95={_ms(rep['p95_ms'])} p99={_ms(rep['p99_ms'])} ms "
            f"err={rep['error_rate']:.2f}% → {verdict}"
        )
        if rep.get("mode") == "open":
            self._say(
                f"    open loop: {rep['achieved_rps']:g} of {rep['target_rps']:g} req/s, "
                f"{rep['late']} late, max lag {rep['max_lag_ms']:g} ms"
            )
        for path, failed in rep.get("checks_failed", {}).items():
            self._say(f"    check failed {failed['count']}× on {path}: {failed['first']}")
        if co := notes.co_note(rep):
            self._say(f"    {co}")

    def summary(self, event: ev.RunFinished) -> None:
        payload = event.payload or {}
        print(f"perftui: run {event.run_id or '-'} {event.status}", file=self.out)
        for key, agg in payload.get("aggregated", {}).items():
            med = {
                m: (agg.get(m) or {}).get("median")
                for m in ("rps_ok", "p50_ms", "p95_ms", "p99_ms", "error_rate")
            }
            print(
                f"  {key:28s} pass {agg['pass_rate']:.0%}  rps_ok {med['rps_ok'] or 0:9.1f}  "
                f"p50 {_ms(med['p50_ms']):>7}  p95 {_ms(med['p95_ms']):>7}  "
                f"p99 {_ms(med['p99_ms']):>7} ms  err {med['error_rate'] or 0:.2f}%",
                file=self.out,
            )
        if event.hard_stop_reason:
            print(f"  hard stop: {event.hard_stop_reason}", file=self.out)
        for name, path in event.files.items():
            print(f"  {name}: {path}", file=self.out)
        verdict = "PASS" if event.overall_pass else "FAIL"
        if event.status == "finished" and event.exit_code == EXIT_COULD_NOT_RUN:
            verdict = f"gates {verdict}, but the results could not be stored"
        print(f"  overall: {verdict} (exit {event.exit_code})", file=self.out, flush=True)


def json_summary(event: ev.RunFinished, exit_code: int, **extra: Any) -> JsonObject:
    """`perftui run --json`: what a script needs from a run, without reading its files."""
    payload = event.payload or {}
    phases = {}
    for key, agg in payload.get("aggregated", {}).items():
        phases[key] = {"sample_count": agg.get("sample_count"), "pass_rate": agg.get("pass_rate")}
        for metric in ("rps_ok", "p50_ms", "p95_ms", "p99_ms", "p95_tail_ms", "error_rate"):
            phases[key][metric] = (agg.get(metric) or {}).get("median")
    fail_reasons = [
        {
            "profile": result.get("profile"),
            "run_index": run.get("run_index"),
            "phase": result.get("phase"),
            "fail_reasons": result.get("fail_reasons"),
        }
        for run in payload.get("raw_runs", [])
        for result in run.get("results", [])
        if not result.get("pass")
    ]
    return {
        "run_id": event.run_id,
        "status": event.status,
        "overall_pass": event.overall_pass,
        "exit_code": exit_code,
        "exit_meaning": EXIT_MEANINGS.get(exit_code, "unknown"),
        "target": payload.get("target"),
        "profiles": payload.get("profiles"),
        "runs_per_profile": payload.get("runs_per_profile"),
        "phases": phases,  # medians over the runs, per `profile:phase`
        "fail_reasons": fail_reasons,
        "hard_stop_reason": event.hard_stop_reason,
        "files": event.files,
        **extra,
    }
