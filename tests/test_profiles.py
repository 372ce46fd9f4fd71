"""Profiles: the six built-ins, ad-hoc paths, and one clear error for every malformed file."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perftui.profiles import (
    ProfileError,
    adhoc_profile,
    builtin_names,
    parse_profile,
    resolve_profile,
    resolve_profiles,
)

REFERENCE_PATHS = {
    "c_static_only": ["/file", "/static/large.txt"],
    "python_light": [
        "/hello",
        "/api/ping",
        "/deps",
        "/query-typed?q=abc&page=2&ratio=1.5&active=true",
    ],
    "python_heavy": [
        "/template",
        "/template-compat?name=Ana&count=2&role=user&roles=user,viewer&items=a,b,c",
    ],
    "api": [
        "/hello",
        "/api/ping",
        "/query-typed?q=abc&page=2&ratio=1.5&active=true",
        "/deps",
        "/template",
    ],
    "static": ["/file", "/template"],
    "mixed": [
        "/hello",
        "/api/ping",
        "/query-typed?q=abc&page=2&ratio=1.5&active=true",
        "/deps",
        "/template",
        "/file",
    ],
}


def test_builtins_are_the_reference_profiles() -> None:
    assert set(builtin_names()) == set(REFERENCE_PATHS)
    for name, paths in REFERENCE_PATHS.items():
        profile = resolve_profile(name)
        assert profile.paths == paths
        assert profile.description


def test_weights_repeat_requests_in_the_cycle() -> None:
    text = '[[requests]]\npath = "/a"\nweight = 3\n[[requests]]\npath = "/b"\n'
    assert [r.path for r in parse_profile(text, "w", "w.toml").sequence()] == ["/a"] * 3 + ["/b"]


def test_full_request_definition_and_secret_masking() -> None:
    text = """
description = "post things"
secret_headers = ["X-Token"]
[phases.burst]
clients = 3
duration = 1.5
[[requests]]
path = "/api"
method = "post"
body = '{"a": 1}'
headers = { Authorization = "Bearer s3cret", X-Token = "t", Accept = "application/json" }
"""
    profile = parse_profile(text, "p", "p.toml")
    assert profile.name == "p"
    req = profile.requests[0]
    assert (req.method, req.body) == ("POST", '{"a": 1}')
    assert profile.phases == {"burst": {"clients": 3, "duration": 1.5}}
    headers = profile.definition()["requests"][0]["headers"]
    assert headers == {"Authorization": "***", "X-Token": "***", "Accept": "application/json"}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("requests = [", "invalid TOML"),
        ('description = "x"\n', "needs at least one [[requests]]"),
        ('[[requests]]\npath = "hello"\n', ":2: request 1: path 'hello' must start with '/'"),
        ('colour = "red"\n[[requests]]\npath = "/a"\n', ":1: unknown key 'colour'"),
        ('[[requests]]\npath = "/a"\nverb = "GET"\n', ":3: request 1: unknown key 'verb'"),
        ('[[requests]]\npath = "/a"\nmethod = "FETCH"\n', "unknown method 'FETCH'"),
        ('[[requests]]\npath = "/a"\nweight = 0\n', "weight must be an integer"),
        ('[phases.soak]\nclients = 1\n[[requests]]\npath = "/a"\n', "unknown phase 'soak'"),
        ('[phases.burst]\nclients = -1\n[[requests]]\npath = "/a"\n', "clients must be"),
        ("[[requests]]\nmethod = 'GET'\n", "missing path"),
        ('[phases.long]\nduration = inf\n[[requests]]\npath = "/a"\n', "duration must be"),
        ('[[requests]]\npath = "/a"\nheaders = { Host = "x" }\n', "'Host' is set by perftui"),
        ('[[requests]]\npath = "/a"\nheaders = { X-A = "a\\r\\nB: c" }\n', "invalid header"),
        ('[[requests]]\npath = "/a"\nheaders = { "bad name" = "v" }\n', "invalid header"),
    ],
)
def test_malformed_profiles_give_one_line_naming_file_and_problem(text: str, needle: str) -> None:
    with pytest.raises(ProfileError) as err:
        parse_profile(text, "bad", "bad.toml")
    message = str(err.value)
    assert message.startswith("bad.toml")
    assert needle in message
    assert "\n" not in message


def test_resolve_by_path_and_unknown_name(tmp_path: Path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text('description = "mine"\n[[requests]]\npath = "/x"\n')
    assert resolve_profiles(f"python_light,{f}")[1].paths == ["/x"]
    with pytest.raises(ProfileError, match="unknown profile 'nope'"):
        resolve_profiles("nope")
    with pytest.raises(ProfileError, match="no such profile file"):
        resolve_profile(str(tmp_path / "missing.toml"))
    with pytest.raises(ProfileError, match="empty"):
        resolve_profiles(" , ")


def test_adhoc_profile() -> None:
    assert adhoc_profile("/a, /b").paths == ["/a", "/b"]
    assert adhoc_profile(r"/a\u0041,/q?x='1'").paths == [r"/a\u0041", "/q?x='1'"]
    with pytest.raises(ProfileError):
        adhoc_profile("a")
    with pytest.raises(ProfileError):
        adhoc_profile(",")


@given(st.text(max_size=300))
def test_parser_never_fails_with_anything_but_profile_error(text: str) -> None:
    try:
        profile = parse_profile(text, "h", "h.toml")
    except ProfileError as exc:
        assert "\n" not in str(exc).strip() or "invalid TOML" in str(exc)
    else:
        assert profile.requests and all(r.path.startswith("/") for r in profile.requests)
