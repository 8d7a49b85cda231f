"""The in-process bus: per-queue order, groups each get all, bounded queues that drop (or block) and
count, failing handlers retried on an injected clock then counted dead, and a safe lifecycle."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import TypeAdapter, ValidationError

from hub.bus.config import BusConfig, MemoryBusConfig, NatsBusConfig
from hub.bus.errors import BusClosed, BusError, UnknownTopic
from hub.bus.factory import build_bus
from hub.bus.memory import MemoryBus
from hub.bus.messages import BatchStored, Message
from hub.bus.metrics import BusCollector
from shared.clock import FakeClock
from tests.bus.conftest import until

pytestmark = pytest.mark.unit


def batch(n: int, agent: str = "dc1/edge1") -> BatchStored:
    return BatchStored.create(agent=agent, batch_id=str(n), points=10, max_ts_ms=1000 + n)


class Inbox:
    """A handler that records what it got (and can be told to fail)."""

    def __init__(self, fail_times: int = 0, forever: bool = False) -> None:
        self.got: list[Message] = []
        self.calls = 0
        self._fail_times = fail_times
        self._forever = forever

    async def __call__(self, msg: Message) -> None:
        self.calls += 1
        if self._forever:
            await asyncio.Event().wait()
        if self.calls <= self._fail_times:
            raise RuntimeError(f"handler outage {self.calls}")
        self.got.append(msg)


def memory(**cfg: Any) -> MemoryBus:
    return MemoryBus(MemoryBusConfig(**cfg))


async def test_each_queue_is_handled_in_publish_order() -> None:
    bus, inbox = memory(), Inbox()
    bus.subscribe("batch.stored", "alerts", inbox)
    await bus.start()
    for n in range(300):
        await bus.publish(batch(n))
    await until(lambda: len(inbox.got) == 300)
    assert [m.batch_id for m in inbox.got] == [str(i) for i in range(300)]  # type: ignore[union-attr]
    await bus.aclose()


async def test_two_groups_each_get_every_message_and_other_topics_get_none() -> None:
    bus, alerts, forecast, events = memory(), Inbox(), Inbox(), Inbox()
    bus.subscribe("batch.stored", "alerts", alerts)
    bus.subscribe("batch.stored", "forecast", forecast)
    bus.subscribe("device.event", "alerts", events)
    await bus.start()
    for n in range(50):
        await bus.publish(batch(n))
    await until(lambda: len(alerts.got) == len(forecast.got) == 50)
    await bus.aclose()
    assert alerts.got == forecast.got == [batch(n) for n in range(50)]
    assert events.got == []
    assert bus.stats.published == {"batch.stored": 50}
    assert bus.stats.delivered == {("batch.stored", "alerts"): 50, ("batch.stored", "forecast"): 50}


async def test_a_full_queue_drops_for_that_group_only_and_counts_it() -> None:
    bus, slow, fast = memory(queue_size=3), Inbox(), Inbox()
    bus.subscribe("batch.stored", "slow", slow)
    bus.subscribe("batch.stored", "fast", fast)
    # Not started yet: nothing drains, so the fourth and fifth messages find the queues full.
    for n in range(5):
        await bus.publish(batch(n))
    assert bus.stats.dropped == {("batch.stored", "slow"): 2, ("batch.stored", "fast"): 2}
    assert bus.stats.published == {"batch.stored": 5}
    await bus.start()
    await until(lambda: len(slow.got) == len(fast.got) == 3)
    assert [m.batch_id for m in slow.got] == ["0", "1", "2"]  # type: ignore[union-attr]
    await bus.aclose()


async def test_block_makes_publish_wait_for_room_instead_of_dropping() -> None:
    bus, inbox = memory(queue_size=1, block=True), Inbox()
    bus.subscribe("batch.stored", "alerts", inbox)
    await bus.publish(batch(0))
    second = asyncio.create_task(bus.publish(batch(1)))
    await asyncio.sleep(0.05)
    assert not second.done()  # waiting for room, not dropped
    await bus.start()
    await asyncio.wait_for(second, 5)
    await until(lambda: len(inbox.got) == 2)
    assert bus.stats.dropped == {}
    await bus.aclose()


async def test_a_failing_handler_is_retried_with_backoff_then_counted_dead() -> None:
    clock = FakeClock()
    bus = MemoryBus(MemoryBusConfig(retries=3, retry_backoff_s=1.0, retry_backoff_max_s=3.0), clock)
    inbox = Inbox(fail_times=99)
    bus.subscribe("batch.stored", "alerts", inbox)
    await bus.start()
    await bus.publish(batch(1))  # the publisher never sees the handler's failure
    await until(lambda: inbox.calls == 1)
    for wait, calls in ((0.9, 1), (0.1, 2), (1.9, 2), (0.1, 3), (2.9, 3), (0.1, 4)):  # 1 s, 2 s, then 3 s cap
        await clock.advance(wait)
        assert inbox.calls == calls
    await until(lambda: bus.stats.dead == {("batch.stored", "alerts"): 1})
    assert bus.stats.handler_failures == {("batch.stored", "alerts"): 4}
    assert bus.stats.delivered == {}
    await bus.aclose()


async def test_a_handler_that_fails_once_gets_the_same_message_again() -> None:
    bus, inbox = memory(retry_backoff_s=0.0), Inbox(fail_times=1)
    bus.subscribe("batch.stored", "alerts", inbox)
    await bus.start()
    await bus.publish(batch(4))
    await until(lambda: len(inbox.got) == 1)
    assert inbox.got[0].id == "batch:dc1/edge1:4" and inbox.calls == 2
    assert bus.stats.handler_failures == {("batch.stored", "alerts"): 1}
    assert bus.stats.dead == {}
    await bus.aclose()


async def test_concurrency_runs_that_many_handlers_at_once() -> None:
    bus, running, peak = memory(concurrency=4), [0], [0]
    release = asyncio.Event()

    async def handler(_msg: Message) -> None:
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        await release.wait()
        running[0] -= 1

    bus.subscribe("batch.stored", "alerts", handler)
    await bus.start()
    for n in range(10):
        await bus.publish(batch(n))
    await until(lambda: running[0] == 4)
    await asyncio.sleep(0.02)
    assert peak[0] == 4
    release.set()
    await until(lambda: bus.stats.delivered.get(("batch.stored", "alerts")) == 10)
    await bus.aclose()


async def test_aclose_is_safe_without_start_and_twice_and_counts_what_was_left_queued() -> None:
    never_started = memory()
    never_started.subscribe("batch.stored", "alerts", Inbox())
    await never_started.publish(batch(1))
    await never_started.aclose()
    await never_started.aclose()
    assert never_started.stats.dropped == {("batch.stored", "alerts"): 1}
    with pytest.raises(BusClosed):
        await never_started.publish(batch(2))


async def test_aclose_drains_the_queue_but_not_past_its_timeout() -> None:
    bus, inbox = memory(), Inbox()
    bus.subscribe("batch.stored", "alerts", inbox)
    await bus.start()
    for n in range(20):
        await bus.publish(batch(n))
    await bus.aclose()
    assert len(inbox.got) == 20

    stuck = memory(drain_timeout_s=0.1)
    stuck.subscribe("batch.stored", "alerts", Inbox(forever=True))
    await stuck.start()
    for n in range(3):
        await stuck.publish(batch(n))
    await asyncio.wait_for(stuck.aclose(), 2)
    assert stuck.stats.dropped == {("batch.stored", "alerts"): 2}  # the third was in the stuck handler


async def test_subscribing_wrongly_is_a_clear_error() -> None:
    bus = memory()
    with pytest.raises(UnknownTopic):
        bus.subscribe("batch.deleted", "alerts", Inbox())
    with pytest.raises(BusError, match="letters, digits"):
        bus.subscribe("batch.stored", "alerts.v2", Inbox())
    await bus.start()
    await bus.aclose()
    with pytest.raises(BusError, match="after aclose"):
        bus.subscribe("batch.stored", "alerts", Inbox())


async def test_the_collector_exports_the_counters_at_scrape_time() -> None:
    bus, registry = memory(queue_size=1), CollectorRegistry()
    registry.register(BusCollector(bus.stats))
    bus.subscribe("batch.stored", "alerts", Inbox(fail_times=1))
    for n in range(3):
        await bus.publish(batch(n))
    await bus.start()
    await until(lambda: bus.stats.delivered == {("batch.stored", "alerts"): 1})
    text = generate_latest(registry).decode()
    assert 'outpost_hub_bus_published_total{topic="batch.stored"} 3.0' in text
    assert 'outpost_hub_bus_dropped_total{group="alerts",topic="batch.stored"} 2.0' in text
    assert 'outpost_hub_bus_handler_failures_total{group="alerts",topic="batch.stored"} 1.0' in text
    assert 'outpost_hub_bus_delivered_total{group="alerts",topic="batch.stored"} 1.0' in text
    await bus.aclose()


def test_config_picks_the_implementation_by_kind_and_forbids_unknown_fields() -> None:
    adapter: TypeAdapter[BusConfig] = TypeAdapter(BusConfig)
    assert isinstance(adapter.validate_python({"kind": "memory"}), MemoryBusConfig)
    nats = adapter.validate_python({"kind": "nats", "servers": ["tls://n:4222"], "max_age": "PT6H"})
    assert isinstance(nats, NatsBusConfig) and nats.max_age.total_seconds() == 6 * 3600
    with pytest.raises(ValidationError, match="queue_sise"):
        adapter.validate_python({"kind": "memory", "queue_sise": 5})
    with pytest.raises(ValidationError, match="block"):
        adapter.validate_python({"kind": "nats", "block": True})  # a memory-only option
    with pytest.raises(ValidationError, match="duplicate_window must not exceed max_age"):
        adapter.validate_python({"kind": "nats", "max_age": 60, "duplicate_window": 120})
    assert isinstance(build_bus(MemoryBusConfig()), MemoryBus)
    with pytest.raises(BusError, match="client certificate"):
        build_bus(NatsBusConfig())


async def test_aclose_returns_even_when_a_handler_swallows_the_cancel() -> None:
    bus, swallowed = memory(drain_timeout_s=0.05), []

    async def stubborn(_msg: Message) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.append(True)  # a handler bug: the worker task would otherwise never end

    bus.subscribe("batch.stored", "alerts", stubborn)
    await bus.start()
    await bus.publish(batch(1))
    await bus.publish(batch(2))
    await asyncio.wait_for(bus.aclose(), 3)
    assert swallowed == [True, True]
