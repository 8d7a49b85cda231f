"""The notifiers' HTTP: POSTs on `hub.http_client` and the mapping of every outcome to a `NotifyError`.

Status mapping: 2xx ok; 408, 429 and 5xx retryable (Retry-After honoured, seconds or HTTP date);
any other status permanent; no connection or a timeout retryable. An answer over the size cap is judged
by its status alone (a 2xx was delivered; only the answer is dropped, with its connection).
Error texts carry the receiver, the status, the first bytes of the response and the URL without user
info or query, with every known secret replaced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hub.http_client import HttpError, Session, new_session, post, scrub, status_error
from hub.notify.errors import NotifyError, PermanentNotifyError, RetryableNotifyError

_RETRYABLE_STATUSES = frozenset({408, 429})
_USER_AGENT = "outpost-hub-notify/1"
# A receiver answers a few bytes ("ok", {"status":"success"}); more than this is a broken peer.
_MAX_ANSWER_BYTES = 1 << 20


class HttpPoster:
    """POSTs bodies for one receiver and turns every failure into a `NotifyError` subclass."""

    def __init__(self, receiver: str, timeout_s: float) -> None:
        self._receiver = receiver
        self._timeout_s = timeout_s
        self._session: Session | None = None
        self._secrets: list[str] = []

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Values that must never appear in an error text (header values, tokens, their encodings)."""
        self._secrets.extend(s for s in secrets if s)

    def scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    async def start(self) -> None:
        if self._session is None:
            self._session = new_session(self._timeout_s, _USER_AGENT)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POSTs `body`; returns the 2xx status.

        Raises:
            RetryableNotifyError: no connection, timeout, 408, 429 or 5xx.
            PermanentNotifyError: any other non-2xx status.
        """
        await self.start()
        assert self._session is not None
        try:
            resp = await post(
                self._session,
                url,
                headers,
                data=body,
                total_s=self._timeout_s,
                max_bytes=_MAX_ANSWER_BYTES,
                secrets=self._secrets,
            )
        except HttpError as exc:
            if exc.status is None:  # no connection or a timeout
                raise RetryableNotifyError(self._receiver, f"{self._receiver}: {exc}") from None
            status, message, retry_after_s = exc.status, f"{self._receiver}: {exc}", None  # too large
        else:
            status = resp.status
            if 200 <= status < 300:
                return status
            err = status_error(url, status, resp.body, resp.headers, self._secrets)
            message, retry_after_s = f"{self._receiver}: {err}", err.retry_after_s
        if 200 <= status < 300:
            return status
        if status in _RETRYABLE_STATUSES or status >= 500:
            raise RetryableNotifyError(self._receiver, message, status, retry_after_s)
        raise PermanentNotifyError(self._receiver, message, status)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def encode_error(receiver: str, exc: Exception) -> NotifyError:
    """A notification that cannot be encoded will never go through: permanent."""
    return PermanentNotifyError(receiver, f"{receiver}: cannot encode notification: {type(exc).__name__}")
