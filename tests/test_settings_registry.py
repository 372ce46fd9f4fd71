"""The settings registry: one declaration per setting, one precedence rule in `build_config`."""

from __future__ import annotations

from pathlib import Path

import pytest

from perftui import settings
from perftui.cli.main import build_parser, main
from perftui.cli.run import config_from_args
from perftui.config import GateLimits, RunConfig, build_config, read_config_file
from perftui.profiles import parse_profile

PROFILE = """
[settings]
timeout = 2.0
max_p95_ms = 100
[phases.burst]
clients = 3
[[requests]]
path = "/a"
"""


def test_every_dataclass_default_is_the_registry_default() -> None:
    config, gates = RunConfig(host="h"), GateLimits()
    d = settings.defaults()
    assert (config.runs, config.timeout, config.arrivals) == (d["runs"], d["timeout"], "constant")
    assert config.telemetry_interval_s == d["heap_poll_s"]
    assert gates.max_p95_ms == d["max_p95_ms"] and gates.max_heap_slope is None
    assert (config.burst.clients, config.long.duration) == (12, 60.0)


def test_precedence_defaults_profile_file_flags(tmp_path: Path) -> None:
    profile = parse_profile(PROFILE, "p", "p.toml")
    (tmp_path / "perftui.toml").write_text("[run]\ntimeout = 3\nburst_clients = 4\nruns = 2\n")
    file_layer = read_config_file(None, tmp_path)

    def build(**given):
        return build_config(
            host="h", port=1, profiles=[profile], config_file=file_layer, given=given
        )

    config = build()
    assert config.timeout == 3.0  # the file beats the profile
    assert config.gate_limits.max_p95_ms == 100.0  # the profile beats the default
    assert config.phase_settings(profile, "burst").clients == 4  # the file beats [phases]
    assert config.runs == 2
    flagged = build(timeout=5.0, burst_clients=6)
    assert flagged.timeout == 5.0 and flagged.phase_settings(profile, "burst").clients == 6
    assert (
        build_config(host="h", port=1, profiles=[profile]).phase_settings(profile, "burst").clients
        == 3
    )


def test_flags_and_file_meet_in_one_place(tmp_path: Path) -> None:
    (tmp_path / "run.toml").write_text("[run]\ntimeout = 3\nmax_p99_ms = 10\n")
    args = build_parser().parse_args(
        ["run", "dev.local", "--config", str(tmp_path / "run.toml"), "--timeout", "4"]
    )
    config = config_from_args(args)
    assert config.timeout == 4.0 and config.gate_limits.max_p99_ms == 10.0


@pytest.mark.parametrize(
    ("text", "needle"),
    [("[run]\ntimeout = -1\n", "timeout"), ("[run]\nnope = 1\n", "unknown setting 'nope'")],
)
def test_bad_config_file_is_one_line_exit_2(tmp_path: Path, capsys, text: str, needle: str):
    (tmp_path / "perftui.toml").write_text(text)
    assert main(["run", "127.0.0.1", "--history-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_profiles_that_disagree_are_an_error() -> None:
    a = parse_profile(PROFILE, "a", "a.toml")
    b = parse_profile(PROFILE.replace("2.0", "9.0"), "b", "b.toml")
    with pytest.raises(ValueError, match="disagree on timeout"):
        build_config(host="h", port=1, profiles=[a, b])


def test_viewer_cadences_are_marked_outside_the_fingerprint() -> None:
    marked = {s.name for s in settings.SETTINGS if s.fingerprint}
    assert not marked & {"snapshot_interval_s", "heap_poll_s", "path_percentiles_s"}
    assert {"timeout", "burst_clients", "insecure", "cacert"} <= marked


# A value other than the default for every run setting: a new setting fails the test below until
# it is given one here, so its fingerprint flag is checked. NEEDS: what it needs beside it.
CHANGED: dict[str, object] = {
    "runs": 5,
    **{f"{ph}_clients": 2 for ph in ("burst", "long")},
    **{f"{ph}_duration": 7.0 for ph in ("burst", "long")},
    **{f"{ph}_rate": 30.0 for ph in ("burst", "long")},
    "timeout": 2.5,
    "rate": 40.0,
    "arrivals": "poisson",
    "stages": ((5.0, 10.0),),
    "stages_unit": "clients",
    "max_stall_ms": 50.0,
    "metrics_retries": 3,
    "metrics_retry_delay_ms": 7,
    "between_runs_sleep_ms": 9,
    "post_phase_settle_ms": 11,
    "heartbeat_ms": 1000,
    "probe_path": "/status",
    "probe_retries": 2,
    "phase_timeout_multiplier": 3.0,
    "phase_timeout_min_s": 10.0,
    "hard_timeout_s": 100.0,
    "tag": "x",
    "note": "n",
    "build": "v2",
    "heap_poll_s": 2.0,
    "snapshot_interval_s": 1.0,
    "path_percentiles_s": 1.0,
    "metrics_port": 9999,
    "metrics_bind": "0.0.0.0",
    "max_error_rate": 1.0,
    "max_p95_ms": 10.0,
    "max_p99_ms": 10.0,
    "max_tail_p95_ratio": 1.1,
    "max_internal_free_drop": 1,
    "max_psram_free_drop": 1,
    "max_heap_slope": 100.0,
    "insecure": True,
    "cacert": "ca.pem",
    "cert": "c2.pem",
    "key": "k2.pem",
}
NEEDS: dict[str, dict[str, object]] = {
    "stages_unit": {"stages": ((5.0, 10.0),)},  # the unit of a ramp, nothing without one
    "cert": {"cert": "c.pem", "key": "k.pem"},  # a client certificate goes with its key
    "key": {"cert": "c.pem", "key": "k.pem"},
}


def test_the_registry_fingerprint_flag_is_what_the_fingerprint_holds(tmp_path: Path) -> None:
    """Changing a setting changes the fingerprint (`perftui.like`) exactly when the registry
    marks it `fingerprint=True`. The device is https, so that the TLS settings apply."""
    trustme = pytest.importorskip("trustme")
    from perftui.engine.record import measurement
    from perftui.like import fingerprint

    ca = trustme.CA()
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    client = ca.issue_cert("client.local")
    for n in ("", "2"):  # the same certificate and key under two names each
        client.cert_chain_pems[0].write_to_path(tmp_path / f"c{n}.pem")
        client.private_key_pem.write_to_path(tmp_path / f"k{n}.pem")
    profile = parse_profile('[[requests]]\npath = "/a"\n', "p", "p.toml")
    assert set(CHANGED) == {s.name for s in settings.SETTINGS}

    def key(given: dict[str, object]) -> str:
        files = {k: str(tmp_path / str(v)) for k, v in given.items() if k in settings_files}
        config = build_config(
            host="h", port=1, scheme="https", profiles=[profile], given=given | files
        )
        return fingerprint(measurement(config))

    settings_files = ("cacert", "cert", "key")
    for s in settings.SETTINGS:
        base = NEEDS.get(s.name, {})
        changed = key(base) != key(base | {s.name: CHANGED[s.name]})
        assert changed == s.fingerprint, s.name
