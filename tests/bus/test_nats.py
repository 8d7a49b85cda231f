"""The NATS JetStream bus against a real nats-server: processes in one group share messages with none
lost and none twice, Nats-Msg-Id dedup, bad bytes on the stream, a dead worker's messages go to the
other, and acked publishes survive a nats-server kill and restart."""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from typing import Any

import nats
import pytest

from hub.bus.errors import BusUnavailable
from hub.bus.messages import BatchStored, Message
from hub.bus.nats import NatsBus
from tests.bus.conftest import BusNats, settle, until

pytestmark = pytest.mark.integration


def batch(n: int, agent: str = "dc1/edge1") -> BatchStored:
    return BatchStored.create(agent=agent, batch_id=str(n), points=10, max_ts_ms=1000 + n)


class Inbox:
    def __init__(self) -> None:
        self.ids: list[str] = []

    async def __call__(self, msg: Message) -> None:
        self.ids.append(msg.id)


def nats_bus(srv: BusNats, **cfg: Any) -> NatsBus:
    return NatsBus(srv.config(**cfg), srv.tls)


async def test_two_processes_in_one_group_share_2000_messages_from_4_publishers_none_lost_none_twice(
    bus_nats: BusNats,
) -> None:
    workers = [nats_bus(bus_nats, concurrency=16) for _ in range(2)]
    inboxes = [Inbox(), Inbox()]
    api = nats_bus(bus_nats)
    try:
        for w, inbox in zip(workers, inboxes, strict=True):
            w.subscribe("batch.stored", "alerts", inbox)
            await w.start()
        await api.start()

        async def publisher(agent: str) -> None:
            for n in range(500):
                await api.publish(batch(n, agent))

        await asyncio.gather(*(publisher(f"dc1/edge{p}") for p in range(4)))
        await until(lambda: len(inboxes[0].ids) + len(inboxes[1].ids) >= 2000, timeout=20)
        await settle()
        got = Counter(inboxes[0].ids + inboxes[1].ids)
        assert len(got) == 2000 and set(got.values()) == {1}
        assert got.keys() == {batch(n, f"dc1/edge{p}").id for p in range(4) for n in range(500)}
        assert inboxes[0].ids and inboxes[1].ids  # both processes took part
        assert api.stats.published == {"batch.stored": 2000}
        assert sum(w.stats.delivered[("batch.stored", "alerts")] for w in workers) == 2000
    finally:
        await asyncio.gather(api.aclose(), *(w.aclose() for w in workers))


async def test_the_same_id_published_twice_is_stored_and_delivered_once(bus_nats: BusNats) -> None:
    bus, inbox = nats_bus(bus_nats), Inbox()
    other_process = nats_bus(bus_nats)
    try:
        bus.subscribe("batch.stored", "alerts", inbox)
        await bus.start()
        await other_process.start()
        await bus.publish(batch(1))
        await other_process.publish(batch(1))  # the same fact, reported by a second hub process
        await bus.publish(batch(2))
        await until(lambda: len(inbox.ids) == 2)
        await settle()
        assert inbox.ids == [batch(1).id, batch(2).id]
        assert bus.stats.published == {"batch.stored": 2}
        assert other_process.stats.duplicates == {"batch.stored": 1}
        assert other_process.stats.published == {"batch.stored": 1}
        assert bus.stats.duplicates == {}
    finally:
        await asyncio.gather(bus.aclose(), other_process.aclose())


async def test_undecodable_bytes_on_the_stream_are_counted_and_dropped_and_the_rest_flows(
    bus_nats: BusNats,
) -> None:
    bus, inbox = nats_bus(bus_nats), Inbox()
    bus.subscribe("batch.stored", "alerts", inbox)
    await bus.start()
    ctx = ssl.create_default_context(cafile=str(bus_nats.tls.ca_file))
    ctx.load_cert_chain(str(bus_nats.tls.cert_file), str(bus_nats.tls.key_file))
    raw = await nats.connect(bus_nats.url, tls=ctx, tls_hostname="localhost")
    try:
        await bus.publish(batch(1))  # the stream exists once a publish returned
        js = raw.jetstream()
        await js.publish("outpost.bus.batch.stored", b'{"id": "x", "agent": 3}')
        await js.publish("outpost.bus.batch.stored", b"\x00not json")
        await bus.publish(batch(2))
        await until(lambda: len(inbox.ids) == 2)
        await until(lambda: bus.stats.decode_errors == {"batch.stored": 2})
        await settle()
        assert inbox.ids == [batch(1).id, batch(2).id]
        assert bus.stats.handler_failures == {} and bus.stats.dead == {}
    finally:
        await raw.close()
        await bus.aclose()


