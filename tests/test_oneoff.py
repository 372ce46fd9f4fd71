"""One-off requests without a profile file: `-m/-H/-d` (hey, oha) and vegeta's targets file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from perftui.cli.main import main
from perftui.profiles import ProfileError, read_targets
from tests.engine_helpers import FAST, NO_LATENCY_GATES, RecordingServer, latest

BODY = '{"name": "x", "n": [1, 2.50, "é"]}\n'  # spacing, a trailing zero, UTF-8: kept as is


@pytest.fixture(scope="module")
def server():
    with RecordingServer() as s:
        yield s


def test_post_with_headers_and_body_arrives_byte_for_byte(server, tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_bytes(BODY.encode())
    server.seen.clear()
    url = f"http://127.0.0.1:{server.port}/api/items?x=1"
    argv = ["run", url, "-m", "post", "-H", "Content-Type: application/json"]
    argv += ["-H", "X-Key: secret 1", "-d", f"@{body}", "--history-dir", str(tmp_path)]
    assert main([*argv, *FAST, *NO_LATENCY_GATES]) == 0
    assert server.seen
    for method, path, headers, raw in server.seen:
        assert (method, path, raw) == ("POST", "/api/items?x=1", BODY.encode())
        assert headers["Content-Type"] == "application/json" and headers["X-Key"] == "secret 1"
    sent = latest(tmp_path)["profile_definitions"]["oneoff"]["requests"]
    assert sent == [
        {
            "path": "/api/items?x=1",
            "method": "POST",
            "headers": {"Content-Type": "application/json", "X-Key": "secret 1"},
            "body": BODY,
            "weight": 1,
        }
    ]  # stored with the run, so a comparison knows what was sent


def test_targets_file_of_three_requests_is_spread_evenly(server, tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text('{"k": 1}')
    base = f"http://127.0.0.1:{server.port}"
    (tmp_path / "targets.txt").write_text(
        f"GET {base}/a\n\n# a comment\nPOST {base}/b\nContent-Type: application/json\n"
        f"@{tmp_path / 'b.json'}\n\nDELETE {base}/c\nX-Why: test\n"
    )
    server.seen.clear()
    argv = ["run", "--targets", str(tmp_path / "targets.txt"), "--history-dir", str(tmp_path)]
    assert main([*argv, *FAST, *NO_LATENCY_GATES]) == 0
    counts = Counter((m, p) for m, p, _, _ in server.seen)
    assert set(counts) == {("GET", "/a"), ("POST", "/b"), ("DELETE", "/c")}
    assert max(counts.values()) - min(counts.values()) <= 4  # round-robin, 4 clients
    posts = [(h, b) for m, _, h, b in server.seen if m == "POST"]
    assert all(b == b'{"k": 1}' and h["Content-Type"] == "application/json" for h, b in posts)
    assert all(h["X-Why"] == "test" for m, _, h, _ in server.seen if m == "DELETE")
    assert latest(tmp_path)["target"] == f"127.0.0.1:{server.port}"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("GET http://a:1/x\n\nGET http://b:1/y\n", "not the file's device"),
        ("FETCH http://a:1/x\n", "unknown method"),
        ("GET /x\n", "expected 'METHOD http(s)://host[:port]/path'"),
        ("GET http://a:1/x\nbad header\n", "not K: V"),
        ("\n# nothing\n", "no target"),
    ],
)
def test_bad_targets_file_names_its_line(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "t.txt").write_text(text)
    with pytest.raises(ProfileError) as caught:
        read_targets(tmp_path / "t.txt")
    assert needle in str(caught.value) and str(caught.value).startswith(f"{tmp_path / 't.txt'}")


def test_oneoff_bad_input_is_one_line(tmp_path: Path, capsys) -> None:
    argv = ["run", "http://127.0.0.1:1/x", "-d", "@missing.json", "--history-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such body file" in err
