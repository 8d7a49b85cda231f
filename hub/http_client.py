"""The hub's outbound HTTP (notifications, log pollers, the LLM client): the one module importing aiohttp.

aiohttp rather than httpx, for throughput: from one client with 4 requests in flight to a local receiver
httpx managed ~1.1-1.3k POSTs/s and aiohttp ~3.5-4.7k/s, and at 1,000 new alert groups/s the webhook
POST was the dispatcher's bottleneck (bench/alerts.py). What httpx gave us is kept explicitly, once, for
every caller: connect and socket-read bounds of their own (a peer that accepts and never answers still
times out), a total bound per request or stream (`asyncio.timeout`: also a peer that trickles bytes
forever), redirects never followed (a 3xx is an answer like any other, so a body or a credential never
goes where it was not configured to), no proxy or netrc from the environment, a User-Agent per caller
and answers bounded in size (a broken peer cannot fill the hub's memory).

One session per peer keeps a connection pool; its owner closes it. Callers map what this module returns
to their own errors: a status is theirs to judge (notify retries 5xx, a poller says `auth` for 401).
`HttpError` texts carry the status, the first bytes of the answer and the URL without user info or
query, with every secret the caller names replaced.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
import urllib.parse
from collections.abc import AsyncGenerator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

Session = aiohttp.ClientSession  # for callers' type hints: they import no aiohttp themselves
Kind = Literal["connect", "timeout", "too_large", "status"]
REDACTED = "<redacted>"
SNIPPET = 200  # bytes of an answer an error text quotes
_CHUNK = 65536


class HttpError(Exception):
    """Raised when a request got no usable answer. `kind` says why: `connect` (no connection, or it broke),
    `timeout` (a bound passed), `too_large` (the answer passed its size cap; `status` is known) or
    `status` (a streamed answer was not 2xx; `status` and the Retry-After wait are known)."""

    def __init__(
        self, kind: Kind, message: str, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Response:
    """A whole answer. `headers` keep their names case-insensitive (HTTP/2 and proxies lowercase them)."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret replaced, longest first (callers add derived forms,
    such as a basic-auth header's base64, as secrets of their own)."""
    for s in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(s, REDACTED)
    return text


def safe_url(url: str) -> str:
    """scheme://host[:port]/path: what an error may say about where it was going."""
    p = urllib.parse.urlsplit(url)
    host = p.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{p.port}" if p.port else host
    return urllib.parse.urlunsplit((p.scheme, netloc, p.path, "", ""))


def parse_retry_after(value: str | None, now_s: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now_s is None else now_s
    return max(0.0, when.timestamp() - now)


def new_session(timeout_s: float, user_agent: str) -> Session:
    """A session whose every connect and socket read is bounded by `timeout_s`; the total bound is per
    request (`total_s` of `post` / `post_lines`), so one session serves requests and long streams."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, connect=timeout_s, sock_read=timeout_s),
        headers={"User-Agent": user_agent},
        trust_env=False,
    )


def status_error(
    url: str, status: int, body: bytes, headers: Mapping[str, str], secrets: Iterable[str] = ()
) -> HttpError:
    """The `status` error of an answer its caller will not take: its text quotes the answer's first bytes,
    and Retry-After (seconds or an HTTP date) is kept."""
    snippet = body[:SNIPPET].decode(errors="replace").strip()
    text = scrub(f"POST {safe_url(url)} answered {status}: {snippet}", secrets)
    return HttpError("status", text, status, parse_retry_after(headers.get("Retry-After")))


async def post(
    session: Session,
    url: str,
    headers: Mapping[str, str],
    *,
    data: bytes | None = None,
    json: Any = None,
    total_s: float,
    max_bytes: int,
    secrets: Iterable[str] = (),
) -> Response:
    """POSTs `data` (or `json`, encoded); returns any status with its headers and whole body, read so the
    connection goes back to the pool.

    Raises:
        HttpError: `connect`, `timeout`, or `too_large` for an answer longer than `max_bytes`.
    """
    try:
        async with (
            asyncio.timeout(total_s),
            session.post(url, data=data, json=json, headers=headers, allow_redirects=False) as resp,
        ):
            length = resp.content_length
            # A declared length that fits is read in one go (the notify hot path); a compressed answer
            # may inflate past its length, so it is counted as it comes like one of unknown length.
            if length is not None and length <= max_bytes and "Content-Encoding" not in resp.headers:
                return Response(resp.status, resp.headers, await resp.read())
            raw = bytearray()
            if length is None or length <= max_bytes:
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    raw += chunk
                    if len(raw) > max_bytes:
                        break
            if (length is not None and length > max_bytes) or len(raw) > max_bytes:
                text = f"POST {safe_url(url)} answered {resp.status} longer than {max_bytes} bytes"
                raise HttpError("too_large", text, resp.status)
            return Response(resp.status, resp.headers, bytes(raw))
    except TimeoutError:  # aiohttp's own timeouts (ServerTimeoutError ...) are TimeoutErrors too
        raise HttpError("timeout", f"POST {safe_url(url)} timed out after {total_s:g}s") from None
    except aiohttp.ClientError as exc:
        raise _connect_error(url, exc, secrets) from None


async def post_lines(
    session: Session,
    url: str,
    form: Mapping[str, str],
    headers: Mapping[str, str],
    *,
    total_s: float,
    max_line_bytes: int,
    secrets: Iterable[str] = (),
) -> AsyncGenerator[bytes | None, None]:
    """POSTs `form` and yields the answer's lines as they stream in (without the newline); None for each
    line longer than `max_line_bytes`, which is dropped without being held in memory. `total_s` bounds
    the whole stream.

    Raises:
        HttpError: `connect`, `timeout`, or `status` for a non-2xx answer.
    """
    try:
        async with (
            asyncio.timeout(total_s),
            session.post(url, data=dict(form), headers=headers, allow_redirects=False) as resp,
        ):
            if not 200 <= resp.status < 300:
                snippet = await resp.content.read(SNIPPET)
                raise status_error(url, resp.status, snippet, resp.headers, secrets)
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
        raise HttpError("timeout", f"POST {safe_url(url)} timed out after {total_s:g}s (stream)") from None
    except aiohttp.ClientError as exc:
        raise _connect_error(url, exc, secrets) from None


def _connect_error(url: str, exc: aiohttp.ClientError, secrets: Iterable[str]) -> HttpError:
    text = f"POST {safe_url(url)} failed: {type(exc).__name__}: {str(exc) or type(exc).__name__}"
    return HttpError("connect", scrub(text, secrets))
