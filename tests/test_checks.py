"""Response checks in profiles: an answer that fails its check is an error of kind "check",
counted per path, whatever its status."""

from __future__ import annotations

from pathlib import Path

import pytest

from perftui.cli.main import main
from perftui.profiles import ProfileError, parse_profile
from tests.engine_helpers import FAST, RecordingServer, first_report, latest

PROFILE = """
[[requests]]
path = "/good"
check = { body_contains = "ok", json = { "state" = "ok" } }

[[requests]]
path = "/bad"
check = { body_contains = "ok" }

[[requests]]
path = "/gone"
check = { status = [404] }

[[requests]]
path = "/big"
check = { max_body_bytes = 10 }
"""
ANSWERS = {
    "/good": (200, b'{"state": "ok"}'),
    "/bad": (200, b"<html>error page</html>"),
    "/gone": (404, b"nope"),
    "/big": (200, b"x" * 11),
}


def test_a_200_with_a_wrong_body_is_counted_under_check(tmp_path: Path, capsys) -> None:
    (tmp_path / "checked.toml").write_text(PROFILE)
    with RecordingServer(lambda r: ANSWERS.get(r.path, (200, b"ok"))) as server:
        argv = ["run", "127.0.0.1", "--port", str(server.port), "--history-dir", str(tmp_path)]
        code = main([*argv, "--profiles", str(tmp_path / "checked.toml"), *FAST])
    report = first_report(latest(tmp_path))
    paths = report["path_metrics"]
    assert paths["/good"]["err"] == 0 and paths["/good"]["ok"] > 0
    assert paths["/gone"]["err"] == 0 and paths["/gone"]["ok"] > 0  # 404 was the expected status
    for path in ("/bad", "/big"):
        assert paths[path]["ok"] == 0
        assert paths[path]["errors_by_kind"]["check"] == paths[path]["err"] > 0
    assert report["errors_by_kind"]["check"] == paths["/bad"]["err"] + paths["/big"]["err"]
    assert report["checks_failed"]["/bad"]["first"] == "body lacks 'ok'"
    assert report["checks_failed"]["/big"]["first"] == "body 11 B > 10 B"
    assert code == 1  # half the requests failed: the error-rate gate
    assert "check failed" in capsys.readouterr().err
    stored = latest(tmp_path)["profile_definitions"]["checked"]["requests"][2]
    assert stored["check"] == {"status": [404]}  # stored with the run, and fingerprinted


def test_json_field_check() -> None:
    check = parse_profile(PROFILE, "p", "p.toml").requests[0].check
    assert check is not None
    assert check.problem(200, b'{"state": "ok"}', 15) is None
    assert check.problem(200, b'{"state": "busy", "ok": 1}', 26) == "JSON state = 'busy', not 'ok'"
    assert check.problem(200, b"ok, not json", 12) == "body is not JSON"
    assert check.problem(500, b'{"state": "ok"}', 15) == "status 500"


@pytest.mark.parametrize(
    ("check", "needle"),
    [
        ("{ status = [99] }", "HTTP codes"),
        ("{ nope = 1 }", "unknown key 'nope'"),
        ("{ max_body_bytes = 0 }", "max_body_bytes"),
    ],
)
def test_bad_check_names_its_line(check: str, needle: str) -> None:
    with pytest.raises(ProfileError, match=needle):
        parse_profile(f'[[requests]]\npath = "/x"\ncheck = {check}\n', "p", "p.toml")
