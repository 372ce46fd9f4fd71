"""Run settings with the legacy runner's defaults, and the exit codes every command shares."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perftui import settings as registry
from perftui.profiles import Profile
from perftui.validate import UsageError, clean_tag

if TYPE_CHECKING:
    import ssl

    from perftui.analysis.thresholds import RegressionThresholds

D = registry.default

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

    The defaults are the registry's (`perftui.settings`), as the flags and Setup fields have
    them. (Regression thresholds between two runs are another thing, in
    `perftui.analysis.thresholds`.)
    """

    max_error_rate: float = D("max_error_rate")
    max_p95_ms: float = D("max_p95_ms")
    max_p99_ms: float = D("max_p99_ms")
    max_tail_p95_ratio: float = D("max_tail_p95_ratio")
    max_internal_free_drop: int = D("max_internal_free_drop")
    max_psram_free_drop: int = D("max_psram_free_drop")
    # Fastest allowed fall of free internal heap during a phase, in bytes/hour, fitted over the
    # heap polled during the phase (needs --heap-poll-s); None = off, as the legacy runner.
    max_heap_slope: float | None = D("max_heap_slope")


@dataclass(slots=True)
class PhaseSettings:
    """`rate` (req/s) makes the phase open loop, `clients` then being its most connections."""

    clients: int
    duration: float
    rate: float | None = None
    # `--stages`: (seconds, target) of a ramp, in "rps" (open loop; `rate` is then its mean)
    # or "clients" (closed loop; `clients` is then its most).
    stages: tuple[tuple[float, float], ...] | None = None
    stages_unit: str | None = None


# The legacy runner's phase defaults: (clients, seconds).
DEFAULT_PHASES: dict[str, tuple[int, float]] = {
    phase: (D(f"{phase}_clients"), D(f"{phase}_duration")) for phase in PHASES
}


@dataclass(slots=True, frozen=True)
class TlsSettings:
    """How an https:// device is trusted, and the client certificate shown to it."""

    insecure: bool = D("insecure")
    cacert: str = D("cacert")
    cert: str = D("cert")
    key: str = D("key")

    def given(self) -> dict[str, Any]:
        """The settings that differ from the defaults (what the fingerprint adds)."""
        return {k: v for k, v in asdict(self).items() if v != D(k)}

    def context(self) -> ssl.SSLContext:
        """The client's TLS context; UsageError (one line) for a file that is not PEM."""
        import ssl  # here: the command line's start-up (`--version`, `history list`) needs no TLS

        try:
            ctx = ssl.create_default_context(cafile=self.cacert or None)
            if self.cert:
                ctx.load_cert_chain(self.cert, self.key)
        except (ssl.SSLError, OSError) as exc:
            files = ", ".join(f"--{k} {v}" for k, v in self.given().items() if k != "insecure")
            raise UsageError(f"{files}: cannot load: {exc}") from None
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


