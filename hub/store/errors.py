"""Errors of the store package (transient failures use `shared.errors.TransientError`)."""

from __future__ import annotations

from shared.errors import OutpostError


class StoreError(OutpostError):
    """Raised when a backend rejects a request for good: malformed data or query, or a server reply
    that will not change on retry (HTTP 400/413/422). The hub counts and drops such a batch.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
