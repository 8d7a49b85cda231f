"""Injected time, so schedulers, batchers and timeouts are tested without sleeping."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Wall time for timestamps, monotonic time for intervals, and a sleep that honours both."""

    def now_ms(self) -> int: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock tests move by hand; sleepers wake when `advance` passes their deadline."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._mono = 0.0
        self._wall0 = start_ms
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now_ms(self) -> int:
        return self._wall0 + int(self._mono * 1000)

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._mono + max(0.0, seconds), fut))
        await fut

    async def advance(self, seconds: float) -> None:
        """Moves time forward and lets every task whose sleep ended run until it blocks again."""
        self._mono += seconds
        due = [s for s in self._sleepers if s[0] <= self._mono]
        self._sleepers = [s for s in self._sleepers if s[0] > self._mono]
        for _, fut in sorted(due, key=lambda s: s[0]):
            if not fut.done():
                fut.set_result(None)
        for _ in range(10):
            await asyncio.sleep(0)
