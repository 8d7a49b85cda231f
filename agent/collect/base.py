"""The Collector protocol every target kind implements."""

from __future__ import annotations

from typing import Protocol

from shared.model import CollectResult


class Collector(Protocol):
    """One pollable target. `aclose` is safe without `start` and safe twice.

    `collect` never raises for device trouble: a partial poll is a CollectResult with `errors`.
    It may raise asyncio.TimeoutError/CancelledError when the scheduler's deadline cancels it.
    """

    @property
    def target(self) -> str:
        """Stable name used in logs, metrics and phase hashing (e.g. `host`, `sw1`, `bmc-r12`)."""
        ...

    @property
    def interval_s(self) -> float: ...

    async def start(self) -> None: ...

    async def collect(self) -> CollectResult: ...

    async def aclose(self) -> None: ...
