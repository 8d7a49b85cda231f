"""In-memory outbox: envelopes waiting for the hub, urgent lane first, bounded with drop counters.

The disk spool replaces this for store-and-forward; both share the put/get/ack/nack shape the
Deliverer uses, so the sender does not care where envelopes wait.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from shared.model import Batch, BatchClass

# Classes that must reach the hub first and are dropped last.
URGENT = frozenset({BatchClass.ANOMALY, BatchClass.EVENTS, BatchClass.HEARTBEAT})


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An encoded batch plus what the spool indexes without decoding it (points, newest timestamp)."""

    envelope: bytes
    batch_class: BatchClass
    batch_id: str
    points: int = 0
    max_ts_ms: int = 0

    @classmethod
    def of(cls, batch: Batch, envelope: bytes) -> OutboxItem:
        """The item for `batch` encoded as `envelope`."""
        newest = max((int(s.timestamps_ms[-1]) for s in batch.series if len(s)), default=0)
        newest = max([newest, *(e.ts_ms for e in batch.events)])
        return cls(envelope, batch.batch_class, batch.batch_id, batch.point_count, newest)


class Outbox(Protocol):
    """Where envelopes wait until the hub acknowledges them."""

    def put(self, item: OutboxItem) -> None: ...

    async def get(self) -> OutboxItem: ...

    def ack(self, item: OutboxItem) -> None: ...

    def nack(self, item: OutboxItem) -> None: ...

    def pending(self) -> int: ...


class MemoryOutbox:
    """Two FIFO lanes; when full, the oldest metrics envelope is dropped (and counted) before urgent ones."""

    def __init__(self, max_items: int = 10_000) -> None:
        self._urgent: deque[OutboxItem] = deque()
        self._metrics: deque[OutboxItem] = deque()
        self._max = max_items
        self._ready = asyncio.Event()
        self.dropped: dict[BatchClass, int] = {}

    def put(self, item: OutboxItem) -> None:
        if self.pending() >= self._max:
            victim_lane = self._metrics if self._metrics else self._urgent
            victim = victim_lane.popleft()
            self.dropped[victim.batch_class] = self.dropped.get(victim.batch_class, 0) + 1
        (self._urgent if item.batch_class in URGENT else self._metrics).append(item)
        self._ready.set()

    async def get(self) -> OutboxItem:
        while not (self._urgent or self._metrics):
            self._ready.clear()
            await self._ready.wait()
        return self._urgent.popleft() if self._urgent else self._metrics.popleft()

    def ack(self, item: OutboxItem) -> None:
        return None  # nothing to release: memory was freed when the item was taken

    def nack(self, item: OutboxItem) -> None:
        (self._urgent if item.batch_class in URGENT else self._metrics).appendleft(item)
        self._ready.set()

    def pending(self) -> int:
        return len(self._urgent) + len(self._metrics)
