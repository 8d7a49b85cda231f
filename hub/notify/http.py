"""The hub's outbound HTTP for notifications (the one module importing httpx), with the error mapping.

httpx rather than aiohttp: the hub side already speaks httpx in its tests and tools, its `Timeout` bounds
connect, write and read separately (a peer that accepts and never answers still times out), it does not
follow redirects unless told to, and aiohttp stays the agent's Redfish seam. One `AsyncClient` per
receiver keeps a connection pool; a total per-request bound (`asyncio.timeout`) covers a peer that
trickles bytes forever.

Status mapping: 2xx ok; 408, 429 and 5xx retryable (Retry-After honoured, seconds or HTTP date);
any other status permanent; no connection or a timeout retryable. Error texts carry the status, the
first bytes of the response and the URL without user info or query, with every known secret replaced.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
import urllib.parse
from collections.abc import Iterable, Mapping

import httpx

from hub.notify.errors import NotifyError, PermanentNotifyError, RetryableNotifyError

_RETRYABLE_STATUSES = frozenset({408, 429})
_BODY_SNIPPET = 200
_USER_AGENT = "outpost-hub-notify/1"
REDACTED = "<redacted>"


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


class HttpPoster:
    """POSTs bodies for one receiver and turns every failure into a `NotifyError` subclass."""

    def __init__(self, receiver: str, timeout_s: float) -> None:
        self._receiver = receiver
        self._timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None
        self._secrets: list[str] = []

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Values that must never appear in an error text (header values, tokens, their encodings)."""
        self._secrets.extend(s for s in secrets if s)

    def scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout_s),
                follow_redirects=False,
                headers={"User-Agent": _USER_AGENT},
                trust_env=False,
            )

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POSTs `body`; returns the 2xx status.

        Raises:
            RetryableNotifyError: no connection, timeout, 408, 429 or 5xx.
            PermanentNotifyError: any other non-2xx status.
        """
        await self.start()
        assert self._client is not None
        where = safe_url(url)
        try:
            async with asyncio.timeout(self._timeout_s):
                resp = await self._client.post(url, content=body, headers=dict(headers))
                snippet = (await resp.aread())[:_BODY_SNIPPET].decode(errors="replace")
        except (TimeoutError, httpx.TimeoutException):
            raise RetryableNotifyError(
                self._receiver, f"{self._receiver}: POST {where} timed out after {self._timeout_s:g}s"
            ) from None
        except httpx.HTTPError as exc:
            detail = self.scrub(str(exc) or type(exc).__name__)
            raise RetryableNotifyError(
                self._receiver, f"{self._receiver}: POST {where} failed: {type(exc).__name__}: {detail}"
            ) from None
        status = resp.status_code
        if 200 <= status < 300:
            return status
        message = self.scrub(f"{self._receiver}: POST {where} answered {status}: {snippet.strip()}")
        if status in _RETRYABLE_STATUSES or status >= 500:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            raise RetryableNotifyError(self._receiver, message, status, retry_after)
        raise PermanentNotifyError(self._receiver, message, status)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def encode_error(receiver: str, exc: Exception) -> NotifyError:
    """A notification that cannot be encoded will never go through: permanent."""
    return PermanentNotifyError(receiver, f"{receiver}: cannot encode notification: {type(exc).__name__}")