@dataclass(slots=True)
class RunConfig:
    """Everything one invocation needs; picklable so it can be handed to the engine process."""

    host: str
    port: int = 8080
    scheme: str = "http"
    profiles: list[Profile] = field(default_factory=list)
    runs: int = D("runs")
    timeout: float = D("timeout")
    burst: PhaseSettings = field(default_factory=lambda: PhaseSettings(*DEFAULT_PHASES["burst"]))
    long: PhaseSettings = field(default_factory=lambda: PhaseSettings(*DEFAULT_PHASES["long"]))
    # Phase settings given above the profile (config file, flags, Setup fields) win over a
    # profile's own defaults.
    phase_overrides: dict[str, dict[str, float]] = field(default_factory=dict)
    metrics_retries: int = D("metrics_retries")
    metrics_retry_delay_ms: int = D("metrics_retry_delay_ms")
    post_phase_settle_ms: int = D("post_phase_settle_ms")
    between_runs_sleep_ms: int = D("between_runs_sleep_ms")
    history_dir: Path = field(default_factory=default_history_dir)
    lock_file: Path | None = None
    heartbeat_ms: int = D("heartbeat_ms")
    snapshot_interval_s: float = D("snapshot_interval_s")
    phase_timeout_multiplier: float = D("phase_timeout_multiplier")
    phase_timeout_min_s: float = D("phase_timeout_min_s")
    hard_timeout_s: float = D("hard_timeout_s")
    probe_path: str = D("probe_path")
    probe_retries: int = D("probe_retries")
    tag: str = ""
    note: str = ""
    build: str = D("build")  # the firmware build measured (not a setting: A and B differ in it)
    gate_limits: GateLimits = field(default_factory=GateLimits)
    # Free heap read *during* a phase, every N s (0 = never, as the legacy runner): the TUI
    # turns it on to show a leak as it happens; it costs the device one request per period.
    telemetry_interval_s: float = D("heap_poll_s")
    # Per-path p50/p95/p99 in heartbeats every N s (0 = only in the phase report): for a live view.
    path_percentiles_s: float = D("path_percentiles_s")
    write_history_db: bool = True
    arrivals: str = D("arrivals")  # open-loop phases: "constant" or "poisson"
    max_stall_ms: float = D("max_stall_ms")  # stall gate: a longer stall fails a phase (0 = off)
    # A stable name for the device ("sim" for the built-in simulator), so that a new port does
    # not make it a new target when previous runs and noise are looked up ("" = the target).
    device: str = ""
    tls: TlsSettings = field(default_factory=lambda: TlsSettings())
    # Prometheus text served by the process reading the events (None = off).
    metrics_port: int | None = D("metrics_port")
    stages: tuple[tuple[float, float], ...] | None = None  # a ramp replaces burst and long
    stages_unit: str = D("stages_unit")
    metrics_bind: str = D("metrics_bind")

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
        if self.stages:
            return self._ramp_settings(phase, clients)
        return PhaseSettings(clients, duration, float(rate) if rate else None)

    def _ramp_settings(self, phase: str, clients: int) -> PhaseSettings:
        """`--stages`: the ramp is the long phase (burst is skipped): open loop at the ramp's
        rates over at most `clients` connections, or closed loop with up to its most clients."""
        duration = sum(d for d, _ in self.stages or ())
        if phase == "burst":
            return PhaseSettings(clients, 0.0)
        if self.stages_unit == "clients":
            most = max(1, math.ceil(max(t for _, t in self.stages or ())))
            return PhaseSettings(most, duration, None, self.stages, "clients")
        mean = sum((a + b) / 2 * d for (d, b), a in _levels(self.stages or ())) / duration
        return PhaseSettings(clients, duration, round(mean, 6), self.stages, "rps")

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
        if self.tls.given():
            out["tls"] = self.tls.given()
        return out


def _levels(
    stages: tuple[tuple[float, float], ...],
) -> list[tuple[tuple[float, float], float]]:
    """Each stage with the level it starts from (0, then the previous stage's target)."""
    starts = [0.0, *(t for _, t in stages[:-1])]
    return list(zip(stages, starts, strict=True))


def setting_defaults() -> dict[str, Any]:
    """Every run setting's default by its flat name (`timeout`, `burst_clients`, `max_p95_ms`),
    as the registry declares it."""
    return registry.defaults()


def _profile_settings(profiles: list[Profile]) -> dict[str, Any]:
    """The profiles' `[settings]` tables merged; two profiles that disagree are an error."""
    out: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for p in profiles:
        for key, value in p.settings.items():
            if key in out and out[key] != value:
                raise UsageError(
                    f"profiles {origin[key]!r} and {p.name!r} disagree on {key} "
                    f"({out[key]!r} / {value!r}): give it once, on the command line"
                )
            out[key], origin[key] = value, p.name
    return out


