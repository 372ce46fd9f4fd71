"""The run record keeps the settings that shape a run's load and measurement, and a fingerprint
that changes exactly when they do."""

from __future__ import annotations

from datetime import UTC, datetime

from perftui.config import PhaseSettings, RunConfig
from perftui.engine.record import build, measurement
from perftui.like import setting_differences, settings_key
from perftui.profiles import resolve_profiles


def _config(**changes: object) -> RunConfig:
    config = RunConfig("127.0.0.1", port=4321, profiles=resolve_profiles("python_light"))
    for name, value in changes.items():
        setattr(config, name, value)
    return config


def _record(config: RunConfig) -> dict:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    return build(
        config,
        run_id="r",
        started=now,
        finished=now,
        status="finished",
        raw_runs=[],
        hard_stop_reason=None,
        previous=None,
        meta={},
    )


def test_measurement_settings_and_fingerprint() -> None:
    base = _record(_config())
    settings = base["measurement"]
    burst = settings["phases"]["python_light:burst"]
    assert burst == {"clients": 12, "duration": 20.0, "rate": None}
    assert settings["arrivals"] == "constant"
    assert settings["timeout"] == 6.0 and "telemetry_interval_s" not in settings
    assert settings["profiles"]["python_light"]["requests"]
    assert base["device"] is None
    # What does not shape the measurement (the tag, the history dir, the port) leaves it alone.
    # Nor how often a viewer is sent snapshots, per-path percentiles or heap readings: the TUI
    # asks for them, the CLI does not, and their runs must gate each other.
    for same_config in (
        _config(tag="x", port=9999, runs=5),
        _config(snapshot_interval_s=0.2, telemetry_interval_s=2.0, path_percentiles_s=1.0),
    ):
        same = _record(same_config)
        assert same["settings_fingerprint"] == base["settings_fingerprint"]
        assert same["measurement"] == settings
    for changed in (
        _config(timeout=2.0),
        _config(burst=PhaseSettings(4, 20.0)),
        _config(burst=PhaseSettings(12, 20.0, rate=50.0)),  # open loop
        _config(arrivals="poisson"),
    ):
        record = _record(changed)
        assert record["settings_fingerprint"] != base["settings_fingerprint"]
        assert record["measurement"] != settings


def test_the_sim_is_one_device_whatever_its_port() -> None:
    a = _record(_config(device="sim", port=4001))
    b = _record(_config(device="sim", port=4377))
    assert a["device"] == b["device"] == "sim"
    assert a["target"] != b["target"]
    assert measurement(_config(port=1)) == measurement(_config(port=2))


def test_a_record_written_before_keeps_matching_a_new_one() -> None:
    """Records stored with the view-only keys in `measurement` (and a digest over them) match
    new records made the same way: the key is recomputed, the differences ignore them."""
    new = _record(_config())
    old = dict(new)
    old["measurement"] = {
        **new["measurement"],
        "snapshot_interval_s": 0.2,
        "telemetry_interval_s": 2.0,
        "path_percentiles_s": 1.0,
    }
    old["settings_fingerprint"] = "0123456789abcdef"  # the digest the old code wrote
    assert settings_key(old) == settings_key(new) == new["settings_fingerprint"]
    assert setting_differences(old, new) == []
    slower = _record(_config(timeout=2.0))
    assert setting_differences(old, slower) == ["timeout: A 6.0, B 2.0"]
