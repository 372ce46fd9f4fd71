"""The run settings registry: each setting declared once, every face built from it.

A `Setting` names its flat key (the TOML key, the flag `--key-with-dashes`, the Setup field
`f-key`), its converter from `perftui.validate` (type and bounds: the command line uses it as
argparse `type=`, the TUI as its field check, a TOML value goes through it too), its default,
its help, whether it enters the settings fingerprint (`perftui.like` leaves the others out of
it), and its Setup label when the TUI's Advanced panel shows it.
`perftui.config.build_config` is the one place the layers meet.

Only the standard library and `perftui.validate` are imported: the parser loads this.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from perftui.validate import (
    FILE_PATH,
    HOST_BIND,
    NONNEG_FLOAT,
    NONNEG_INT,
    PORT,
    POS_FLOAT,
    POS_INT,
    STAGES,
    URL_PATH,
    UsageError,
)


def _flag(value: str) -> bool:
    """A switch's value from text (a TOML file, a Setup checkbox): true/false, yes/no, 1/0."""
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"{value!r} is not true or false")


def _text(value: str) -> str:
    return value


@dataclass(frozen=True, slots=True)
class Setting:
    """One run setting. `switch` settings are store_true flags; `flag=False` means no flag (a
    setting the TUI or a TOML file sets, such as the live view's cadences)."""

    name: str
    convert: Callable[[str], Any]
    default: Any
    help: str = ""
    fingerprint: bool = False  # enters the settings fingerprint: runs differing here differ
    label: str = ""  # the TUI Setup's Advanced field ("" = not on Setup)
    switch: bool = False
    flag: bool = True
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    attr: str = ""  # its RunConfig field (and key in old records), when not `name`

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def field(self) -> str:
        return self.attr or self.name

    def parse(self, value: Any, where: str) -> Any:
        """A value from a TOML file (native type) or a form (text), checked like the flag."""
        if self.switch and isinstance(value, bool):
            return value
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise UsageError(f"{where}: {self.name} must be {self._kind()}")
        try:
            out = self.convert(str(value).strip())
        except (argparse.ArgumentTypeError, ValueError) as exc:
            raise UsageError(f"{where}: {self.name}: {exc}") from None
        if self.choices and out not in self.choices:
            raise UsageError(f"{where}: {self.name} must be one of {', '.join(self.choices)}")
        return out

    def _kind(self) -> str:
        return "true or false" if self.switch else "a string or a number"


GATE_HELP = "gate"
_PHASE_DEFAULTS = {"burst": (12, 20.0), "long": (8, 60.0)}  # the legacy runner's (clients, s)


def _phase_settings() -> list[Setting]:
    out: list[Setting] = []
    for phase, (clients, duration) in _PHASE_DEFAULTS.items():
        out += [
            Setting(
                f"{phase}_clients",
                POS_INT,
                clients,
                f"clients in phase {phase} (default {clients})",
                fingerprint=True,
                label=f"{phase} clients",
            ),
            Setting(
                f"{phase}_duration",
                NONNEG_FLOAT,
                duration,
                f"seconds of phase {phase}; 0 skips it (default {duration:g})",
                fingerprint=True,
                label=f"{phase} duration s",
            ),
            Setting(
                f"{phase}_rate",
                POS_FLOAT,
                None,
                f"open loop: req/s in phase {phase}, its clients the most connections",
                fingerprint=True,
            ),
        ]
    return out


