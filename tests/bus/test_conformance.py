"""The same delivery behaviours over both implementations (memory, and NATS JetStream on a real server):
lifecycle, groups, queue-group sharing, redelivery with the same id, dead-lettering."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from hub.bus.errors import BusClosed, BusError, UnknownTopic
from hub.bus.memory import MemoryBus
from hub.bus.messages import AlertsChanged, BatchStored, Message
from tests.bus.conftest import MakeBus, settle, until

pytestmark = pytest.mark.integration


def batch(n: int) -> BatchStored:
    return BatchStored.create(agent="dc1/edge1", batch_id=str(n), points=10, max_ts_ms=1000 + n)


async def test_lifecycle_is_safe_in_any_order(make_bus: MakeBus) -> None:
    unused = make_bus()
    await unused.aclose()
    await unused.aclose()
    bus = make_bus()
    with pytest.raises(UnknownTopic):
        bus.subscribe("no.such.topic", "alerts", _noop)
    bus.subscribe("batch.stored", "alerts", _noop)
    await bus.start()
    await bus.start()  # a second start is a no-op
    await bus.publish(batch(1))
    assert bus.stats.published == {"batch.stored": 1}
    await bus.unsubscribe("alerts.changed", "notify", _noop)  # never subscribed: a no-op
    await bus.aclose()
    await bus.aclose()
    with pytest.raises(BusClosed):
        await bus.publish(batch(2))
    with pytest.raises(BusError, match="after aclose"):
        bus.subscribe("alerts.changed", "notify", _noop)


async def test_a_handler_subscribed_after_start_gets_messages_and_its_successor_the_rest_after_it_left(
    make_bus: MakeBus,
) -> None:
    """How a run-once job moves: the leader subscribes once it holds the lock and unsubscribes when it
    stops; the next leader (on NATS another process's bus) subscribes to the same group later."""
    leader = make_bus()
    # A memory bus is one process: there the successor is the same process, later.
    successor = leader if isinstance(leader, MemoryBus) else make_bus()
    first: list[str] = []
    second: list[str] = []

    async def lead(msg: Message) -> None:
        first.append(msg.id)

    async def follow(msg: Message) -> None:
        second.append(msg.id)

    await leader.start()
    await successor.start()
    leader.subscribe("batch.stored", "alerts", lead)
    for n in range(5):
        await leader.publish(batch(n))
    await until(lambda: len(first) == 5, what="the late subscriber's messages")
    await leader.unsubscribe("batch.stored", "alerts", lead)
    successor.subscribe("batch.stored", "alerts", follow)
    for n in range(5, 8):
        await leader.publish(batch(n))
    await until(lambda: len(second) == 3, what="the successor's messages")
    await settle()
    assert first == [batch(n).id for n in range(5)]
    assert sorted(second) == sorted(batch(n).id for n in range(5, 8))
    assert leader.stats.delivered[("batch.stored", "alerts")] == (5 if successor is not leader else 8)


async def test_every_group_gets_every_message_once_and_a_group_shares_them(make_bus: MakeBus) -> None:
    bus = make_bus(concurrency=4)
    seen: dict[str, list[str]] = {"alerts-a": [], "alerts-b": [], "forecast": [], "notify": []}

    def into(name: str):  # type: ignore[no-untyped-def]
        async def handler(msg: Message) -> None:
            await asyncio.sleep(0.001)  # let the other member of the group take some
            seen[name].append(msg.id)

        return handler

    bus.subscribe("batch.stored", "alerts", into("alerts-a"))
    bus.subscribe("batch.stored", "alerts", into("alerts-b"))
    bus.subscribe("batch.stored", "forecast", into("forecast"))
    bus.subscribe("alerts.changed", "notify", into("notify"))
    await bus.start()
    ids = [batch(n).id for n in range(200)]
    for n in range(200):
        await bus.publish(batch(n))
    (change,) = AlertsChanged.of([("a1", "f", "firing", "critical", "opened")], 5)
    await bus.publish(change)
    await until(lambda: len(seen["alerts-a"]) + len(seen["alerts-b"]) >= 200 and len(seen["forecast"]) >= 200)
    await until(lambda: seen["notify"] == [change.id])
    await settle()
    shared = Counter(seen["alerts-a"] + seen["alerts-b"])
    assert sorted(shared) == sorted(ids) and set(shared.values()) == {1}  # none lost, none twice
    assert seen["alerts-a"] and seen["alerts-b"]  # both members took part
    assert sorted(seen["forecast"]) == sorted(ids) and len(seen["forecast"]) == 200
    assert bus.stats.published == {"batch.stored": 200, "alerts.changed": 1}
    assert bus.stats.delivered == {
        ("batch.stored", "alerts"): 200,
        ("batch.stored", "forecast"): 200,
        ("alerts.changed", "notify"): 1,
    }


async def test_a_message_whose_handler_failed_arrives_again_with_the_same_id(make_bus: MakeBus) -> None:
    bus, calls = make_bus(), []

    async def flaky(msg: Message) -> None:
        calls.append(msg.id)
        if len(calls) == 1:
            raise ConnectionError("state database restarting")

    bus.subscribe("batch.stored", "alerts", flaky)
    await bus.start()
    await bus.publish(batch(9))
    await until(lambda: bus.stats.delivered == {("batch.stored", "alerts"): 1})
    await settle()
    assert calls == ["batch:dc1/edge1:9", "batch:dc1/edge1:9"]
    assert bus.stats.handler_failures == {("batch.stored", "alerts"): 1}
    assert bus.stats.dead == {}


async def test_a_message_that_keeps_failing_is_given_up_after_max_deliver_and_counted_dead(
    make_bus: MakeBus,
) -> None:
    bus, calls, good = make_bus(max_deliver=3), [], []

    async def broken(msg: Message) -> None:
        calls.append(msg.id)
        if msg.id == batch(1).id:
            raise ValueError("cannot handle this one")
        good.append(msg.id)

    bus.subscribe("batch.stored", "alerts", broken)
    await bus.start()
    await bus.publish(batch(1))
    await bus.publish(batch(2))
    await until(lambda: bus.stats.dead == {("batch.stored", "alerts"): 1})
    await until(lambda: good == [batch(2).id])
    await settle()
    assert Counter(calls) == {batch(1).id: 3, batch(2).id: 1}
    assert bus.stats.handler_failures == {("batch.stored", "alerts"): 3}
    assert bus.stats.delivered == {("batch.stored", "alerts"): 1}


async def _noop(_msg: Message) -> None:
    return None
