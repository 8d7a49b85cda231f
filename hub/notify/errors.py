"""The notify error tree: whether a failed send is worth retrying is a property of the error class.

Messages never carry a secret, a credential header or a URL's query string or user info: receivers build
them from the status, the response's first bytes (scrubbed of every configured secret) and the URL's
scheme, host and path only.
"""

from __future__ import annotations

from shared.errors import OutpostError


class NotifyError(OutpostError):
    """Base of every error a receiver raises from `send`; carries the receiver name and HTTP status."""

    def __init__(self, receiver: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.receiver = receiver
        self.status = status


class RetryableNotifyError(NotifyError):
    """Raised when the same notification may go through later: no connection, a timeout, HTTP 408, 429
    or 5xx. `retry_after_s` is the peer's Retry-After (429/503), which the dispatcher honours."""

    permanent = False

    def __init__(
        self, receiver: str, message: str, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(receiver, message, status)
        self.retry_after_s = retry_after_s


class PermanentNotifyError(NotifyError):
    """Raised when re-sending cannot help: any other 4xx (bad payload, bad credentials, no such path),
    a redirect (not followed: the URL is wrong), or a notification the receiver cannot encode.
    The dispatcher dead-letters the notification at once."""

    permanent = True
