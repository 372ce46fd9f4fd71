"""Run settings with the legacy runner's defaults, and the exit codes every command shares."""

from __future__ import annotations

import os
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from perftui.profiles import Profile

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_COULD_NOT_RUN = 3
EXIT_INTERRUPTED = 130
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a Unix tool whose reader left
EXIT_MEANINGS = {
    EXIT_OK: "ok: every gate passed (and no regression when one was asked to fail)",
    EXIT_GATE_FAILED: "a gate failed, or a regression with --fail-on-regression",
    EXIT_BAD_INPUT: "bad input",
    EXIT_COULD_NOT_RUN: "could not run, or the results could not be stored",
    EXIT_INTERRUPTED: "stopped",
    EXIT_CLOSED_PIPE: "the reader of the output went away (e.g. `| head`)",
}

HISTORY_ENV = "PERFTUI_HISTORY_DIR"
DEFAULT_HISTORY_DIR = "history"
LOCK_FILE_NAME = ".perf_regression.lock"
PHASES = ("burst", "long")


def default_history_dir() -> Path:
    """The history dir: $PERFTUI_HISTORY_DIR if set, else ./history."""
    return Path(os.environ.get(HISTORY_ENV) or DEFAULT_HISTORY_DIR)


@dataclass(slots=True)
class GateLimits:
    """Pass/fail limits of a phase: the legacy runner's five gates (heap counts twice).

    These defaults are the only place the gate defaults are written: the command line's flags
    and the TUI's Setup fields read them from here. (Regression thresholds between two runs are
    another thing, in `perftui.analysis.compare`.)
    """

    max_error_rate: float = 2.0
    max_p95_ms: float = 2000.0
    max_p99_ms: float = 3000.0
    max_tail_p95_ratio: float = 1.8
    max_internal_free_drop: int = 131072
    max_psram_free_drop: int = 524288
    # Fastest allowed fall of free internal heap during a phase, in bytes/hour, fitted over the
    # heap polled during the phase (needs --heap-poll-s); None = off, as the legacy runner.
    max_heap_slope: float | None = None


@dataclass(slots=True)
class PhaseSettings:
    """`rate` (req/s) makes the phase open loop, `clients` then being its most connections."""

    clients: int
    duration: float
    rate: float | None = None


# The legacy runner's phase defaults: (clients, seconds).
DEFAULT_PHASES: dict[str, tuple[int, float]] = {"burst": (12, 20.0), "long": (8, 60.0)}


