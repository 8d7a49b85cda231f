"""The running parts of a hub job: its bus subscriptions and its loop tasks, stopped in the one safe
order, so each job (push scoring, confirmation, forecasting, LLM enrichment and classification, semantic
indexing) does not carry its own copy of it.

A job subscribes before it spawns its loops, so nothing published after its start is missed. Stop
unsubscribes first (the bus returns once the handler's calls in flight are done, so nothing more is
queued), then cancels the loops and waits for them. What a job saves or closes once its loops have
stopped stays in its own `aclose`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from hub.bus.base import Bus, Handler


class JobTasks:
    """The subscriptions and loop tasks one job has running."""

    def __init__(self) -> None:
        self._subscribed: list[tuple[Bus, str, str, Handler]] = []
        self._tasks: list[asyncio.Task[None]] = []

    def subscribe(self, bus: Bus, topic: str, group: str, handler: Handler) -> None:
        """`bus.subscribe`, remembered for `stop`."""
        bus.subscribe(topic, group, handler)
        self._subscribed.append((bus, topic, group, handler))

    def spawn(self, name: str, loop: Coroutine[Any, Any, None]) -> None:
        """Runs `loop` as a task named `name` until `stop`."""
        self._tasks.append(asyncio.create_task(loop, name=name))

    async def stop(self) -> None:
        """Unsubscribes, then cancels the loops and waits for them to end; safe to call twice, or
        without a start."""
        while self._subscribed:
            bus, topic, group, handler = self._subscribed.pop()
            await bus.unsubscribe(topic, group, handler)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
