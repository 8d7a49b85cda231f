"""The receiver plugin kind: where one notification goes (a webhook, an Alertmanager, ...)."""

from __future__ import annotations

from typing import Protocol

from hub.notify.model import Notification


class Receiver(Protocol):
    """A notification sink with a lifecycle.

    `send` makes one attempt and either returns (the peer acknowledged) or raises a `NotifyError`
    subclass saying whether a retry can help; retries, backoff and durability are the dispatcher's.
    `aclose` is safe without `start` and safe twice.
    """

    async def start(self) -> None: ...

    async def send(self, n: Notification) -> None: ...

    async def aclose(self) -> None: ...
