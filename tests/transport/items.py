"""Encoded batches for spool and transport tests."""

from __future__ import annotations

import numpy as np

from agent.outbox.outbox import OutboxItem
from shared import codec
from shared.model import Batch, BatchClass, Event, SeriesKey, SeriesPoints, Severity

T0 = 1_700_000_000_000


def metrics_item(seq: int, points: int = 100, epoch: int = 7, start_ms: int = T0) -> OutboxItem:
    """An encoded METRICS batch of one series with `points` points 1 s apart."""
    ts = start_ms + np.arange(points, dtype=np.int64) * 1000
    batch = Batch(
        epoch, seq, (SeriesPoints(SeriesKey.of("temp", {"dev": "sw1"}), ts, np.arange(points) * 1.0),)
    )
    return OutboxItem.of(batch, codec.encode(batch))


def event_item(seq: int, epoch: int = 7) -> OutboxItem:
    batch = Batch(
        epoch, seq, (), (Event.of(T0, "snmp.trap", Severity.CRITICAL, "sw1", "link down"),), BatchClass.EVENTS
    )
    return OutboxItem.of(batch, codec.encode(batch))
