"""A job's running parts (`hub.bus.job.JobTasks`): subscribed before its loops run, unsubscribed before
they are cancelled, every loop ended by stop, and stop safe without a start and twice."""

from __future__ import annotations

import asyncio

import pytest

from hub.bus.job import JobTasks
from tests.bus.conftest import until
from tests.bus.test_memory import Inbox, batch, memory

pytestmark = pytest.mark.unit


async def test_stop_unsubscribes_then_ends_every_loop() -> None:
    bus, inbox, running = memory(), Inbox(), JobTasks()
    await bus.start()
    ended: list[str] = []

    async def loop(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.append(name)

    running.subscribe(bus, "batch.stored", "job", inbox)
    running.spawn("a", loop("a"))
    running.spawn("b", loop("b"))
    await bus.publish(batch(1))
    await until(lambda: len(inbox.got) == 1)
    await running.stop()
    assert sorted(ended) == ["a", "b"]
    await bus.publish(batch(2))  # no member left in the group: dropped and counted, not handled
    await asyncio.sleep(0.05)
    assert [m.batch_id for m in inbox.got] == ["1"]  # type: ignore[union-attr]
    await running.stop()
    await bus.aclose()


async def test_stop_without_start_does_nothing() -> None:
    await JobTasks().stop()
