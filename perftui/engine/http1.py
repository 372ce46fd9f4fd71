"""A lean HTTP/1.1 keep-alive connection for the load path: asyncio transport + httptools parser.

Why not aiohttp here: profiled at the ceiling (nginx, 1 KB, 32 clients), aiohttp's
`ClientSession._request` took two thirds of the engine's core and capped it at ~11.5k req/s,
under the 0.3 × hey target; this connection reaches several times that on the same core, and
every microsecond it does not spend is one that is not added to a reported latency. The response
parsing (status line, headers, Content-Length, chunked bodies, keep-alive) is httptools, the
parser uvicorn uses; what is left here is writing a request and waiting for its response.

One `Connection` belongs to one client and carries one request at a time, like the legacy
runner's thread-per-client. The one resend: an idempotent request (RFC 9110 §9.2.2) that met the
idle-close race is sent once more on a new connection, and counted (`Connection.resent`); a POST
or PATCH never is, and every other failure is reported as what it is.
"""

from __future__ import annotations

import asyncio
import ssl
import time

import httptools

from perftui import __version__

USER_AGENT = f"perftui/{__version__}"
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE"})  # RFC 9110


class ResponseError(Exception):
    """The device's bytes were not a valid HTTP/1.1 response."""


def host_header(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def build_request(
    method: str, target: str, host: str, headers: tuple[tuple[str, str], ...], body: str
) -> bytes:
    """The request's bytes, built once per client and sent as they are for every repetition."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", f"User-Agent: {USER_AGENT}"]
    names = {k.lower() for k, _ in headers}
    if "accept" not in names:
        lines.append("Accept: */*")
    lines += [f"{k}: {v}" for k, v in headers]
    payload = body.encode("utf-8")
    if payload or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


class IdleClose(ConnectionResetError):
    """The device closed a kept-alive connection cleanly before answering a byte: the idle-close
    race every keep-alive client meets (ESP-IDF purges idle sockets this way)."""


class _Protocol(asyncio.Protocol):
    """Feeds received bytes to httptools and resolves the waiting request's future."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.status = 0
        self.finished_at = 0.0
        self.keep_alive = True
        self.head = False
        self.closed = False
        self.got_bytes = False
        self.headers_done = False
        self.framed = False  # Content-Length or chunked; else the body ends when the device closes

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            # Bytes nobody asked for (a body after a HEAD, junk after a response): the stream is
            # out of step, so the connection must not carry another request.
            self.closed = True
            if self.transport is not None:
                self.transport.abort()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ResponseError("unexpected protocol upgrade"))
        except httptools.HttpParserError as exc:
            self._fail(ResponseError(f"malformed response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is None and self.headers_done and not self.framed:
            self._done()  # an HTTP/1.0-style body delimited by the close is complete now
            self.keep_alive = False
            return
        if exc is None and not self.got_bytes:
            exc = IdleClose("the device closed the kept-alive connection before answering")
        self._fail(exc or ConnectionResetError("connection closed by the device"))

    def eof_received(self) -> bool | None:
        self.closed = True
        return None

    def _fail(self, exc: BaseException) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def _done(self) -> None:
        """The response is complete: stamp the time here, before the client task resumes."""
        if self.waiter is None or self.waiter.done():
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            return  # an interim response (100 Continue…): the real one follows
        self.finished_at = time.perf_counter()
        self.status = status
        self.keep_alive = self.parser.should_keep_alive()
        self.waiter.set_result(None)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.headers_done = self.framed = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headers_done = True
        if self.head:  # a HEAD response announces a body it does not send
            self._done()
            self.parser = httptools.HttpResponseParser(self)

    def on_message_complete(self) -> None:
        self._done()


BODY_KEPT = 1 << 20  # a response check reads at most this much of a body (its length: all)


class _BodyProtocol(_Protocol):
    """Also keeps the body, for the profile's response checks; httptools calls `on_body` only
    when the protocol has it, so a profile without checks pays nothing for this."""

    def __init__(self) -> None:
        super().__init__()
        self.body = bytearray()
        self.body_len = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.body.clear()
        self.body_len = 0

    def on_body(self, data: bytes) -> None:
        self.body_len += len(data)
        if len(self.body) < BODY_KEPT:
            self.body += data[: BODY_KEPT - len(self.body)]


class Connection:
    """One keep-alive connection, reopened when the device closes it or an error spoils it."""

    def __init__(
        self, host: str, port: int, tls: ssl.SSLContext | None = None, keep_body: bool = False
    ) -> None:
        self.host = host
        self.port = port
        self.ssl = tls
        self.keep_body = keep_body
        self.body = b""  # the last response's body, when kept (keep_body)
        self.body_len = 0
        self._proto: _Protocol | None = None
        self.resent = 0  # times the last `send` re-sent its request (0 or 1)
        self.handshakes: list[float] = []  # seconds of each TLS handshake (new connections)

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        factory = _BodyProtocol if self.keep_body else _Protocol
        transport, proto = await loop.create_connection(factory, self.host, self.port)
        if self.ssl is not None:
            # TCP first, then the handshake on its own clock: on an ESP32 it is most of the cost
            # of a new connection, and it is reported per phase.
            started = time.perf_counter()
            try:
                tls_transport = await loop.start_tls(
                    transport, proto, self.ssl, server_hostname=self.host
                )
            except BaseException:
                transport.abort()
                raise
            self.handshakes.append(time.perf_counter() - started)
            proto.transport = tls_transport  # type: ignore[assignment]
        return proto

    async def send(self, raw: bytes, head: bool = False) -> tuple[int, float]:
        """Send one request and wait for its whole response: (status, perf_counter at its end).

        A kept-alive connection the device closed cleanly before answering is reopened and an
        idempotent request sent once more (RFC 9112 §9.3.1 allows it; `resent` counts it); a
        non-idempotent one fails as a reset, like every other failure.
        """
        self.resent = 0
        for attempt in (1, 2):
            proto = self._proto
            fresh = proto is None or proto.closed
            if fresh:
                proto = self._proto = await self._open()
            assert proto is not None and proto.transport is not None
            loop = asyncio.get_running_loop()
            proto.waiter = waiter = loop.create_future()
            proto.head = head
            proto.got_bytes = proto.headers_done = proto.framed = False
            proto.transport.write(raw)
            try:
                await waiter
            except IdleClose:
                self.close(abort=True)
                if fresh or attempt == 2 or raw.split(b" ", 1)[0] not in IDEMPOTENT:
                    raise
                self.resent = 1
                continue
            except BaseException:
                self.close(abort=True)  # timed out, reset or garbled: it cannot carry another
                raise
            if self.keep_body:
                self.body, self.body_len = bytes(proto.body), proto.body_len  # type: ignore[attr-defined]
            if not proto.keep_alive:
                self.close()
            return proto.status, proto.finished_at
        raise AssertionError("unreachable")  # the loop returns or raises

    def close(self, abort: bool = False) -> None:
        proto, self._proto = self._proto, None
        if proto is None or proto.transport is None:
            return
        if abort:
            proto.transport.abort()
        else:
            proto.transport.close()
