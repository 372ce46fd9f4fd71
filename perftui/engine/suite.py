"""The suite: profiles × runs × phases, with the legacy runner's guards, gates and files.

It runs inside the engine process (see `perftui.engine.runner`) and reports everything it does as
events through `emit`; it never prints. The same code serves the headless CLI and the TUI.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from perftui.config import (
    EXIT_COULD_NOT_RUN,
    EXIT_GATE_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    PHASES,
    PhaseSettings,
    RunConfig,
)
from perftui.engine import device, record
from perftui.engine.events import (
    LATENCY_BUCKETS_MS,
    Event,
    Heartbeat,
    Log,
    PathCounts,
    PhaseFinished,
    PhaseStarted,
    RunFinished,
    RunStarted,
    RunStatus,
    Stall,
    Telemetry,
)
from perftui.engine.gates import (
    HEAP_SLOPE_MIN_SAMPLES,
    RunningSlope,
    evaluate,
    heap_slope_per_hour,
)
from perftui.engine.hdr import counts_at_or_below, quick_percentiles_ms
from perftui.engine.load import (
    PhaseOutcome,
    checks_report,
    handshake_report,
    ramp_report,
    run_phase,
)
from perftui.engine.metrics import PhaseRecorder
from perftui.engine.notes import CLIENT_BOUND_NOTE
from perftui.engine.pacing import Ramp
from perftui.engine.schema import JsonObject, PhaseReport, PhaseResult, RawRun, RunRecord
from perftui.history import files
from perftui.profiles import Profile

BUCKETS_US = [ms * 1000 for ms in LATENCY_BUCKETS_MS]


def latency_buckets(rec: PhaseRecorder) -> JsonObject:
    """The heartbeat's histogram for a metrics port (~0.1 ms; only when one is asked for)."""
    return {
        "latency_le": [
            *counts_at_or_below(rec.overall, BUCKETS_US, rec.scratch),
            rec.overall.get_total_count(),  # +Inf
        ],
        "latency_sum_ms": sum(s.moments.total for s in rec.paths.values()) / 1000,
    }


