"""The 'what not to do' load generator: N tasks sharing one default `httpx.AsyncClient`.

This is the layout whose shared connection pool invents latency under concurrency (httpx
issue #3215); the fidelity table shows it next to wrk and perftui so the difference is measured,
not claimed. Prints one JSON object: p50/p99/mean (ms, linear interpolation between ranks like
the reference runner), rps, requests, errors.

    python bench/httpx_load.py http://127.0.0.1:18080/delay 64 10
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx


def percentile(sorted_vals: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (q in 0..100)."""
    if not sorted_vals:
        return None
    pos = (len(sorted_vals) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


async def _load(url: str, clients: int, duration: float) -> dict[str, float | int | None]:
    lat: list[float] = []
    errors = 0
    async with httpx.AsyncClient(timeout=6.0) as client:
        start = time.perf_counter()
        deadline = start + duration

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    r = await client.get(url)
                    ok = 200 <= r.status_code < 400
                except httpx.HTTPError:
                    ok = False
                if ok:
                    lat.append((time.perf_counter() - t0) * 1000)
                else:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    lat.sort()
    return {
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
        "mean_ms": sum(lat) / len(lat) if lat else None,
        "rps": (len(lat) + errors) / elapsed,
        "requests": len(lat) + errors,
        "errors": errors,
        "elapsed": elapsed,
    }


def main() -> int:
    url, clients, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    if not url.startswith(("http://127.", "http://localhost")):
        raise SystemExit("httpx_load: loopback targets only")
    print(json.dumps(asyncio.run(_load(url, clients, duration))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
