"""The fan-out of `hub.notify.ws` on a real memory bus with injected time: ticks, the bounded history
(by count and by age), resumes ahead of this process, and the shared per-subscription frame."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from hub.bus.config import MemoryBusConfig
from hub.bus.memory import MemoryBus
from hub.notify.ws import Client, WsHub
from hub.notify.ws_config import WsConfig
from hub.notify.ws_protocol import Filter, Subscription
from shared.clock import FakeClock
from tests.ws.conftest import alert_created, anomaly

pytestmark = pytest.mark.unit

ANOMALIES = Subscription(frozenset({"anomalies"}), Filter())


@pytest.fixture
async def fan() -> AsyncIterator[tuple[WsHub, MemoryBus, FakeClock]]:
    clock = FakeClock()
    bus = MemoryBus(MemoryBusConfig(), clock)
    hub = WsHub(WsConfig(tick_s=0.1, history=100, history_s=60), bus, CollectorRegistry(), clock)
    await hub.start()
    await bus.start()
    try:
        yield hub, bus, clock
    finally:
        await hub.aclose()
        await bus.aclose()


async def _drain(client: Client) -> list[dict[str, Any]]:
    out = []
    while client.queued:
        frame = await client.next()
        assert frame is not None
        out.append(json.loads(frame))
    return out


def _total(counter: Counter) -> float:
    return next(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))


def _ids(frames: list[dict[str, Any]]) -> list[int]:
    return [e["id"] for f in frames for e in f.get("events", ())]


async def _until(client: Client, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    """The client's frames from now until `done` says they are complete (reads run on threads)."""
    frames: list[dict[str, Any]] = []
    for _ in range(500):
        frames += await _drain(client)
        if done(frames):
            break
        await asyncio.sleep(0.01)
    return frames


async def test_events_within_a_tick_share_one_frame_and_clients_alike_share_its_text(
    fan: tuple[WsHub, MemoryBus, FakeClock],
) -> None:
    hub, bus, clock = fan
    a, b = hub.join(ANOMALIES), hub.join(ANOMALIES)
    await _drain(a)
    await _drain(b)
    await bus.publish(anomaly(0))  # after a quiet spell: out at once
    await clock.advance(0)
    assert len(_ids(await _drain(a))) == len(_ids(await _drain(b))) == 1
    for n in range(1, 50):
        await bus.publish(anomaly(n))
    await clock.advance(0.1)
    got_a, got_b = await _drain(a), await _drain(b)
    assert got_a == got_b and len(got_a) == 1 and len(_ids(got_a)) == 49  # one frame, alike for both


async def test_a_resume_ahead_of_this_process_skips_what_the_client_has(
    fan: tuple[WsHub, MemoryBus, FakeClock],
) -> None:
    hub, bus, clock = fan
    await bus.publish(anomaly(0))
    await clock.advance(0)
    probe = hub.join(ANOMALIES)
    (subscribed,) = await _drain(probe)
    last = subscribed["last_event_id"]
    # A client that saw two more events on a replica ahead of this one.
    ahead = hub.join(Subscription(ANOMALIES.topics, ANOMALIES.filter, last + 2))
    assert [f["type"] for f in await _drain(ahead)] == ["subscribed"]
    for n in range(1, 4):
        await bus.publish(anomaly(n))
        await clock.advance(0.1)
    assert _ids(await _drain(ahead)) == [last + 3]


