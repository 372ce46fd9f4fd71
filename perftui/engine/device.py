"""Control-plane calls to the device (health probe, debug telemetry), made with httpx.

These are a handful of requests per phase, so httpx's convenience costs nothing here; the load
itself goes through `perftui.engine.load`. A device without the debug endpoints is normal: its
telemetry is recorded as unavailable and the heap gates are skipped.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable

import httpx

from perftui.engine.schema import JsonObject

RETRY_STATUSES = frozenset({429, 503, 504})
CONNECT_RETRIES = 3  # transport errors are retried fewer times than the device's "busy" answers
MAX_DEBUG_BODY = 1_000_000  # a debug body larger than this is not telemetry; refuse it
DEFAULT_DEADLINE_S = 6.0  # the reference's request timeout, for a client built without one


def client(base_url: str, timeout: float, tls: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout),
        verify=tls if tls is not None else True,
        follow_redirects=False,
        headers={"User-Agent": "perftui-control"},
    )


async def probe(
    http: httpx.AsyncClient,
    path: str,
    retries: int,
    log: Callable[[str, str], None],
    stop: asyncio.Event | None = None,
) -> tuple[bool, str, int]:
    """The reference's health probe: any status 200–499 is healthy; wait 0.25 s × attempt.

    Returns (healthy, the last answer or failure, the attempts made): a certificate problem
    ends it after one attempt, a stop after the current one, so the caller says how many."""
    last = "no attempt"
    attempts = max(1, retries)
    for attempt in range(1, attempts + 1):
        try:
            status = await _status(http, path)
            if 200 <= status < 500:
                return True, f"HTTP {status}", attempt
            last = f"HTTP {status}"
        except (httpx.HTTPError, TimeoutError) as exc:
            last = describe(exc)
            if certificate_problem(exc):
                return False, last, attempt  # a certificate does not change between attempts
        if attempt < attempts:
            log("warning", f"probe {path} attempt {attempt}/{attempts} failed: {last}; retrying")
            if stop is not None and stop.is_set():
                return False, last, attempt
            await asyncio.sleep(0.25 * attempt)
    return False, last, attempts


def _deadline(http: httpx.AsyncClient) -> float:
    """The request timeout, applied to the whole exchange (httpx's applies per socket read)."""
    return http.timeout.read or DEFAULT_DEADLINE_S


async def _status(http: httpx.AsyncClient, path: str) -> int:
    """The status of GET `path`; the body is not read (a probe needs no more)."""
    async with asyncio.timeout(_deadline(http)), http.stream("GET", path) as resp:
        return resp.status_code


async def _get(http: httpx.AsyncClient, path: str) -> tuple[int, bytes | None]:
    """GET `path` within one deadline; the body is None once it outgrows MAX_DEBUG_BODY.

    A device that drips its telemetry, or sends it without end, would otherwise hold the run
    before its phase forever (every byte resets httpx's read timeout) or fill our memory.
    """
    async with asyncio.timeout(_deadline(http)), http.stream("GET", path) as resp:
        body = bytearray()
        async for chunk in resp.aiter_bytes():
            body += chunk
            if len(body) > MAX_DEBUG_BODY:
                return resp.status_code, None
        return resp.status_code, bytes(body)


def certificate_problem(exc: BaseException) -> str | None:
    """The TLS verification failure behind `exc` ("self-signed certificate", …), or None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or seen.reason or "certificate verify failed"
        if "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return str(seen).rpartition("certificate verify failed: ")[2].split(" (_ssl")[0]
        seen = seen.__cause__ or seen.__context__
    return None


def describe(exc: BaseException) -> str:
    """A short human description of a transport error."""
    if isinstance(exc, TimeoutError) and not isinstance(exc, httpx.HTTPError):
        return "TimeoutError: no complete answer within the request timeout"
    if problem := certificate_problem(exc):
        return (
            f"TLS certificate not trusted: {problem} "
            "(--insecure skips the check, --cacert FILE trusts a CA)"
        )
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


async def fetch_json(
    http: httpx.AsyncClient, path: str, retries: int, delay_ms: int
) -> tuple[JsonObject | None, str | None]:
    """GET a debug endpoint; retry on 429/503/504 with linear backoff as the reference does.

    Returns (data, None) or (None, why-unavailable).
    """
    transport_failures = 0
    attempt = 0
    while True:
        attempt += 1
        try:
            status, content = await _get(http, path)
        except (httpx.HTTPError, TimeoutError) as exc:
            transport_failures += 1
            if transport_failures >= CONNECT_RETRIES or attempt > retries:
                return None, describe(exc)
            await asyncio.sleep(delay_ms / 1000 * attempt)
            continue
        if status in RETRY_STATUSES and attempt <= retries:
            await asyncio.sleep(delay_ms / 1000 * attempt)
            continue
        if status != 200:
            return None, f"HTTP {status}"
        if content is None:
            return None, f"body too large (more than {MAX_DEBUG_BODY} bytes)"
        try:
            data = json.loads(content)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            return None, "malformed JSON"
        if not isinstance(data, dict):
            return None, "JSON is not an object"
        return data, None


def heap_value(memory: JsonObject | None, key: str) -> int | None:
    """An integer field of `{"heap": {...}}`, or None when absent or not an integer."""
    if not memory:
        return None
    heap = memory.get("heap")
    if not isinstance(heap, dict):
        return None
    value = heap.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def heap_drops(
    before: JsonObject | None, after: JsonObject | None
) -> tuple[int | None, int | None]:
    """Bytes of internal and PSRAM heap lost during a phase (None where unknown)."""
    internal = psram = None
    b, a = heap_value(before, "internal_free"), heap_value(after, "internal_free")
    if b is not None and a is not None:
        internal = b - a
    heap = (before or {}).get("heap")
    psram_on = isinstance(heap, dict) and heap.get("psram_available") is True
    b, a = heap_value(before, "psram_free"), heap_value(after, "psram_free")
    if psram_on and b is not None and a is not None:
        psram = b - a
    return internal, psram