class Suite:
    def __init__(
        self,
        config: RunConfig,
        emit: Callable[[Event], None],
        stop: asyncio.Event,
        may_write: Callable[[], bool] = lambda: True,
        run_id: str | None = None,
    ) -> None:
        """`may_write` says whether the history dir is still ours (see `runner`); `run_id` is
        given when a detached host named the run's files before it started."""
        self.tls: ssl.SSLContext | None = None  # the load's and the probe's, for https
        self.config = config
        self.emit = emit
        self.stop = stop
        self.may_write = may_write
        self.started = datetime.now(UTC)
        self.run_id = run_id or record.new_run_id(self.started)
        self.raw_runs: list[RawRun] = []
        self.hard_stop_reason: str | None = None
        self.meta = record.metadata()
        self.plan = [
            (profile, run_index, phase)
            for profile in config.profiles
            for run_index in range(1, config.runs + 1)
            for phase in PHASES
            if config.phase_settings(profile, phase).duration > 0
        ]
        self.previous = files.read_json(config.history_dir / files.LATEST_NAME)

    def log(self, level: str, message: str) -> None:
        self.emit(Log(level, message))

    def _record(self, status: str, finished: datetime | None) -> RunRecord:
        return record.build(
            self.config,
            run_id=self.run_id,
            started=self.started,
            finished=finished,
            status=status,
            raw_runs=self.raw_runs,
            hard_stop_reason=self.hard_stop_reason,
            previous=self.previous,
            meta=self.meta,
        )

    def _write_partial(self, payload: RunRecord | None = None) -> str | None:
        """`latest.partial.json`: the run so far (after each phase) or as stopped (at the end)."""
        path = self.config.history_dir / files.PARTIAL_NAME
        if not self.may_write():
            self.log("warning", f"{path} not written: another run holds the history dir now")
            return None
        try:
            files.atomic_write_json(path, payload or self._record("running", None))
        except OSError as exc:
            self.log("error", f"could not write {path}: {exc}")
            return None
        return str(path)

    async def run(self) -> RunFinished:
        cfg = self.config
        phase_names = [p for p in PHASES if any(step[2] == p for step in self.plan)]
        self.emit(
            RunStarted(
                target=cfg.target,
                profiles=[p.name for p in cfg.profiles],
                runs=cfg.runs,
                phases=phase_names,
                total_phases=len(self.plan),
                started_at=self.started.isoformat(timespec="seconds"),
                settings=cfg.settings_dict(),
            )
        )
        suite_start = time.monotonic()
        current_run: RawRun | None = None
        unreachable_at_start = False
        self.tls = cfg.tls.context() if cfg.scheme == "https" else None
        async with device.client(cfg.base_url, cfg.timeout, self.tls) as http:
            for ordinal, (profile, run_index, phase) in enumerate(self.plan, start=1):
                if self.stop.is_set():
                    break
                if cfg.hard_timeout_s and time.monotonic() - suite_start > cfg.hard_timeout_s:
                    self.hard_stop_reason = (
                        f"hard timeout of {cfg.hard_timeout_s:g} s reached before "
                        f"{profile.name} run {run_index} {phase}"
                    )
                    break
                if current_run is None or (current_run["profile"], current_run["run_index"]) != (
                    profile.name,
                    run_index,
                ):
                    if current_run is not None and cfg.between_runs_sleep_ms:
                        await self._sleep(cfg.between_runs_sleep_ms / 1000)
                    current_run = {"profile": profile.name, "run_index": run_index, "results": []}
                    self.raw_runs.append(current_run)
                healthy, why, tries = await device.probe(
                    http, cfg.probe_path, cfg.probe_retries, self.log, self.stop
                )
                if self.stop.is_set():
                    break
                if not healthy:
                    self.hard_stop_reason = (
                        f"health probe {cfg.probe_path} failed before {profile.name} run "
                        f"{run_index} {phase} {_attempts(tries, cfg.probe_retries)}: {why}"
                    )
                    unreachable_at_start = ordinal == 1
                    break
                result = await self._phase(http, profile, run_index, phase, ordinal)
                current_run["results"].append(result)
                self._write_partial()
        if self.raw_runs and not self.raw_runs[-1]["results"]:
            self.raw_runs.pop()
        return self._finish(unreachable_at_start)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def _telemetry(
        self, http: httpx.AsyncClient, path: str
    ) -> tuple[JsonObject | None, str | None]:
        cfg = self.config
        return await device.fetch_json(http, path, cfg.metrics_retries, cfg.metrics_retry_delay_ms)

    async def _phase(
        self, http: httpx.AsyncClient, profile: Profile, run_index: int, phase: str, ordinal: int
    ) -> PhaseResult:
        """One phase: the device before, the load (free heap polled meanwhile when asked), the
        settle pause, the device after, the report and its gates."""
        cfg = self.config
        step = (profile.name, run_index, phase)
        settings = cfg.phase_settings(profile, phase)
        budget = cfg.watchdog_budget(settings.duration)
        stats_ok, mem_before = await self._telemetry_before(http, step)
        self.emit(
            PhaseStarted(
                *step,
                settings.clients,
                settings.duration,
                budget,
                ordinal,
                len(self.plan),
                settings.rate,
            )
        )
        heap_fit = RunningSlope()  # free heap over s since the phase began, in constant memory
        polled = mem_before is not None and cfg.telemetry_interval_s > 0
        outcome = await self._load(http, profile, step, settings, budget, heap_fit, polled)
        if cfg.post_phase_settle_ms and not self.stop.is_set():
            await self._sleep(cfg.post_phase_settle_ms / 1000)
        where = f"{profile.name} {phase}"
        stats_after, mem_after = await self._telemetry_after(
            http, where, stats_ok, mem_before is not None
        )
        self.emit(Telemetry(*step, "after", mem_after, stats_after))
        device_keys = _device_keys(mem_before, mem_after, stats_after)
        report = _phase_report(outcome, settings, budget, device_keys)
        reasons = self._judge(report, outcome.timed_out, where, heap_fit, polled)
        self.emit(PhaseFinished(*step, not reasons, reasons, report, ordinal, len(self.plan)))
        return {
            "profile": profile.name,
            "phase": phase,
            "pass": not reasons,
            "fail_reasons": reasons,
            "report": report,
        }

    async def _telemetry_before(
        self, http: httpx.AsyncClient, step: tuple[str, int, str]
    ) -> tuple[bool, JsonObject | None]:
        """The device's server stats reset and its memory read before a phase: (the stats
        answered, the memory)."""
        _, why_stats = await self._telemetry(http, "/debug/server-stats?reset=1")
        mem_before, why_mem = await self._telemetry(http, "/debug/memory-stats")
        if why_mem:
            self.log("info", f"device memory stats unavailable ({why_mem}); heap gates skipped")
        self.emit(Telemetry(*step, "before", mem_before, None))
        return why_stats is None, mem_before

    async def _load(
        self,
        http: httpx.AsyncClient,
        profile: Profile,
        step: tuple[str, int, str],
        settings: PhaseSettings,
        budget: float,
        heap_fit: RunningSlope,
        polled: bool,
    ) -> PhaseOutcome:
        """The phase's load with its heartbeats and stalls, and (`polled`) the free heap read
        meanwhile into `heap_fit`; what went wrong on the way is logged."""
        cfg = self.config
        live: list[PhaseRecorder] = []  # the phase's recorder, once its first snapshot names it
        poller = None
        if polled:
            poller = asyncio.create_task(self._poll_memory(http, *step, live, heap_fit))
        beats = _Beats(self, *step, settings, budget, live)
        outcome = await run_phase(
            cfg.base_url,
            profile,
            settings.clients,
            settings.duration,
            cfg.timeout,
            budget,
            self.stop,
            beats.on_snapshot,
            cfg.snapshot_interval_s,
            settings.rate,
            cfg.arrivals,
            self.tls,
            settings.stages,
        )
        if poller is not None:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
        where = f"{profile.name} {step[2]}"
        if outcome.timed_out:
            self.log("error", f"watchdog: {where} exceeded its {budget:g} s budget")
        beats.emit_stalls(outcome.recorder)  # stalls found after the last heartbeat
        for problem in outcome.snapshot_errors:
            self.log("error", f"heartbeats of {where} failed: {problem}")
        return outcome

    async def _telemetry_after(
        self, http: httpx.AsyncClient, where: str, stats: bool, memory: bool
    ) -> tuple[JsonObject | None, JsonObject | None]:
        """The device's server stats and memory after a phase (those it had before)."""
        stats_after = mem_after = None
        if self.stop.is_set():
            # A stop must not wait on telemetry retries: a grace period may be all that is left.
            self.log("info", "stopping: device stats after the phase not read")
            return None, None
        if stats:
            stats_after, _ = await self._telemetry(http, "/debug/server-stats")
        if memory:
            mem_after, why = await self._telemetry(http, "/debug/memory-stats")
            if why:
                self.log("warning", f"memory stats after {where}: {why}")
        return stats_after, mem_after

    def _judge(
        self,
        report: PhaseReport,
        timed_out: bool,
        where: str,
        heap_fit: RunningSlope,
        polled: bool,
    ) -> list[str]:
        """The phase's gates on its report (a timed-out phase counts as all errors), saying
        why a result may not mean what it seems (client-bound, a heap-slope gate skipped)."""
        cfg = self.config
        if timed_out:
            report["error_rate"] = 100.0
        if report["client_bound"]:
            self.log(
                "warning",
                f"{where} {CLIENT_BOUND_NOTE} (loop lag p90 "
                f"{report['loop_lag_ms']['p90']} ms, load thread busy "
                f"{report['loop_busy_pct']:g} %, engine CPU {report['engine_cpu_pct']:g} %)",
            )
        report["heap_slope_b_per_h"] = heap_slope_per_hour(heap_fit)
        if cfg.gate_limits.max_heap_slope is not None and report["heap_slope_b_per_h"] is None:
            why = (
                "heap polling is off (--heap-poll-s)"
                if not polled
                else f"{heap_fit.n} heap sample(s) < {HEAP_SLOPE_MIN_SAMPLES}"
            )
            self.log("info", f"heap slope gate skipped for {where}: {why}")
        return evaluate(report, cfg.gate_limits, cfg.max_stall_ms)

    async def _poll_memory(
        self,
        http: httpx.AsyncClient,
        profile: str,
        run_index: int,
        phase: str,
        live: list[PhaseRecorder],
        heap_fit: RunningSlope,
    ) -> None:
        """Free heap while the phase runs, so a leak shows while it happens and in the timeline;
        `heap_fit` takes each reading with its time, for the slope gate."""
        start = time.monotonic()
        while True:
            await asyncio.sleep(self.config.telemetry_interval_s)
            mem, _ = await device.fetch_json(http, "/debug/memory-stats", 0, 0)
            if mem is not None:
                free = device.heap_value(mem, "internal_free")
                if free is not None:
                    heap_fit.add(time.monotonic() - start, free)
                if live:
                    live[0].timeline.note_heap(free)
                self.emit(Telemetry(profile, run_index, phase, "during", mem, None))

    def fail(self, reason: str) -> RunFinished:
        """An unexpected error ended the run: keep what was measured, as a hard stop."""
        self.hard_stop_reason = reason
        if self.raw_runs and not self.raw_runs[-1]["results"]:
            self.raw_runs.pop()
        return self._finish(False)

    def _finish(self, unreachable_at_start: bool) -> RunFinished:
        cfg = self.config
        finished = datetime.now(UTC)
        if self.stop.is_set() and self.hard_stop_reason is None:
            status = RunStatus.STOPPED
        elif self.hard_stop_reason:
            status = RunStatus.HARD_STOP
        else:
            status = RunStatus.FINISHED
        payload = self._record(status, finished)
        written: dict[str, str] = {}
        if status == "stopped":
            partial = self._write_partial(payload)
            if partial:
                written["partial"] = partial
            exit_code = EXIT_INTERRUPTED
            self.log("warning", "run stopped; the partial run is kept")
        else:
            self._write_final(payload, written)
            if status == "hard_stop":
                exit_code = EXIT_COULD_NOT_RUN
                what = f"device {cfg.target} unreachable" if unreachable_at_start else "hard stop"
                self.log("error", f"{what}: {self.hard_stop_reason}")
            elif "latest" not in written:
                # A script reading latest.json would read the previous run as this one: a pass
                # must not be reported for results that were never stored (disk full, say).
                exit_code = EXIT_COULD_NOT_RUN
                self.log(
                    "error",
                    f"the run's results were not stored: {files.LATEST_NAME} in "
                    f"{cfg.history_dir} is not this run",
                )
            else:
                exit_code = EXIT_OK if payload["overall_pass"] else EXIT_GATE_FAILED
        return RunFinished(
            status=status,  # how it ended; the record says "not_started" if no phase gave a result
            overall_pass=payload["overall_pass"],
            exit_code=exit_code,
            hard_stop_reason=self.hard_stop_reason,
            files=written,
            payload=payload,
            run_id=self.run_id,
        )

    def _write_final(self, payload: RunRecord, written: dict[str, str]) -> None:
        folder: Path = self.config.history_dir
        if not self.may_write():
            self.log("warning", f"run files not written: another run holds {folder} now")
            return
        stem = f"perf_{record.stamp(self.started)}" + (
            f"_{self.config.tag}" if self.config.tag else ""
        )
        try:
            json_path = files.unique_path(folder, stem, ".json")
            files.atomic_write_json(json_path, payload)
            md_path = json_path.with_suffix(".md")
            files.atomic_write_text(md_path, record.markdown(payload))
            files.atomic_write_json(folder / files.LATEST_NAME, payload)
            (folder / files.PARTIAL_NAME).unlink(missing_ok=True)
            written.update(json=str(json_path), md=str(md_path), latest=str(folder / "latest.json"))
        except OSError as exc:
            self.log("error", f"could not write the run files in {folder}: {exc}")