async def test_history_is_bounded_by_count_and_by_age(fan: tuple[WsHub, MemoryBus, FakeClock]) -> None:
    hub, bus, clock = fan
    await bus.publish(anomaly(0))
    await clock.advance(0)
    start = (await _drain(hub.join(ANOMALIES)))[0]["last_event_id"]
    for n in range(1, 11):
        await bus.publish(anomaly(n))
    await clock.advance(0.1)
    replay = hub.join(Subscription(ANOMALIES.topics, ANOMALIES.filter, start))
    assert _ids(await _drain(replay)) == [start + n for n in range(1, 11)]
    await clock.advance(61)  # older than history_s: gone
    await bus.publish(anomaly(11))
    await clock.advance(0.1)
    late = hub.join(Subscription(ANOMALIES.topics, ANOMALIES.filter, start))
    assert [f["type"] for f in await _drain(late)] == ["subscribed", "reset"]
    for n in range(12, 212):  # more than `history` (100), over four ticks: the oldest are gone
        await bus.publish(anomaly(n))
        if n % 50 == 0:
            await clock.advance(0.1)
    await clock.advance(0.1)
    tail = hub.join(Subscription(ANOMALIES.topics, ANOMALIES.filter, start + 11))
    assert [f["type"] for f in await _drain(tail)] == ["subscribed", "reset"]
    recent = hub.join(Subscription(ANOMALIES.topics, ANOMALIES.filter, start + 150))
    assert _ids(await _drain(recent)) == [start + n for n in range(151, 212)]


async def test_a_filtered_subscription_replays_only_what_it_wants(
    fan: tuple[WsHub, MemoryBus, FakeClock],
) -> None:
    hub, bus, clock = fan
    await bus.publish(anomaly(0))
    await clock.advance(0)
    start = (await _drain(hub.join(ANOMALIES)))[0]["last_event_id"]
    for n in range(1, 7):
        await bus.publish(anomaly(n, "critical" if n % 2 else "warning"))
    await clock.advance(0.1)
    critical = Subscription(ANOMALIES.topics, Filter(frozenset({"critical"})), start)
    frames = await _drain(hub.join(critical))
    assert [e["data"]["value"] for f in frames for e in f.get("events", ())] == [1.0, 3.0, 5.0]


async def test_a_stalled_fan_out_drops_past_its_bound_and_resets_everyone(
    fan: tuple[WsHub, MemoryBus, FakeClock],
) -> None:
    hub, bus, clock = fan
    await bus.publish(anomaly(0))
    await clock.advance(0)
    client = hub.join(ANOMALIES)
    start = (await _drain(client))[0]["last_event_id"]
    for n in range(1, 151):  # within one tick: 100 wait (the bound), 50 are dropped
        await bus.publish(anomaly(n))
    await clock.advance(0.1)
    frames = await _drain(client)
    assert [f["type"] for f in frames] == ["events", "reset"]
    assert len(frames[0]["events"]) == 100 and _total(hub.dropped) == 50
    assert frames[1]["last_event_id"] == start + 150
    resumed = await _drain(hub.join(Subscription(ANOMALIES.topics, ANOMALIES.filter, start + 10)))
    assert [f["type"] for f in resumed] == ["subscribed", "reset"]  # no resume across the dropped events


async def test_alert_details_are_read_while_the_tick_waits_and_again_for_a_change_after_that_read() -> None:
    clock = FakeClock()
    bus = MemoryBus(MemoryBusConfig(), clock)
    reads: list[tuple[float, list[str]]] = []

    def describe(ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        reads.append((clock.monotonic(), list(ids)))
        return {i: {"read": len(reads)} for i in ids}

    hub = WsHub(WsConfig(tick_s=0.1), bus, CollectorRegistry(), clock, describe)
    await hub.start()
    await bus.start()
    try:
        client = hub.join(Subscription(frozenset({"alerts", "anomalies"}), Filter()))
        await _drain(client)
        await bus.publish(anomaly(0))  # after a quiet spell: out at once, so the next event waits a tick
        await clock.advance(0)
        assert len(_ids(await _until(client, lambda frames: bool(_ids(frames))))) == 1
        started = clock.monotonic()
        await bus.publish(alert_created(1, 1))
        for _ in range(500):  # the read runs on a thread; the fake clock stands still meanwhile
            if reads:
                break
            await asyncio.sleep(0.01)
        assert reads == [(started, ["alert-1"])]  # read during the tick's wait, not after it
        await bus.publish(alert_created(1, 2))  # changed again after that read: read again
        await clock.advance(0.1)
        frames = await _until(client, lambda frames: len(_ids(frames)) >= 2)
        assert [e["data"]["alert"] for f in frames for e in f["events"]] == [{"read": 2}, {"read": 2}]
        assert reads[1][1] == ["alert-1"]
    finally:
        await hub.aclose()
        await bus.aclose()
