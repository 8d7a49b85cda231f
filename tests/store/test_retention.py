"""Rollups and retention of the embedded store, driven by an injected clock."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from hub.store.base import Agg, RangeQuery, aggregate
from hub.store.config import EmbeddedStoreConfig
from hub.store.embedded.store import EmbeddedStore
from shared.clock import FakeClock
from shared.model import Batch, SeriesKey, SeriesPoints
from tests.support.outpost import wait_for

pytestmark = pytest.mark.integration

DAY = 86_400_000
HOUR = 3_600_000
T0 = 1_789_999_200_000
DAYS = 3


def history(days: int = DAYS) -> tuple[np.ndarray, np.ndarray]:
    """A random walk in 0.5 steps every 10 s: exact sums, realistic shape."""
    n = days * 8640
    rng = np.random.default_rng(7)
    return T0 + np.arange(n, dtype=np.int64) * 10_000, 100 + np.cumsum(rng.integers(-2, 3, n)) * 0.5


def open_store(path: Path, clock: FakeClock, **overrides: object) -> EmbeddedStore:
    store = EmbeddedStore(path, EmbeddedStoreConfig.model_validate(overrides), clock)
    store.open()
    return store


def write_history(
    store: EmbeddedStore, days: int = DAYS, per_batch: int = 3000
) -> tuple[np.ndarray, np.ndarray]:
    ts, vals = history(days)
    key = SeriesKey.of("temp", {"sensor": "inlet"})
    for seq, lo in enumerate(range(0, ts.shape[0], per_batch)):
        store.write(
            "edge-1", Batch(1, seq, (SeriesPoints(key, ts[lo : lo + per_batch], vals[lo : lo + per_batch]),))
        )
    return ts, vals


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0 + DAYS * DAY)


@pytest.mark.parametrize("flushed", [True, False], ids=["from-chunks", "from-head"])
@pytest.mark.parametrize("step", [5 * 60_000, HOUR, DAY], ids=["5m", "1h", "1d"])
def test_rollup_answers_equal_aggregating_the_raw_points(
    tmp_path: Path, clock: FakeClock, step: int, flushed: bool
) -> None:
    store = open_store(tmp_path, clock)
    try:
        ts, vals = write_history(store)
        if flushed:
            store.flush()
        for agg in Agg:
            (got,) = store.query(RangeQuery("temp", T0, T0 + DAYS * DAY - 1, step_ms=step, agg=agg))
            want_ts, want = aggregate(ts, vals, step, agg)
            assert got.timestamps_ms.tolist() == want_ts.tolist()
            assert np.allclose(got.values, want, rtol=1e-12, atol=0), agg
    finally:
        store.close()


def test_raw_points_expire_after_raw_retention_but_rollups_remain(tmp_path: Path, clock: FakeClock) -> None:
    store = open_store(tmp_path, clock, raw_retention=timedelta(days=2))
    try:
        ts, _ = write_history(store)
        # Now = end of day 3: raw blocks ending on or before the end of day 1 go (whole 2 h blocks).
        deleted = store.apply_retention(T0 + DAYS * DAY)
        assert deleted == 8640
        (raw,) = store.query(RangeQuery("temp", T0, T0 + DAYS * DAY))
        assert raw.timestamps_ms[0] == T0 + DAY and raw.timestamps_ms.shape[0] == 2 * 8640
        (hourly,) = store.query(RangeQuery("temp", T0, T0 + DAYS * DAY - 1, step_ms=HOUR, agg=Agg.COUNT))
        assert hourly.values.tolist() == [360.0] * (DAYS * 24)
    finally:
        store.close()


def test_each_resolution_expires_on_its_own_retention(tmp_path: Path, clock: FakeClock) -> None:
    store = open_store(tmp_path, clock)  # defaults: raw 14 d, 5 min 90 d, 1 h 800 d
    try:
        write_history(store)
        end = T0 + DAYS * DAY
        store.apply_retention(end + 100 * DAY)
        assert store.query(RangeQuery("temp", T0, end)) == []
        assert store.query(RangeQuery("temp", T0, end, step_ms=5 * 60_000, agg=Agg.COUNT)) == []
        (hourly,) = store.query(RangeQuery("temp", T0, end - 1, step_ms=HOUR, agg=Agg.COUNT))
        assert hourly.values.sum() == DAYS * 8640
        store.apply_retention(end + 900 * DAY)
        assert store.query(RangeQuery("temp", T0, end - 1, step_ms=HOUR)) == []
    finally:
        store.close()


def test_points_behind_the_raw_horizon_are_dropped_and_counted(tmp_path: Path, clock: FakeClock) -> None:
    store = open_store(tmp_path, clock, raw_retention=timedelta(days=2))
    try:
        ts, vals = write_history(store)
        store.apply_retention(T0 + DAYS * DAY)
        late = SeriesPoints(SeriesKey.of("temp", {"sensor": "inlet"}), ts[:3], vals[:3] + 1000)
        assert store.write("edge-1", Batch(2, 1, (late,))).accepted_points == 0
        assert store.stats.points_below_retention == 3
        (hourly,) = store.query(RangeQuery("temp", T0, T0 + HOUR - 1, step_ms=HOUR, agg=Agg.MAX))
        assert hourly.values.tolist() == [vals[:360].max()]
    finally:
        store.close()


async def test_batch_ids_are_remembered_for_the_dedup_window_then_forgotten(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = open_store(tmp_path, clock)
    try:
        batch = Batch(1, 1, (SeriesPoints(SeriesKey.of("x"), np.array([T0]), np.array([1.0])),))
        store.write("edge-1", batch)
        await clock.advance(71 * 3600)
        store.apply_retention(clock.now_ms())
        assert store.write("edge-1", batch).duplicate is True
        await clock.advance(2 * 3600)
        store.apply_retention(clock.now_ms())
        assert store.write("edge-1", batch).duplicate is False
    finally:
        store.close()


async def test_the_head_is_flushed_once_the_flush_interval_has_passed(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = open_store(tmp_path, clock, flush_interval=timedelta(minutes=10))
    try:
        key = SeriesKey.of("x")
        store.write("edge-1", Batch(1, 1, (SeriesPoints(key, np.array([T0]), np.array([1.0])),)))
        assert store.stats.flushes == 0
        await clock.advance(600)
        store.write("edge-1", Batch(1, 2, (SeriesPoints(key, np.array([T0 + 10_000]), np.array([2.0])),)))
        wait_for(lambda: store.stats.flushes == 1, what="the background flush")  # a thread of its own
        assert (tmp_path / "ingest.journal").stat().st_size == 0
        assert not (tmp_path / "ingest.journal.sealed").exists()
    finally:
        store.close()


def test_a_reopened_store_replays_the_journal_it_did_not_flush(tmp_path: Path, clock: FakeClock) -> None:
    crashed = open_store(tmp_path, clock)
    ts, vals = write_history(crashed, days=1)
    assert crashed.stats.flushes == 0  # never closed: everything is in the journal only
    store = open_store(tmp_path, clock)
    try:
        (got,) = store.query(RangeQuery("temp", T0, T0 + DAY))
        assert got.timestamps_ms.tolist() == ts.tolist() and got.values.tolist() == vals.tolist()
    finally:
        store.close()


def test_late_points_into_a_rolled_up_block_update_its_rollups(tmp_path: Path, clock: FakeClock) -> None:
    store = open_store(tmp_path, clock)
    try:
        ts, vals = write_history(store)
        store.flush()
        late = SeriesPoints(SeriesKey.of("temp", {"sensor": "inlet"}), ts[:2], np.array([-500.0, 900.0]))
        store.write("edge-1", Batch(1, 10_000, (late,)))
        for flushed in (False, True):
            (hourly,) = store.query(RangeQuery("temp", T0, T0 + 2 * HOUR - 1, step_ms=HOUR, agg=Agg.MAX))
            assert hourly.values.tolist() == [900.0, vals[360:720].max()], flushed
            (five,) = store.query(
                RangeQuery("temp", T0, T0 + 5 * 60_000 - 1, step_ms=5 * 60_000, agg=Agg.MIN)
            )
            assert five.values.tolist() == [-500.0]
            store.flush()
    finally:
        store.close()


def test_concurrent_writers_share_fsyncs_and_every_acknowledged_batch_is_stored(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = open_store(tmp_path, clock, head_max_points=500)
    key = SeriesKey.of("temp", {"sensor": "inlet"})

    def writer(agent: str) -> None:
        for seq in range(40):
            ts = T0 + (seq * 10 + np.arange(10, dtype=np.int64)) * 10_000
            assert (
                store.write(
                    agent, Batch(1, seq, (SeriesPoints(key, ts, ts.astype(np.float64)),))
                ).accepted_points
                == 10
            )

    threads = [threading.Thread(target=writer, args=(f"edge-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    reopened = open_store(tmp_path, clock)
    try:
        results = reopened.query(RangeQuery("temp", T0, T0 + DAY))
        assert [len(r.timestamps_ms) for r in results] == [400] * 4
        assert all(r.values.tolist() == r.timestamps_ms.astype(np.float64).tolist() for r in results)
    finally:
        reopened.close()
