"""Bad input to `perftui run`: one clear line, exit 2, nothing written, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perftui.cli.main import main
from perftui.validate import UsageError, parse_target

BAD_FLAGS = [
    ["--runs", "0"],
    ["--runs", "-1"],
    ["--runs", "two"],
    ["--runs", "1.5"],
    ["--port", "0"],
    ["--port", "70000"],
    ["--port", "http"],
    ["--timeout", "0"],
    ["--timeout", "nan"],
    ["--timeout", "-3"],
    ["--burst-clients", "0"],
    ["--long-clients", "x"],
    ["--burst-duration", "-1"],
    ["--long-duration", "inf"],
    ["--metrics-retries", "-1"],
    ["--metrics-retry-delay-ms", "0.5"],
    ["--post-phase-settle-ms", "-5"],
    ["--between-runs-sleep-ms", "x"],
    ["--heartbeat-ms", "0"],
    ["--phase-timeout-multiplier", "0"],
    ["--phase-timeout-min-s", "-1"],
    ["--hard-timeout-s", "-1"],
    ["--probe-path", "hello"],
    ["--probe-retries", "0"],
    ["--max-error-rate", "-1"],
    ["--max-p95-ms", "0"],
    ["--max-p99-ms", "abc"],
    ["--max-tail-p95-ratio", "0"],
    ["--max-internal-free-drop", "-1"],
    ["--max-psram-free-drop", "1e3x"],
    ["--profiles", "nope"],
    ["--profiles", ""],
    ["--profiles", ","],
    ["--paths", "noslash"],
    ["--tag", "!!!"],
    ["--burst-duration", "0", "--long-duration", "0"],
    ["--unknown-flag"],
]


@pytest.mark.parametrize("flags", BAD_FLAGS, ids=lambda f: " ".join(f))
def test_bad_flag_is_one_line_exit_2_nothing_written(flags, tmp_path: Path, capsys) -> None:
    history = tmp_path / "h"
    with pytest.raises(SystemExit) if _argparse_level(flags) else _nothing():
        code = main(["run", "127.0.0.1", "--history-dir", str(history), *flags])
        assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("perftui")
    assert "error" in err and "Traceback" not in err
    assert not history.exists()


def _argparse_level(flags: list[str]) -> bool:
    return flags[0] not in ("--profiles", "--paths", "--tag") and flags != [
        "--burst-duration",
        "0",
        "--long-duration",
        "0",
    ]


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_argparse_errors_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "127.0.0.1", "--runs", "0"])
    assert exc.value.code == 2
    assert (
        capsys.readouterr().err
        == "perftui run: error: argument --runs: '0' is not an integer > 0\n"
    )


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("192.168.0.135", None, ("http", "192.168.0.135", 8080)),
        ("esp32.local:81", None, ("http", "esp32.local", 81)),
        ("http://10.0.0.2:9000/", None, ("http", "10.0.0.2", 9000)),
        ("https://dev.example", None, ("https", "dev.example", 8080)),
        ("::1", 8081, ("http", "::1", 8081)),
        ("[::1]:8082", None, ("http", "::1", 8082)),
    ],
)
def test_target_spellings(host: str, port: int | None, expected: tuple) -> None:
    assert parse_target(host, port) == expected


@pytest.mark.parametrize(
    "host",
    [
        "http://10.0.0.2/api",
        "ftp://x",
        "a b",
        "host:99999",
        "host:1:2:zz",
        "esp/1",
        "http://:80",
        "[::1]:abc",
        "[::1]:99999",
        "[::1]x",
        "http://h:0",
    ],
)
def test_bad_targets(host: str) -> None:
    with pytest.raises(UsageError):
        parse_target(host, None)


def test_missing_host_and_unresolvable_host(tmp_path: Path, capsys) -> None:
    assert main(["run", "--history-dir", str(tmp_path / "a")]) == 2
    assert "HOST is required" in capsys.readouterr().err
    code = main(["run", "no-such-host.invalid", "--history-dir", str(tmp_path / "b")])
    assert code == 3
    assert "cannot resolve host 'no-such-host.invalid'" in capsys.readouterr().err


def test_unwritable_history_dir_fails_before_load(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    assert main(["run", "127.0.0.1", "--history-dir", str(blocker / "h")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("perftui: could not run: history dir") and err.count("\n") == 1


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.sampled_from(
            [
                "--runs",
                "--port",
                "--timeout",
                "--tag",
                "--profiles",
                "--burst-duration",
                "--probe-path",
                "-x",
                "1",
                "0",
                "-2",
                "",
                "abc",
                "/p",
                "nan",
                "api",
            ]
        ),
        max_size=6,
    )
)
def test_any_argument_soup_never_tracebacks(tmp_path: Path, capsys, soup: list[str]) -> None:
    history = tmp_path / "soup"
    # An unreachable, unresolvable host: a valid command line fails at resolution (exit 3).
    try:
        code = main(["run", "no-such-host.invalid", "--history-dir", str(history), *soup])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code in (2, 3), err
    assert "Traceback" not in err and "internal error" not in err
