"""The pollers' HTTP on aiohttp, like the hub's other outbound HTTP (`hub.notify.http`): one session per
source with a connection pool, connect and socket-read bounds, a total bound per request (or per stream),
redirects never followed (a 3xx is an error: credentials never go where they were not configured to), no
proxy or netrc from the environment. Failures become `PollError`s whose text carries the status, the first
bytes of the answer and the URL without query; the poller scrubs its secrets from them before logging.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from hub.enrich.logs.pollers.base import PollError
from hub.notify.http import parse_retry_after, safe_url

Session = aiohttp.ClientSession  # for the sources' type hints: they import no aiohttp themselves
_USER_AGENT = "outpost-hub-logs/1"
_SNIPPET = 200
_CHUNK = 65536


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes


def new_session(timeout_s: float) -> Session:
    """A session whose every connect and socket read is bounded by `timeout_s`."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, connect=timeout_s, sock_read=timeout_s),
        headers={"User-Agent": _USER_AGENT},
        trust_env=False,
    )


async def post_json(
    session: Session,
    url: str,
    body: Any,
    headers: Mapping[str, str],
    total_s: float,
    max_bytes: int,
) -> Response:
    """POSTs `body` as JSON; returns any status with its headers and body (at most `max_bytes`).

    Raises:
        PollError: no connection, a timeout, or an answer longer than `max_bytes`.
    """
    where = safe_url(url)
    try:
        async with (
            asyncio.timeout(total_s),
            session.post(url, json=body, headers=headers, allow_redirects=False) as resp,
        ):
            raw = bytearray()
            async for chunk in resp.content.iter_chunked(_CHUNK):
                raw += chunk
                if len(raw) > max_bytes:
                    raise PollError("parse", f"POST {where}: answer longer than {max_bytes} bytes")
            return Response(resp.status, resp.headers.copy(), bytes(raw))  # names stay case-insensitive
    except TimeoutError:
        raise PollError("timeout", f"POST {where} timed out after {total_s:g}s") from None
    except aiohttp.ClientError as exc:
        raise PollError("connect", f"POST {where} failed: {type(exc).__name__}: {exc}") from None


async def post_lines(
    session: Session,
    url: str,
    form: Mapping[str, str],
    headers: Mapping[str, str],
    total_s: float,
    max_line_bytes: int,
) -> AsyncGenerator[bytes | None, None]:
    """POSTs `form` and yields the answer's lines as they stream in (without the newline); None for each
    line longer than `max_line_bytes`, which is dropped without being held in memory.

    Raises:
        PollError: no connection, a timeout, or a non-2xx answer.
    """
    where = safe_url(url)
    try:
        async with (
            asyncio.timeout(total_s),
            session.post(url, data=dict(form), headers=headers, allow_redirects=False) as resp,
        ):
            if not 200 <= resp.status < 300:
                snippet = (await resp.content.read(_SNIPPET)).decode(errors="replace").strip()
                raise status_error(where, resp.status, snippet, resp.headers.get("Retry-After"))
            buf = bytearray()
            skipping = False  # inside a line already too long: drop until its newline
            async for chunk in resp.content.iter_chunked(_CHUNK):
                start = 0
                while (nl := chunk.find(b"\n", start)) >= 0:
                    part = chunk[start:nl]
                    if skipping or len(buf) + len(part) > max_line_bytes:
                        yield None
                    else:
                        buf += part
                        yield bytes(buf)
                    buf.clear()
                    skipping = False
                    start = nl + 1
                if not skipping:
                    buf += chunk[start:]
                    if len(buf) > max_line_bytes:
                        buf.clear()
                        skipping = True
            if skipping:
                yield None
            elif buf:
                yield bytes(buf)
    except TimeoutError:
        raise PollError("timeout", f"POST {where} timed out (stream bound {total_s:g}s)") from None
    except aiohttp.ClientError as exc:
        raise PollError("connect", f"POST {where} failed: {type(exc).__name__}: {exc}") from None


def status_error(where: str, status: int, snippet: str, retry_after: str | None = None) -> PollError:
    """The error of a non-2xx answer: `auth` for 401/403, else `status` (Retry-After kept)."""
    kind = "auth" if status in (401, 403) else "status"
    return PollError(
        kind, f"POST {where} answered {status}: {snippet[:_SNIPPET]}", parse_retry_after(retry_after)
    )