SETTINGS: tuple[Setting, ...] = (
    Setting("runs", POS_INT, 3, "runs per profile (default %(default)s)"),
    *_phase_settings(),
    Setting(
        "timeout", POS_FLOAT, 6.0, "request timeout, s (%(default)s)", True, "request timeout s"
    ),
    Setting(
        "rate",
        POS_FLOAT,
        None,
        "open loop at R req/s in both phases (latency from each intended send time)",
        fingerprint=True,
    ),
    Setting(
        "arrivals",
        _text,
        "constant",
        "open-loop arrivals: evenly spaced or Poisson (default %(default)s)",
        fingerprint=True,
        choices=("constant", "poisson"),
    ),
    Setting(
        "stages",
        STAGES,
        None,
        "a ramp instead of the phases: 'DURATION:TARGET,…' (30s:50,60s:200,30s:0), linear from "
        "0 to each target in turn; req/s (open loop) or clients, see --stages-unit",
        fingerprint=True,
        metavar="STAGES",
    ),
    Setting(
        "stages_unit",
        _text,
        "rps",
        "what --stages targets are: rps (open loop, the long phase's clients the most "
        "connections) or clients (closed loop) (default %(default)s)",
        fingerprint=True,
        choices=("rps", "clients"),
    ),
    Setting(
        "max_stall_ms",
        NONNEG_FLOAT,
        0.0,
        "gate: fail a phase with a longer stall (no answer while requests wait); 0 = off",
    ),
    Setting("metrics_retries", NONNEG_INT, 20),
    Setting("metrics_retry_delay_ms", NONNEG_INT, 100),
    Setting("between_runs_sleep_ms", NONNEG_INT, 500, label="between runs ms"),
    Setting("post_phase_settle_ms", NONNEG_INT, 250, label="settle ms"),
    Setting("heartbeat_ms", POS_INT, 5000, "progress line period"),
    Setting("probe_path", URL_PATH, "/hello", label="probe path"),
    Setting("probe_retries", POS_INT, 12, label="probe retries"),
    Setting("phase_timeout_multiplier", POS_FLOAT, 2.5, label="watchdog ×"),
    Setting("phase_timeout_min_s", NONNEG_FLOAT, 45.0, label="watchdog min s"),
    Setting("hard_timeout_s", NONNEG_FLOAT, 0.0, "0 = off", label="hard timeout s (0 off)"),
    Setting("tag", _text, "", "kept to [A-Za-z0-9_-], appended to file names"),
    Setting("note", _text, "", "free text stored with the run"),
    # A label of what was measured, not how: A and B differ in it by design (the comparison's
    # noise sample is runs of A's build), so not in the fingerprint. Setup has its own field.
    Setting(
        "build",
        _text,
        "",
        "the firmware build measured (default: what the device reports, if it does); "
        "a comparison's noise sample is runs of A's build",
        metavar="LABEL",
    ),
    Setting(
        "heap_poll_s",
        NONNEG_FLOAT,
        0.0,
        "also read the device's free heap every N s during phases (0 = off)",
        attr="telemetry_interval_s",
    ),
    # The live view's cadences: how often a viewer is told, not what is measured (not in the
    # fingerprint; the TUI sets them, no flag).
    Setting("snapshot_interval_s", POS_FLOAT, 0.25, flag=False),
    Setting("path_percentiles_s", NONNEG_FLOAT, 0.0, flag=False),
    Setting(
        "metrics_port",
        PORT,
        None,
        "serve Prometheus/OpenMetrics text on this port while the run lasts (off)",
        metavar="P",
    ),
    Setting(
        "metrics_bind",
        HOST_BIND,
        "127.0.0.1",
        "address the metrics port listens on (default %(default)s: loopback only)",
        metavar="ADDR",
    ),
    Setting("max_error_rate", NONNEG_FLOAT, 2.0, "gate, %%", label="gate: max error %"),
    Setting("max_p95_ms", POS_FLOAT, 2000.0, GATE_HELP, label="gate: max p95 ms"),
    Setting("max_p99_ms", POS_FLOAT, 3000.0, GATE_HELP, label="gate: max p99 ms"),
    Setting("max_tail_p95_ratio", POS_FLOAT, 1.8, GATE_HELP, label="gate: tail p95 ratio"),
    Setting("max_internal_free_drop", NONNEG_INT, 131072, "gate, B", label="gate: heap drop B"),
    Setting("max_psram_free_drop", NONNEG_INT, 524288, "gate, B", label="gate: PSRAM drop B"),
    Setting(
        "max_heap_slope",
        POS_FLOAT,
        None,
        "gate, B/h: fail a phase whose free heap falls faster (needs --heap-poll-s; off)",
        metavar="BYTES_PER_HOUR",
    ),
    # TLS: https:// targets. They change what a new connection costs, so they are fingerprinted.
    Setting(
        "insecure",
        _flag,
        False,
        "https: do not verify the device's certificate (self-signed firmware)",
        fingerprint=True,
        label="TLS: insecure (yes/no)",
        switch=True,
    ),
    Setting(
        "cacert",
        FILE_PATH,
        "",
        "https: trust this CA certificate file (PEM)",
        fingerprint=True,
        label="TLS: CA file",
        metavar="FILE",
    ),
    Setting(
        "cert",
        FILE_PATH,
        "",
        "https: client certificate (PEM; with --key)",
        fingerprint=True,
        label="TLS: client cert",
        metavar="FILE",
    ),
    Setting(
        "key",
        FILE_PATH,
        "",
        "https: the client certificate's private key (PEM)",
        fingerprint=True,
        label="TLS: client key",
        metavar="FILE",
    ),
)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
GATES = (
    "max_error_rate",
    "max_p95_ms",
    "max_p99_ms",
    "max_tail_p95_ratio",
    "max_internal_free_drop",
    "max_psram_free_drop",
    "max_heap_slope",
)
PHASE_KEYS = ("clients", "duration", "rate")
# Settings the capacity search has of its own (`perftui capacity`), defaults read by
# `perftui.engine.capacity` too.
CAPACITY: tuple[Setting, ...] = (
    Setting("start_rate", POS_FLOAT, 10.0, "first step, req/s"),
    Setting("max_rate", POS_FLOAT, 100_000.0, "never above, req/s"),
    Setting("step_s", POS_FLOAT, 5.0, "search step length, s (5)"),
    Setting("confirm_s", POS_FLOAT, 15.0, "confirm step, s (15)"),
    Setting("clients", POS_INT, 16, "most open connections (default 16)"),
)
CAPACITY_BY_NAME: dict[str, Setting] = {s.name: s for s in CAPACITY}


