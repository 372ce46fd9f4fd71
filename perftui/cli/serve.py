"""`perftui serve`: the TUI (or `attach RUN`) in a browser, through textual-serve.

Each browser tab starts its own `perftui` process in a pseudo-terminal (textual-serve's
`Server`), so a tab is one more viewer: the run itself belongs to its engine or host process.
Bound to loopback by default. Bound beyond it, anyone who can reach the port could start runs
against any device, so every request must then carry a token printed at start: the URL's
`?token=` on the first request, a cookie (set by that answer) on the page's own requests and its
websocket afterwards. A request without it is refused with 403.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from perftui.config import EXIT_COULD_NOT_RUN, EXIT_OK, default_history_dir
from perftui.validate import PORT

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the page on this machine (127.0.0.0/8, ::1, localhost)."""
    import ipaddress  # the helpers import here: the parser registers `serve` on every start

    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve to anything


def command(history_dir: Path, run: str | None) -> str:
    """The shell command each browser tab runs: the TUI, or `attach RUN`."""
    import shlex

    base = [sys.executable, "-m", "perftui", "--history-dir", str(history_dir)]
    return shlex.join([*base, "attach", run] if run else base)


def token_for(host: str, given: str | None) -> str | None:
    """The token requests must carry: the one given, else a random one beyond loopback."""
    import secrets

    if given is None and not is_loopback(host):
        return secrets.token_urlsafe(18)
    return given


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve until Ctrl+C (or SIGTERM)."""
    from perftui.cli.serve_app import GuardedServer

    token = token_for(args.host, args.token)
    history = getattr(args, "history_dir", None) or default_history_dir()
    server = GuardedServer(command(Path(history).resolve(), args.run), args.host, args.port, token)
    try:
        server.serve()
    except OSError as exc:  # the port is taken, the address is not this machine's, …
        print(f"perftui: could not serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_COULD_NOT_RUN
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="the TUI (or `attach RUN`) in a browser (textual-serve)")
    p.add_argument("run", metavar="RUN", nargs="?", help="serve `perftui attach RUN` instead")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=PORT, default=8000, help="port (default 8000)")
    p.add_argument(
        "--token",
        help="require this token in the URL (default: a random one printed at start when bound "
        "beyond loopback; none on loopback)",
    )
    p.set_defaults(func=cmd_serve)
