"""LOGS batches: bounded in records and bytes, flushed on age, ids from the shared sequence, and the first
thing a full spool sheds (a log storm never evicts metrics, events or anomalies)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import SpoolConfig
from agent.outbox.batch import Batcher, Sequencer
from agent.outbox.log_batch import LogBatcher, record_bytes
from agent.outbox.outbox import OutboxItem
from agent.outbox.spool import Spool
from shared import codec
from shared.clock import FakeClock
from shared.model import Batch, BatchClass, LogRecord
from tests.transport.items import T0, event_item, metrics_item


def _record(i: int, text: str = "link down") -> LogRecord:
    return LogRecord(T0 + i, T0 + i, f"{text} {i}", host="sw1", app="ifmgr", device="sw1")


async def _bounded_by_count_bytes_and_age() -> None:
    clock = FakeClock(T0)
    seq = Sequencer(boot_epoch=9)
    logs = LogBatcher(seq, clock, max_records=4, max_bytes=10_000, max_age_s=2.0)
    metrics = Batcher(seq, clock, max_points=10, max_age_s=5.0)
    full = logs.add([_record(i) for i in range(9)])
    assert [len(b.logs) for b in full] == [4, 4] and not logs.due()
    assert metrics.event_batch([]).seq == 3  # one sequence for every class: no gap at the hub
    await clock.advance(2.0)
    assert logs.due()
    rest = logs.flush()
    assert rest is not None and [r.message for r in rest.logs] == ["link down 8"]
    assert (rest.seq, rest.batch_class, logs.flush()) == (4, BatchClass.LOGS, None)
    big = [_record(i, "x" * 3000) for i in range(10)]
    by_bytes = LogBatcher(seq, clock, max_records=1000, max_bytes=10_000, max_age_s=2.0).add(big)
    assert [len(b.logs) for b in by_bytes] == [3, 3, 3]
    assert all(sum(record_bytes(r) for r in b.logs) <= 10_000 for b in by_bytes)


@pytest.mark.unit
async def test_log_batches_are_bounded_by_records_bytes_and_age_and_share_the_sequence() -> None:
    await _bounded_by_count_bytes_and_age()


def _logs_item(seq: int, n: int = 200) -> OutboxItem:
    batch = Batch(7, seq, batch_class=BatchClass.LOGS, logs=tuple(_record(seq * 1000 + i) for i in range(n)))
    return OutboxItem.of(batch, codec.encode(batch))


@pytest.mark.integration
async def test_a_full_spool_sheds_log_batches_first_and_a_log_batch_evicts_only_logs(tmp_path: Path) -> None:
    size = len(metrics_item(1, points=600).envelope) + 80
    s = Spool(tmp_path, SpoolConfig.model_construct(max_bytes=size * 3, downsample_at=1.0), FakeClock(T0))
    s.open()
    s.put(event_item(100))
    for i in range(1, 6):
        s.put(_logs_item(i))
    s.put(metrics_item(50, points=600))  # evicts log batches, the oldest first, to make room
    s.put(metrics_item(51, points=600))
    s.put(_logs_item(60))  # a new log batch may evict older log batches only, never metrics
    kept = []
    for _ in range(s.pending()):
        item = await s.get()
        kept.append((item.batch_id, item.batch_class))
        s.ack(item)
    s.close()
    assert ("7-100", BatchClass.EVENTS) in kept
    assert ("7-50", BatchClass.METRICS) in kept and ("7-51", BatchClass.METRICS) in kept
    logs_kept = [bid for bid, cls in kept if cls is BatchClass.LOGS]
    assert s.dropped[("logs", "full")] == 6 - len(logs_kept) > 0
    assert s.dropped.get(("metrics", "full"), 0) == 0 and s.dropped.get(("events", "full"), 0) == 0