def _phase_overrides(layers: list[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Phase settings of the layers above the profile (later layers win); a layer's `rate`
    is both phases' unless it names the phase's own."""
    out: dict[str, dict[str, float]] = {}
    for layer in layers:
        for phase in PHASES:
            given = {k: layer[f"{phase}_{k}"] for k in ("clients", "duration", "rate")}
            given = {k: v for k, v in given.items() if v is not None}
            if "rate" not in given and layer.get("rate") is not None:
                given["rate"] = layer["rate"]
            if given:
                out.setdefault(phase, {}).update(given)
    return out


def build_config(
    *,
    host: str,
    port: int,
    profiles: list[Profile],
    scheme: str = "http",
    history_dir: Path | None = None,
    lock_file: Path | None = None,
    config_file: Mapping[str, Any] | None = None,
    given: Mapping[str, Any] | None = None,
) -> RunConfig:
    """The one constructor of a run's RunConfig. Precedence, lowest first: the registry's
    defaults < the profiles' `[phases]` and `[settings]` < the config file < the flags (or the
    TUI's Setup fields). `given` holds only what the user set; UsageError on a bad mix."""
    names = {s.name for s in registry.SETTINGS}
    layers = [
        {k: v for k, v in layer.items() if k in names} for layer in (config_file or {}, given or {})
    ]
    values = registry.defaults() | _profile_settings(profiles)
    for layer in layers:
        values.update(layer)
    tls = TlsSettings(**{k: values[k] for k in ("insecure", "cacert", "cert", "key")})
    if bool(tls.cert) != bool(tls.key):
        raise UsageError("--cert and --key go together (a client certificate and its key)")
    if scheme != "https" and tls.given():
        raise UsageError(f"{', '.join(tls.given())}: TLS settings need an https:// device")
    if tls.cacert or tls.cert:
        tls.context()  # a bad file is bad input now, not an engine failure later
    blank = {f"{ph}_{k}": None for ph in PHASES for k in ("clients", "duration", "rate")}
    # Settings that are a RunConfig field (timeout, runs, heap_poll_s…), the cleaned ones apart.
    plain = {f.name for f in fields(RunConfig)} - {"tag", "build"}
    same_name = {s.field: values[s.name] for s in registry.SETTINGS if s.field in plain}
    config = RunConfig(
        host=host,
        port=port,
        scheme=scheme,
        profiles=profiles,
        history_dir=history_dir or default_history_dir(),
        lock_file=lock_file,
        phase_overrides=_phase_overrides([blank | layer for layer in layers]),
        gate_limits=GateLimits(**{g: values[g] for g in registry.GATES}),
        tls=tls,
        tag=clean_tag(values["tag"]),
        build=values["build"].strip(),
        **same_name,
    )
    if config.stages and not any(t > 0 for _, t in config.stages):
        raise UsageError("--stages: every target is 0, nothing would be sent")
    if not any(config.phase_settings(p, phase).duration > 0 for p in profiles for phase in PHASES):
        raise UsageError("nothing to run: every phase has a duration of 0")
    return config


CONFIG_NAME = "perftui.toml"  # in the history dir; `--config FILE` names another


def _config_path(path: Path | None, history_dir: Path | None) -> Path | None:
    """`--config FILE`, else HISTORY/perftui.toml when it exists (None when it does not)."""
    if path is not None:
        return path
    path = (history_dir or default_history_dir()) / CONFIG_NAME
    return path if path.is_file() else None


def _read_toml(path: Path, error: type[Exception]) -> dict[str, Any]:
    """The file's TOML; `error` (one line) when it cannot be read or parsed."""
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None


def read_config_file(path: Path | None, history_dir: Path | None = None) -> dict[str, Any]:
    """The `[run]` table of the config file (`--config FILE`, else HISTORY/perftui.toml if
    present): run settings by their flat names (`timeout = 3`, `insecure = true`). The file's
    `[thresholds]` table is the comparison's (`load_thresholds`)."""
    explicit = path is not None
    path = _config_path(path, history_dir)
    if path is None:
        return {}
    if explicit and not path.exists():
        raise UsageError(f"--config {path}: no such file")
    table = _read_toml(path, UsageError).get("run", {})
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [run] must be a table")
    return registry.from_toml(table, f"{path} [run]")


def load_thresholds(
    history_dir: Path | None,
    config_file: Path | None = None,
    overrides: dict[str, float] | None = None,
) -> RegressionThresholds:
    """A comparison's regression thresholds: the defaults, then `[thresholds]` of the config
    file (`--config` or `perftui.toml` in the history dir), then command-line overrides;
    `ConfigError` (one line) for a bad file or value."""
    from perftui.analysis.thresholds import ConfigError, RegressionThresholds

    thresholds = RegressionThresholds()
    path = config_file or (history_dir / CONFIG_NAME if history_dir else None)
    if path is not None and (config_file is not None or path.is_file()):
        section = _read_toml(path, ConfigError).get("thresholds", {})
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: [thresholds] must be a table")
        thresholds = thresholds.updated(section, str(path))
    return thresholds.updated(overrides or {}, "command line")
