"""Run nginx on 127.0.0.1 from a temporary prefix, serving `/1k.bin` (1,024 bytes).

It is the ceiling target: a server far faster than any Python load generator, so the requests
per second a tool reaches against it measure the tool, not the server. nginx runs in the
foreground (`daemon off;`) under coreutils `timeout`, so it stops by itself even if the
benchmark script dies; leaving the `with` block ends it earlier.

    python bench/nginx_run.py --port 18081 --max-seconds 60   # serve for a minute, by hand
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Self

from common import ServerProcess

HERE = Path(__file__).resolve().parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
FILE_NAME = "1k.bin"
FILE_SIZE = 1024
JSON_NAME = "status.json"  # a device-like JSON answer (~1 KB) for response checks
JSON_BODY = json.dumps({"ok": True, "heap": {"free": 123456}, "log": "x" * 960}).encode()


class Nginx(ServerProcess):
    """One nginx instance (master + 1 worker) and its temporary prefix."""

    name = "nginx"

    def __init__(
        self, port: int, max_seconds: float, tls_port: int | None = None, tls: Path | None = None
    ) -> None:
        """`tls_port` with `tls` (a directory holding cert.pem and key.pem) also serves https."""
        super().__init__(port, max_seconds)
        self.tls_port, self.tls = tls_port, tls
        self.prefix = Path(tempfile.mkdtemp(prefix="perftui-bench-nginx-"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{FILE_NAME}"

    def command(self) -> list[str]:
        conf = self.prefix / "nginx.conf"
        nginx = [
            NGINX,
            "-p",
            str(self.prefix),
            "-e",
            str(self.prefix / "error.log"),
            "-c",
            str(conf),
        ]
        # `timeout` forwards SIGTERM to nginx and ends it by itself at the deadline
        return ["timeout", "-k", "5", str(int(self.max_seconds)), *nginx]

    def __enter__(self) -> Self:
        # nginx workers drop root to `nobody`, which must be able to read the prefix
        os.chmod(self.prefix, 0o755)
        www = self.prefix / "www"
        www.mkdir()
        (www / FILE_NAME).write_bytes(bytes(i % 251 for i in range(FILE_SIZE)))
        (www / JSON_NAME).write_bytes(JSON_BODY)
        tls = ""
        if self.tls_port and self.tls:
            tls = (
                f"listen 127.0.0.1:{self.tls_port} ssl reuseport; "
                f"ssl_certificate {self.tls / 'cert.pem'}; "
                f"ssl_certificate_key {self.tls / 'key.pem'};"
            )
        conf = (HERE / "nginx.conf").read_text().replace("@TLS@", tls)
        conf = conf.replace("@PREFIX@", str(self.prefix)).replace("@PORT@", str(self.port))
        (self.prefix / "nginx.conf").write_text(conf)
        try:
            return super().__enter__()
        except RuntimeError as exc:
            err_log = self.prefix / "error.log"
            detail = err_log.read_text()[-500:] if err_log.exists() else ""
            shutil.rmtree(self.prefix, ignore_errors=True)
            raise RuntimeError(f"{exc}: {detail}") from exc

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        shutil.rmtree(self.prefix, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=18081)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    args = ap.parse_args(argv)
    with Nginx(args.port, args.max_seconds) as ng:
        print(f"nginx_run: {ng.url} for {args.max_seconds:g} s", file=sys.stderr, flush=True)
        assert ng.proc is not None
        with contextlib.suppress(KeyboardInterrupt, subprocess.TimeoutExpired):
            ng.proc.wait(timeout=args.max_seconds + 10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
