"""A loopback HTTP server that answers `/delay` after a fixed sleep: the fidelity yardstick.

Because every response takes exactly `--delay-ms` on the server, any latency a load generator
reports above that is the generator's own (or the shared CPU's) doing, which is what the
fidelity benchmark compares against wrk. Several worker processes share the port with
SO_REUSEPORT so that the server is not the bottleneck at 64 clients × 20 ms (3,200 req/s) even
though the load generator shares the same two cores. It always stops by itself after
`--max-seconds`.

With `--stall-every S --stall-ms M` it also freezes like a firmware doing a flash write or a GC:
for the last M ms of every S s (counted from the server's start, the same for every worker) no
response leaves; what was due waits for the freeze to end. That is the coordinated-omission
yardstick of bench/bench_openloop.py.

    python bench/delay_server.py --port 18080 --delay-ms 20 --max-seconds 120
    python bench/delay_server.py --port 18080 --delay-ms 5 --stall-every 5 --stall-ms 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import signal
import ssl
import sys
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

BODY = b"ok " + b"x" * 61 + b"\n"  # a small fixed body (65 bytes)


@dataclass(frozen=True)
class Freeze:
    """The last `stall_s` of every `every_s` since `epoch` (wall clock, shared by the workers)."""

    epoch: float
    every_s: float
    stall_s: float

    def remaining(self, now: float) -> float:
        """Seconds left of the freeze `now` is in (0 outside one)."""
        into = (now - self.epoch) % self.every_s
        return self.every_s - into if into > self.every_s - self.stall_s else 0.0


def _make_app(delay_s: float, freeze: Freeze | None) -> web.Application:
    """One route: sleep `delay_s`, then 200 with a small body (after the freeze, if one is
    on). Everything else is 404 at once."""

    async def delay(_request: web.Request) -> web.Response:
        await asyncio.sleep(delay_s)
        if freeze is not None and (left := freeze.remaining(time.time())) > 0:
            await asyncio.sleep(left)
        return web.Response(body=BODY, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/delay", delay)
    app.router.add_post("/delay", delay)  # a one-off POST's target (the body is not read)
    return app


async def _serve(
    host: str,
    port: int,
    delay_s: float,
    deadline: float,
    freeze: Freeze | None,
    tls: tuple[str, str] | None = None,
) -> None:
    runner = web.AppRunner(_make_app(delay_s, freeze), access_log=None, handle_signals=False)
    await runner.setup()
    ctx = None
    if tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*tls)
    site = web.TCPSite(runner, host, port, reuse_port=True, backlog=1024, ssl_context=ctx)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, deadline - time.time()))
    await runner.cleanup()


def _worker(*serve_args: Any) -> None:
    """Run one server process (`_serve`'s arguments) on uvloop (falls back to asyncio's loop if
    uvloop is missing)."""
    try:
        import uvloop

        uvloop.run(_serve(*serve_args))
    except ImportError:
        asyncio.run(_serve(*serve_args))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1", help="loopback only (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--delay-ms", type=float, default=20.0)
    ap.add_argument("--workers", type=int, default=2, help="server processes (SO_REUSEPORT)")
    ap.add_argument("--max-seconds", type=float, default=300.0, help="stop by itself after this")
    ap.add_argument("--stall-every", type=float, default=0.0, help="freeze every S s (0 = never)")
    ap.add_argument("--stall-ms", type=float, default=1000.0, help="each freeze lasts M ms")
    ap.add_argument("--certfile", help="serve https with this certificate (PEM; with --keyfile)")
    ap.add_argument("--keyfile", help="the certificate's private key (PEM)")
    args = ap.parse_args(argv)
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        ap.error("the delay server only listens on loopback")
    if args.stall_every and not 0 < args.stall_ms / 1000 < args.stall_every:
        ap.error("--stall-ms must be > 0 and shorter than --stall-every")

    now = time.time()
    deadline = now + args.max_seconds
    freeze = Freeze(now, args.stall_every, args.stall_ms / 1000) if args.stall_every else None
    ctx = mp.get_context("fork")
    procs = [
        ctx.Process(
            target=_worker,
            args=(
                args.host,
                args.port,
                args.delay_ms / 1000,
                deadline,
                freeze,
                (args.certfile, args.keyfile) if args.certfile else None,
            ),
            daemon=True,
        )
        for _ in range(max(1, args.workers))
    ]
    for p in procs:
        p.start()

    def _stop(_sig: int, _frame: object) -> None:
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(
        f"delay_server: {'https' if args.certfile else 'http'}://{args.host}:{args.port}/delay, "
        f"{args.delay_ms:g} ms, "
        f"{len(procs)} worker(s), stops in {args.max_seconds:g} s",
        file=sys.stderr,
        flush=True,
    )
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.time()) + 5)
    for p in procs:
        if p.is_alive():
            p.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
