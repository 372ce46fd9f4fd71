"""The web server of `perftui serve` (textual-serve's `Server` behind a token check); loaded
only when `serve` runs, as it brings aiohttp."""

from __future__ import annotations

import hmac
import socket
from collections.abc import Awaitable, Callable

from aiohttp import web
from textual_serve.server import Server
from yarl import URL

COOKIE = "perftui_token"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class GuardedServer(Server):
    """textual-serve's Server with a token check in front of every route (when `token` is
    set) and the page's own URLs taken from the address the browser used."""

    def __init__(self, command: str, host: str, port: int, token: str | None) -> None:
        super().__init__(command, host=host, port=port, title="perftui")
        self.token = token

    def _allowed(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is not None and URL(origin).host_port_subcomponent != request.host:
            # Another site's page in the same browser: websockets are not bound by CORS, and
            # the TUI it would drive can start runs. (No token on loopback by default.)
            return False
        if self.token is None:
            return True
        given = request.query.get("token") or request.cookies.get(COOKIE) or ""
        return hmac.compare_digest(given.encode(), self.token.encode())

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._allowed(request):
            raise web.HTTPForbidden(
                text="perftui serve: this page needs the token printed at start\n"
            )
        if request.path == "/":
            # A browser on another machine cannot use 0.0.0.0: the websocket URL the page is
            # given must be the address it was opened with.
            self.public_url = f"{request.scheme}://{request.host}"
        response = await handler(request)
        if self.token is not None and request.query.get("token"):
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict")
        return response

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        return app

    async def on_startup(self, app: web.Application) -> None:
        shown = socket.gethostname() if self.host in ("0.0.0.0", "::") else self.host
        shown = f"[{shown}]" if ":" in shown else shown
        query = f"?token={self.token}" if self.token else ""
        print(f"perftui serve: open http://{shown}:{self.port}/{query}  (Ctrl+C stops)", flush=True)
