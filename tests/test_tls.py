"""https devices: a self-signed certificate is refused by name, trusted with --insecure or with
--cacert; the handshake is timed per phase (new connections only)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

trustme = pytest.importorskip("trustme")

from perftui.cli.main import main  # noqa: E402
from tests.engine_helpers import FAST, NO_LATENCY_GATES, RecordingServer, first_report, latest  # noqa: E402


@pytest.fixture(scope="module")
def https_device(tmp_path_factory) -> tuple[RecordingServer, Path]:
    """A loopback https server whose certificate is signed by a CA made here (so the system
    trust store does not know it, as an ESP32's self-signed one)."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with RecordingServer(tls=server_ctx) as server:
        yield server, ca_file


def _run(port: int, history: Path, *extra: str) -> int:
    url = f"https://127.0.0.1:{port}"
    return main(
        [
            "run",
            url,
            "--history-dir",
            str(history),
            "--paths",
            "/x",
            *FAST,
            *NO_LATENCY_GATES,
            *extra,
        ]
    )


def test_untrusted_certificate_is_one_named_line(https_device, tmp_path: Path, capsys) -> None:
    server, _ = https_device
    assert _run(server.port, tmp_path) == 3
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "TLS certificate not trusted" in line]
    assert len(lines) == 1 and "certificate" in lines[0].split("not trusted: ")[1]
    assert "--insecure" in lines[0]
    assert "retrying" not in err  # a certificate does not change between attempts
    # The hard stop says what happened: one attempt of the retries allowed, not retried.
    reason = latest(tmp_path)["hard_stop_reason"]
    assert "after 1 attempt of 2, not retried: TLS certificate not trusted" in reason, reason


@pytest.mark.parametrize("trust", ["--insecure", "--cacert"])
def test_trusted_https_run_times_its_handshakes(https_device, tmp_path: Path, trust) -> None:
    server, ca_file = https_device
    extra = ["--insecure"] if trust == "--insecure" else ["--cacert", str(ca_file)]
    assert _run(server.port, tmp_path, *extra) == 0
    record = latest(tmp_path)
    report = first_report(record)
    assert report["ok"] > 0 and report["error_rate"] == 0
    hs = report["tls_handshake_ms"]
    assert hs["count"] == 4 and 0 < hs["p50"] <= hs["max"]  # one per client: keep-alive
    assert record["measurement"]["tls"] == (
        {"insecure": True} if trust == "--insecure" else {"cacert": str(ca_file)}
    )


def test_tls_flags_need_https(tmp_path: Path, capsys) -> None:
    assert main(["run", "127.0.0.1", "--insecure", "--history-dir", str(tmp_path)]) == 2
    assert "need an https:// device" in capsys.readouterr().err


def test_setup_probe_uses_the_tls_fields(https_device) -> None:
    """The TUI's Setup probe trusts what the run will trust (its Advanced TLS fields)."""
    from perftui.config import TlsSettings
    from perftui.tui.session import probe

    server, ca_file = https_device
    base = f"https://127.0.0.1:{server.port}"
    healthy, text, _status = probe(base, "/hello")
    assert not healthy and "certificate not trusted" in text
    assert probe(base, "/hello", tls=TlsSettings(insecure=True).context())[0]
    assert probe(base, "/hello", tls=TlsSettings(cacert=str(ca_file)).context())[0]
