"""The Transport protocol and its errors."""

from __future__ import annotations

from typing import Protocol

from shared.codec import PushResult
from shared.errors import OutpostError


class DeliveryRejected(OutpostError):
    """Raised when the hub refuses an envelope for good (malformed, unauthorised): re-sending cannot help."""


class Transport(Protocol):
    """Sends one envelope and returns only after the hub acknowledged a durable write.

    Raises shared.errors.TransientError (with retry_after_s) when it may work later, DeliveryRejected
    when it never will.
    """

    async def start(self) -> None: ...

    async def send(self, envelope: bytes) -> PushResult: ...

    async def aclose(self) -> None: ...