def _phase_report(
    outcome: PhaseOutcome, settings: PhaseSettings, budget: float, device_keys: PhaseReport
) -> PhaseReport:
    """The phase's report: the recorder's, the ramp's, the device around it, the watchdog, TLS
    handshakes, response checks and whether a stop cut it short."""
    report = outcome.recorder.report(settings.clients, settings.duration, outcome.elapsed)
    report.update(ramp_report(settings, report["timeline"]))
    report.update(device_keys)
    report.update(
        {
            "watchdog_budget_s": budget,
            "timed_out": outcome.timed_out,
            **handshake_report(outcome.handshakes),
            **checks_report(outcome),
            "stopped": outcome.stopped,
        }
    )
    return report


def _attempts(made: int, allowed: int) -> str:
    """How the probe gave up: every attempt allowed, or fewer (a certificate problem)."""
    text = f"after {made} attempt{'s' if made != 1 else ''}"
    return text if made >= max(1, allowed) else f"{text} of {allowed}, not retried"


def _device_keys(
    mem_before: JsonObject | None, mem_after: JsonObject | None, stats_after: JsonObject | None
) -> PhaseReport:
    """The device around a phase, in the report: its stats and memory, and the heap drops."""
    internal_drop, psram_drop = device.heap_drops(mem_before, mem_after)
    return {
        "stats_after": stats_after,
        "mem_before": mem_before,
        "mem_after": mem_after,
        "telemetry_available": mem_before is not None,
        "heap_internal_drop": internal_drop,
        "heap_psram_drop": psram_drop,
    }


