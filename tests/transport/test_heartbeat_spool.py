"""Heartbeats in the disk spool: at most one waits per boot, a newer one replacing it, counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import SpoolConfig
from agent.outbox.outbox import OutboxItem
from agent.outbox.spool import Spool
from shared import codec
from shared.clock import FakeClock
from shared.model import Batch, BatchClass, Heartbeat
from tests.transport.items import T0, event_item, metrics_item

pytestmark = pytest.mark.integration


def _spool(path: Path, clock: FakeClock | None = None) -> Spool:
    s = Spool(path, SpoolConfig(), clock or FakeClock(T0))
    s.open()
    return s


def _beat(seq: int, ts_ms: int, boot: int = 7) -> OutboxItem:
    batch = Batch(boot, seq, batch_class=BatchClass.HEARTBEAT, heartbeat=Heartbeat(ts_ms, "1.0", 10_000))
    return OutboxItem.of(batch, codec.encode(batch))


def _heartbeat_of(item: OutboxItem) -> Heartbeat:
    hb = codec.decode(item.envelope)[1].heartbeat
    assert hb is not None
    return hb


async def test_a_long_outage_leaves_one_heartbeat_in_the_spool_not_one_per_interval(tmp_path: Path) -> None:
    s = _spool(tmp_path)
    s.put(metrics_item(1))
    for i in range(1, 1001):  # the hub is down: nothing is taken out
        s.put(_beat(1000 + i, T0 + i * 10_000))
    s.put(event_item(2))
    assert s.pending() == 3
    assert s.replaced_heartbeats == 999
    assert s.dropped[("heartbeat", "replaced")] == 999
    assert s.heartbeat(7) == (2000, False)
    s.close()
    again = _spool(tmp_path)  # replaced ones were acked internally: a restart does not bring them back
    assert again.pending() == 3
    items = [await again.get() for _ in range(3)]
    beats = [i for i in items if i.batch_class is BatchClass.HEARTBEAT]
    assert [b.batch_id for b in beats] == ["7-2000"]
    assert _heartbeat_of(beats[0]).ts_ms == T0 + 1000 * 10_000


async def test_a_heartbeat_under_the_same_id_replaces_the_unsent_one(tmp_path: Path) -> None:
    s = _spool(tmp_path)
    s.put(_beat(3, T0))
    s.put(_beat(3, T0 + 10_000))  # what the runtime does: the unsent one's id, fresh content
    assert (s.pending(), s.replaced_heartbeats) == (1, 1)
    item = await s.get()
    assert (item.batch_id, _heartbeat_of(item).ts_ms) == ("7-3", T0 + 10_000)
    s.ack(item)
    assert s.heartbeat(7) is None and s.pending() == 0


async def test_a_heartbeat_out_for_delivery_is_not_replaced_and_an_old_one_coming_back_is_dropped(
    tmp_path: Path,
) -> None:
    s = _spool(tmp_path)
    s.put(_beat(1, T0))
    out = await s.get()
    assert s.heartbeat(7) == (1, True)
    s.put(_beat(1, T0 + 5_000))  # same id while out: ignored, the one on its way answers for it
    assert (s.pending(), s.replaced_heartbeats) == (1, 0)
    s.put(_beat(2, T0 + 10_000))
    assert s.pending() == 2
    s.nack(out)  # the send failed while a newer heartbeat waits: the old one is not queued again
    assert (s.pending(), s.replaced_heartbeats) == (1, 1)
    item = await s.get()
    assert item.batch_id == "7-2"


async def test_a_heartbeat_of_an_earlier_boot_is_sent_not_replaced(tmp_path: Path) -> None:
    s = _spool(tmp_path)
    s.put(_beat(5, T0, boot=6))
    s.close()
    again = _spool(tmp_path)
    again.put(_beat(1, T0 + 60_000, boot=7))
    assert (again.pending(), again.replaced_heartbeats) == (2, 0)
    assert (again.heartbeat(6), again.heartbeat(7)) == ((5, False), (1, False))
    ids = sorted([(await again.get()).batch_id for _ in range(2)])
    assert ids == ["6-5", "7-1"]