async def test_messages_a_dead_worker_held_unacked_are_redelivered_to_the_other(bus_nats: BusNats) -> None:
    stuck_started = asyncio.Event()

    async def hangs(_msg: Message) -> None:
        stuck_started.set()
        await asyncio.Event().wait()

    dying = nats_bus(bus_nats, ack_wait_s=1.0, concurrency=4)
    dying.subscribe("batch.stored", "alerts", hangs)
    await dying.start()
    survivor, inbox = nats_bus(bus_nats, ack_wait_s=1.0), Inbox()
    try:
        for n in range(4):
            await dying.publish(batch(n))
        await asyncio.wait_for(stuck_started.wait(), 10)
        await dying.aclose()  # gives up on the stuck handlers after ack_wait; nothing was acked
        survivor.subscribe("batch.stored", "alerts", inbox)
        await survivor.start()
        await until(lambda: len(inbox.ids) == 4, timeout=15)
        await settle()
        assert sorted(inbox.ids) == sorted(batch(n).id for n in range(4))
        assert dying.stats.delivered == {}
    finally:
        await asyncio.gather(dying.aclose(), survivor.aclose())


async def test_publish_raises_bus_unavailable_when_nats_is_down_and_counts_it(bus_nats: BusNats) -> None:
    bus = nats_bus(bus_nats, publish_timeout_s=0.5)
    try:
        await bus.start()
        await bus.publish(batch(1))
        bus_nats.kill()
        with pytest.raises(BusUnavailable) as err:
            await asyncio.wait_for(bus.publish(batch(2)), 5)
        assert err.value.topic == "batch.stored" and not err.value.permanent
        assert bus.stats.publish_failures == {"batch.stored": 1}
        assert bus.stats.published == {"batch.stored": 1}
    finally:
        await bus.aclose()


async def test_acked_publishes_survive_a_nats_server_kill_and_restart(bus_nats: BusNats) -> None:
    api = nats_bus(bus_nats, publish_timeout_s=15)
    worker, inbox = nats_bus(bus_nats, concurrency=8), Inbox()
    worker.subscribe("batch.stored", "alerts", inbox)
    try:
        await api.start()
        for n in range(100):  # stored before the worker ever connects
            await api.publish(batch(n))
        bus_nats.kill()  # SIGKILL by PID: no graceful shutdown
        await worker.start()
        during = asyncio.create_task(api.publish(batch(100)))  # waits through the outage
        await asyncio.sleep(0.5)
        bus_nats.start()  # same port, same JetStream store dir
        await asyncio.wait_for(during, 15)
        for n in range(101, 150):
            await api.publish(batch(n))
        await until(lambda: len(inbox.ids) >= 150, timeout=20)
        await settle()
        assert Counter(inbox.ids) == Counter(batch(n).id for n in range(150))
        assert api.stats.published == {"batch.stored": 150}
    finally:
        await asyncio.gather(api.aclose(), worker.aclose())


async def test_the_stream_and_a_groups_consumer_are_created_as_configured(bus_nats: BusNats) -> None:
    earlier = nats_bus(bus_nats, max_deliver=2, ack_wait_s=3.0)  # the same group, an older config
    earlier.subscribe("anomaly.reported", "alerts", Inbox())
    await earlier.start()
    await earlier.publish(batch(0))
    await asyncio.sleep(0.3)  # let it bind its consumer
    await earlier.aclose()
    bus = nats_bus(bus_nats, max_deliver=4, ack_wait_s=7.0, max_bytes=1 << 20)
    bus.subscribe("anomaly.reported", "alerts", Inbox())
    ctx = ssl.create_default_context(cafile=str(bus_nats.tls.ca_file))
    ctx.load_cert_chain(str(bus_nats.tls.cert_file), str(bus_nats.tls.key_file))
    raw = await nats.connect(bus_nats.url, tls=ctx, tls_hostname="localhost")
    try:
        await bus.start()
        await bus.publish(batch(1))
        jsm = raw.jsm()
        stream = (await jsm.stream_info("OUTPOST_BUS")).config
        assert (stream.subjects, stream.max_age, stream.max_bytes) == (["outpost.bus.>"], 86400.0, 1 << 20)
        kinds = (str(stream.storage), str(stream.retention), stream.duplicate_window)
        assert kinds == ("file", "limits", 120.0)

        async def consumer() -> Any:
            return (await jsm.consumer_info("OUTPOST_BUS", "outpost-bus-alerts-anomaly-reported")).config

        for _ in range(100):  # the consumer is bound (and updated) in the background after start()
            cc = await consumer()
            if cc.ack_wait == 7.0:
                break
            await asyncio.sleep(0.05)
        assert (cc.filter_subject, cc.ack_wait, cc.max_deliver) == ("outpost.bus.anomaly.reported", 7.0, 4)
        assert str(cc.ack_policy) == "explicit"
    finally:
        await raw.close()
        await bus.aclose()