class _Beats:
    """A phase's heartbeats and stall events, made from the recorder's snapshots (called on the
    load's loop: cheap; per-path percentiles only every `path_percentiles_s`)."""

    def __init__(
        self,
        suite: Suite,
        profile: str,
        run_index: int,
        phase: str,
        settings: PhaseSettings,
        budget: float,
        live: list[PhaseRecorder],
    ) -> None:
        self.suite = suite
        self.profile, self.run_index, self.phase = profile, run_index, phase
        self.settings = settings
        self.budget = budget
        self.live = live
        self.path_pcts: dict[str, tuple[float | None, ...]] = {}
        self.next_pcts = 0.0
        self.ramp = Ramp(settings.stages) if settings.stages and settings.rate else None

    def emit_stalls(self, rec: PhaseRecorder) -> None:
        for stall in rec.stalls.drain():
            ms = round(stall.duration_s * 1000, 1)
            self.suite.emit(Stall(self.profile, self.run_index, self.phase, stall.at_s, ms))

    def on_snapshot(self, rec: PhaseRecorder, snap: JsonObject, elapsed: float) -> None:
        cfg = self.suite.config
        if not self.live:
            self.live.append(rec)
        self.emit_stalls(rec)
        if cfg.path_percentiles_s > 0 and elapsed >= self.next_pcts:
            self.next_pcts = elapsed + cfg.path_percentiles_s
            self.path_pcts.update(
                {p: quick_percentiles_ms(s.total, rec.scratch) for p, s in rec.paths.items()}
            )
        self.suite.emit(
            Heartbeat(
                profile=self.profile,
                run_index=self.run_index,
                phase=self.phase,
                elapsed=elapsed,
                duration=self.settings.duration,
                budget_s=self.budget,
                requests=snap["requests"],
                ok=snap["ok"],
                errors=snap["errors"],
                rps_now=snap["rps_now"],
                window_p50_ms=snap["window_p50_ms"],
                window_p95_ms=snap["window_p95_ms"],
                window_p99_ms=snap["window_p99_ms"],
                p50_ms=snap["p50_ms"],
                p95_ms=snap["p95_ms"],
                p99_ms=snap["p99_ms"],
                errors_by_kind=rec.errors_by_kind(),
                status_counts=rec.status_counts(),
                paths={
                    p: PathCounts(s.requests, s.ok, s.err, *self.path_pcts.get(p, ()))
                    for p, s in rec.paths.items()
                },
                target_rps=self.ramp.at(elapsed) if self.ramp else self.settings.rate,
                ramp=self.ramp is not None,
                stalls=rec.stalls.count,
                client_bound=rec.check.client_bound(rec.stalls.start + elapsed),
                **(latency_buckets(rec) if cfg.metrics_port else {}),
            )
        )
