"""The batcher flushes on size or age, numbers batches, and keeps timestamps strictly increasing."""

from __future__ import annotations

import numpy as np
import pytest

from agent.outbox.batch import Batcher, Sequencer
from shared.clock import FakeClock
from shared.model import BatchClass, Sample, SeriesKey

pytestmark = pytest.mark.unit

K1, K2 = SeriesKey.of("cpu", {"core": "0"}), SeriesKey.of("cpu", {"core": "1"})


def test_batch_is_due_when_it_reaches_max_points() -> None:
    b = Batcher(Sequencer(7), FakeClock(), max_points=4, max_age_s=60)
    b.add([Sample(K1, 1, 1.0), Sample(K2, 1, 2.0)])
    assert not b.due()
    b.add([Sample(K1, 2, 1.5), Sample(K2, 2, 2.5)])
    assert b.due()
    batch = b.flush()
    assert batch is not None and (batch.boot_epoch, batch.seq, batch.point_count) == (7, 1, 4)
    assert b.flush() is None


async def test_batch_is_due_when_its_oldest_point_reaches_max_age() -> None:
    clock = FakeClock()
    b = Batcher(Sequencer(1), clock, max_points=1000, max_age_s=5)
    assert not b.due()
    b.add([Sample(K1, 1, 1.0)])
    await clock.advance(4.9)
    assert not b.due()
    await clock.advance(0.2)
    assert b.due()


def test_columns_keep_order_and_drop_repeated_timestamps() -> None:
    b = Batcher(Sequencer(1), FakeClock(), max_points=100, max_age_s=5)
    b.add([Sample(K1, 10, 1.0)], scores=np.array([0.5], np.float32))
    b.add([Sample(K1, 10, 9.0), Sample(K1, 20, 2.0)], scores=np.array([0.1, 0.9], np.float32))
    batch = b.flush()
    assert batch is not None
    (s,) = batch.series
    assert s.timestamps_ms.tolist() == [10, 20]
    assert s.values.tolist() == [1.0, 2.0]
    assert s.scores is not None and s.scores.tolist() == pytest.approx([0.5, 0.9])


def test_sequence_numbers_are_shared_by_metric_and_event_batches() -> None:
    seq = Sequencer(1)
    b = Batcher(seq, FakeClock(), max_points=100, max_age_s=5)
    urgent = b.event_batch([])
    b.add([Sample(K1, 1, 1.0)])
    regular = b.flush()
    assert urgent.batch_class is BatchClass.ANOMALY
    assert regular is not None and (urgent.seq, regular.seq) == (1, 2)
