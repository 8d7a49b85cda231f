"""`Bus.tail` on both implementations: every tail sees every message of its topics, in publish order,
numbered alike in every process (the ids WebSocket clients resume from)."""

from __future__ import annotations

import pytest

from hub.bus.errors import UnknownTopic
from hub.bus.factory import build_bus
from hub.bus.messages import AgentSeen, AlertsChanged, BatchStored, Message
from tests.bus.conftest import BusNats, MakeBus, until

pytestmark = pytest.mark.integration


def _alert(n: int) -> AlertsChanged:
    (msg,) = AlertsChanged.of([(f"a{n}", f"f{n}", "firing", "critical", "new")], n)
    return msg


def _batch(n: int) -> BatchStored:
    return BatchStored.create(agent="dc1/e1", batch_id=f"1-{n}", points=10, max_ts_ms=n)


async def test_two_tails_see_the_same_messages_with_the_same_increasing_numbers(make_bus: MakeBus) -> None:
    a = make_bus()
    seen_a: list[tuple[int, Message]] = []
    seen_b: list[tuple[int, Message]] = []
    # replay_s: a nats tail starts in the background; what was published meanwhile is replayed.
    a.tail({AlertsChanged.TOPIC, AgentSeen.TOPIC}, lambda seq, m: seen_a.append((seq, m)), replay_s=60)
    a.tail({AlertsChanged.TOPIC}, lambda seq, m: seen_b.append((seq, m)), replay_s=60)
    await a.start()
    for n in range(20):
        await a.publish(_alert(n))
        await a.publish(_batch(n))  # not tailed: numbered (a gap on nats) but never handed over
    await until(lambda: len(seen_a) == 20 and len(seen_b) == 20, what="20 alerts on both tails")
    assert [m.alert_ids for _, m in seen_a if isinstance(m, AlertsChanged)] == [(f"a{n}",) for n in range(20)]
    assert [s for s, _ in seen_a] == [s for s, _ in seen_b]
    seqs = [s for s, _ in seen_a]
    assert seqs == sorted(set(seqs)) and seqs[0] > 0


async def test_a_tail_that_raises_is_counted_and_the_feed_goes_on(make_bus: MakeBus) -> None:
    bus = make_bus()
    got: list[int] = []

    def flaky(seq: int, m: Message) -> None:
        if isinstance(m, AlertsChanged) and m.alert_ids == ("a1",):
            raise RuntimeError("bug")
        got.append(seq)

    bus.tail({AlertsChanged.TOPIC}, flaky, replay_s=60)
    await bus.start()
    for n in range(3):
        await bus.publish(_alert(n))
    await until(lambda: len(got) == 2, what="the two other alerts")
    assert bus.stats.tail_failures == 1


async def test_tail_refuses_an_unknown_topic(make_bus: MakeBus) -> None:
    with pytest.raises(UnknownTopic):
        make_bus().tail({"no.such.topic"}, lambda seq, m: None)


async def test_nats_tails_in_two_processes_number_alike_and_a_late_one_replays_the_stream(
    bus_nats: BusNats,
) -> None:
    buses = [build_bus(bus_nats.config(), bus_nats.tls) for _ in range(3)]
    first, second, late = buses
    seen: dict[str, list[int]] = {"first": [], "second": [], "late": []}
    try:
        first.tail({AlertsChanged.TOPIC}, lambda seq, m: seen["first"].append(seq), replay_s=60)
        second.tail({AlertsChanged.TOPIC}, lambda seq, m: seen["second"].append(seq), replay_s=60)
        await first.start()
        await second.start()
        for n in range(10):
            await (first if n % 2 else second).publish(_alert(n))
        await until(lambda: len(seen["first"]) == len(seen["second"]) == 10, what="10 alerts on both")
        assert seen["first"] == seen["second"] == sorted(seen["first"])
        late.tail({AlertsChanged.TOPIC}, lambda seq, m: seen["late"].append(seq), replay_s=60)
        await late.start()
        await until(lambda: len(seen["late"]) == 10, what="the late tail's replay")
        assert seen["late"] == seen["first"]
    finally:
        for bus in buses:
            await bus.aclose()