def default(name: str) -> Any:
    """A setting's one default (run settings, then the capacity search's)."""
    return (BY_NAME.get(name) or CAPACITY_BY_NAME[name]).default


def defaults() -> dict[str, Any]:
    """Every run setting's default by its flat name."""
    return {s.name: s.default for s in SETTINGS}


def add_arguments(
    parser: argparse.ArgumentParser,
    names: Iterable[str] | None = None,
    registry: Mapping[str, Setting] = BY_NAME,
    **help_override: str,
) -> None:
    """The flags of `names` (default: every run setting with a flag), in registry order.

    A flag's argparse default is None (a switch's too): `build_config` can then tell a flag the
    user gave from one left alone, so a config file or a profile below it still counts.
    """
    chosen = [registry[n] for n in names] if names is not None else list(registry.values())
    for s in chosen:
        if not s.flag:
            continue
        text = help_override.get(s.name, s.help)
        if s.switch:
            parser.add_argument(s.option, action="store_const", const=True, help=text or None)
            continue
        parser.add_argument(
            s.option,
            type=s.convert,
            default=None,
            help=(text % {"default": s.default}).replace("%", "%%") if text else None,
            metavar=s.metavar,
            choices=s.choices,
        )


def given(args: argparse.Namespace, names: Iterable[str] | None = None) -> dict[str, Any]:
    """The settings the user gave as flags (the others are None)."""
    names = [s.name for s in SETTINGS if s.flag] if names is None else names
    return {n: v for n in names if (v := getattr(args, n, None)) is not None}


def from_toml(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Settings from a TOML table (a config file, a profile's `[settings]`), each checked."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        setting = BY_NAME.get(key)
        if setting is None:
            raise UsageError(f"{where}: unknown setting {key!r}")
        out[key] = setting.parse(value, where)
    return out
