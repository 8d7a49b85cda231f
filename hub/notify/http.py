"""The hub's outbound HTTP for notifications (the hub's one module importing aiohttp), with the error mapping.

aiohttp rather than httpx, for throughput: from one client with 4 requests in flight to a local receiver
httpx managed ~1.1-1.3k POSTs/s and aiohttp ~3.5-4.7k/s, and at 1,000 new alert groups/s the webhook
POST was the dispatcher's bottleneck (bench/alerts.py). What httpx gave us is kept explicitly: connect
and socket-read bounds of their own (`ClientTimeout(total, connect, sock_read)`: a peer that accepts and
never answers still times out), redirects never followed (`allow_redirects=False`: a 3xx is a permanent
error, so a body never goes where it was not configured to), no proxy or netrc from the environment.
One `ClientSession` per receiver keeps a connection pool and is closed in `aclose()`; a total
per-request bound (`asyncio.timeout`) also covers a peer that trickles bytes forever.

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

import aiohttp

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
        self._session: aiohttp.ClientSession | None = None
        self._secrets: list[str] = []

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Values that must never appear in an error text (header values, tokens, their encodings)."""
        self._secrets.extend(s for s in secrets if s)

    def scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    async def start(self) -> None:
        if self._session is None:
            t = self._timeout_s
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=t, connect=t, sock_read=t),
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
        assert self._session is not None
        where = safe_url(url)
        try:
            async with (
                asyncio.timeout(self._timeout_s),
                self._session.post(url, data=body, headers=headers, allow_redirects=False) as resp,
            ):
                # The whole body is read so the connection goes back to the pool for the next POST.
                snippet = (await resp.read())[:_BODY_SNIPPET].decode(errors="replace")
                status = resp.status
                retry_after_header = resp.headers.get("Retry-After")
        except TimeoutError:  # aiohttp's own timeouts (ServerTimeoutError ...) are TimeoutErrors too
            raise RetryableNotifyError(
                self._receiver, f"{self._receiver}: POST {where} timed out after {self._timeout_s:g}s"
            ) from None
        except aiohttp.ClientError as exc:
            detail = self.scrub(str(exc) or type(exc).__name__)
            raise RetryableNotifyError(
                self._receiver, f"{self._receiver}: POST {where} failed: {type(exc).__name__}: {detail}"
            ) from None
        if 200 <= status < 300:
            return status
        message = self.scrub(f"{self._receiver}: POST {where} answered {status}: {snippet.strip()}")
        if status in _RETRYABLE_STATUSES or status >= 500:
            retry_after = parse_retry_after(retry_after_header)
            raise RetryableNotifyError(self._receiver, message, status, retry_after)
        raise PermanentNotifyError(self._receiver, message, status)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def encode_error(receiver: str, exc: Exception) -> NotifyError:
    """A notification that cannot be encoded will never go through: permanent."""
    return PermanentNotifyError(receiver, f"{receiver}: cannot encode notification: {type(exc).__name__}")