@dataclass(slots=True)
class RunConfig:
    """Everything one invocation needs; picklable so it can be handed to the engine process."""

    host: str
    port: int = 8080
    scheme: str = "http"
    profiles: list[Profile] = field(default_factory=list)
    runs: int = 3
    timeout: float = 6.0
    burst: PhaseSettings = field(default_factory=lambda: PhaseSettings(*DEFAULT_PHASES["burst"]))
    long: PhaseSettings = field(default_factory=lambda: PhaseSettings(*DEFAULT_PHASES["long"]))
    # Phase settings the user gave on the command line win over a profile's own defaults.
    phase_overrides: dict[str, dict[str, float]] = field(default_factory=dict)
    metrics_retries: int = 20
    metrics_retry_delay_ms: int = 100
    post_phase_settle_ms: int = 250
    between_runs_sleep_ms: int = 500
    history_dir: Path = field(default_factory=default_history_dir)
    lock_file: Path | None = None
    heartbeat_ms: int = 5000
    snapshot_interval_s: float = 0.25
    phase_timeout_multiplier: float = 2.5
    phase_timeout_min_s: float = 45.0
    hard_timeout_s: float = 0.0
    probe_path: str = "/hello"
    probe_retries: int = 12
    tag: str = ""
    note: str = ""
    build: str = ""  # the firmware build measured (not a setting: A and B differ in it)
    gate_limits: GateLimits = field(default_factory=GateLimits)
    # Free heap read *during* a phase, every N s (0 = never, as the legacy runner): the TUI
    # turns it on to show a leak as it happens; it costs the device one request per period.
    telemetry_interval_s: float = 0.0
    # Per-path p50/p95/p99 in heartbeats every N s (0 = only in the phase report): for a live view.
    path_percentiles_s: float = 0.0
    write_history_db: bool = True
    arrivals: str = "constant"  # open-loop phases: "constant" or "poisson"
    max_stall_ms: float = 0.0  # stall gate: a phase fails on a longer stall (0 = off)
    # A stable name for the device ("sim" for the built-in simulator), so that a new port does
    # not make it a new target when previous runs and noise are looked up ("" = the target).
    device: str = ""

    @property
    def target(self) -> str:
        """host:port as the legacy files name it; an IPv6 literal in brackets ([::1]:8080)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def lock_path(self) -> Path:
        return self.lock_file or (self.history_dir / LOCK_FILE_NAME)

    def phase_settings(self, profile: Profile, phase: str) -> PhaseSettings:
        """Command line beats the profile's own defaults, which beat the reference defaults."""
        base: PhaseSettings = getattr(self, phase)
        clients, duration = base.clients, base.duration
        own = profile.phases.get(phase, {})
        clients = int(own.get("clients", clients))
        duration = float(own.get("duration", duration))
        given = self.phase_overrides.get(phase, {})
        clients = int(given.get("clients", clients))
        duration = float(given.get("duration", duration))
        rate = given.get("rate", own.get("rate", base.rate))
        return PhaseSettings(clients, duration, float(rate) if rate else None)

    def watchdog_budget(self, duration: float) -> float:
        """The reference's budget: max(min_s, duration × multiplier + 2 × timeout + 10)."""
        return max(
            self.phase_timeout_min_s,
            duration * self.phase_timeout_multiplier + 2 * self.timeout + 10,
        )

    def settings_dict(self) -> dict[str, Any]:
        """Every setting as plain JSON, for the run record (profiles are stored separately)."""
        out = {
            "host": self.host,
            "port": self.port,
            "runs": self.runs,
            "timeout": self.timeout,
            "burst_clients": self.burst.clients,
            "burst_duration": self.burst.duration,
            "long_clients": self.long.clients,
            "long_duration": self.long.duration,
            "burst_rate": self.burst.rate,
            "long_rate": self.long.rate,
            "arrivals": self.arrivals,
            "max_stall_ms": self.max_stall_ms,
            "phase_overrides": self.phase_overrides,
            "metrics_retries": self.metrics_retries,
            "metrics_retry_delay_ms": self.metrics_retry_delay_ms,
            "post_phase_settle_ms": self.post_phase_settle_ms,
            "between_runs_sleep_ms": self.between_runs_sleep_ms,
            "history_dir": str(self.history_dir),
            "lock_file": str(self.lock_path),
            "heartbeat_ms": self.heartbeat_ms,
            "phase_timeout_multiplier": self.phase_timeout_multiplier,
            "phase_timeout_min_s": self.phase_timeout_min_s,
            "hard_timeout_s": self.hard_timeout_s,
            "probe_path": self.probe_path,
            "probe_retries": self.probe_retries,
            "tag": self.tag,
            # How often a viewer was fed: kept for the record, not compared (perftui.like).
            "snapshot_interval_s": self.snapshot_interval_s,
            "telemetry_interval_s": self.telemetry_interval_s,
            "path_percentiles_s": self.path_percentiles_s,
            "build": self.build,
        }
        out.update({f"gate_{k}": v for k, v in asdict(self.gate_limits).items()})
        return out


def setting_defaults() -> dict[str, Any]:
    """Every plain setting's default by its flat name (`timeout`, `burst_clients`, `max_p95_ms`).

    The command line's flag defaults and the TUI's Setup fields both read this, so a default is
    written once, in the dataclasses above.
    """
    out: dict[str, Any] = {f.name: f.default for f in fields(RunConfig) if f.default is not MISSING}
    for phase, (clients, duration) in DEFAULT_PHASES.items():
        out[f"{phase}_clients"], out[f"{phase}_duration"] = clients, duration
    out.update(asdict(GateLimits()))
    return out
