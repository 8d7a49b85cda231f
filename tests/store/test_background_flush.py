"""The head is flushed in the background: writes and reads go on meanwhile, nothing is lost or doubled,
and what is on disk at any moment of a flush opens to every acknowledged point."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from hub.store.base import RangeQuery
from hub.store.config import EmbeddedStoreConfig
from hub.store.embedded.store import EmbeddedStore
from shared.model import Batch, Event, SeriesKey, SeriesPoints, Severity
from tests.support.outpost import wait_for

pytestmark = pytest.mark.integration

T0 = 1_789_999_200_000
SERIES = 4
POINTS = 50  # per series and batch
HEAD_MAX = SERIES * POINTS * 3  # a flush every 3 batches
KEYS = [SeriesKey.of("load", {"core": str(c)}) for c in range(SERIES)]


def batch(seq: int) -> Batch:
    """Points seq*POINTS .. of every series (value = point index + core) and one event per batch."""
    idx = np.arange(seq * POINTS, (seq + 1) * POINTS, dtype=np.int64)
    series = tuple(
        SeriesPoints(key, T0 + idx * 10_000, idx.astype(np.float64) + c) for c, key in enumerate(KEYS)
    )
    event = Event(int(T0 + idx[0] * 10_000), "trap.linkDown", Severity.WARNING, "sw1", f"batch {seq}", ())
    return Batch(1, seq, series, (event,))


def open_store(path: Path) -> EmbeddedStore:
    store = EmbeddedStore(path, EmbeddedStoreConfig(head_max_points=HEAD_MAX))
    store.open()
    return store


def assert_holds(store: EmbeddedStore, batches: int) -> None:
    """Every point of batches 0..batches-1 once, in order, with its value; every event once."""
    results = store.query(RangeQuery("load", T0, T0 + 10**10))
    assert len(results) == SERIES
    expected = np.arange(batches * POINTS)
    for result in results:
        core = int(result.key.label("core"))
        assert (result.timestamps_ms - T0).tolist() == (expected * 10_000).tolist()
        assert result.values.tolist() == (expected + core).astype(float).tolist()
    messages = [e.message for _, e in store.events(T0, T0 + 10**10, limit=10_000)]
    assert sorted(messages) == sorted(f"batch {s}" for s in range(batches))


@contextmanager
def flush_held(store: EmbeddedStore) -> Iterator[None]:
    """Keeps a background flush from reaching SQLite (it waits for the connection lock) while inside."""
    with store._db_lock:  # noqa: SLF001 - the one way to hold a flush at its start, deterministically
        yield


def test_writes_and_reads_go_on_while_a_flush_waits_and_the_next_full_head_waits_for_it(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path)
    try:
        with flush_held(store):
            for seq in range(3):  # the third fills the head: sealed, its flush waits for the lock
                store.write("edge", batch(seq))
            assert (tmp_path / "ingest.journal.sealed").exists() and store.stats.flushes == 0
            for seq in range(3, 6):  # a second head fills while the first is sealed
                store.write("edge", batch(seq))
            results = store.query(RangeQuery("load", T0, T0 + 10**10))
            assert [r.timestamps_ms.shape[0] for r in results] == [6 * POINTS] * SERIES  # both heads

            blocked = threading.Thread(target=store.write, args=("edge", batch(6)))
            blocked.start()  # the second head is full too: the write waits for the flush
            blocked.join(0.5)
            assert blocked.is_alive()
        blocked.join(10)
        assert not blocked.is_alive() and store.stats.flush_waits == 1
        wait_for(lambda: store.stats.flushes >= 1, what="the background flush")
        assert_holds(store, 7)
        assert store.write("edge", batch(2)).duplicate is True  # ids of a flushed head are remembered
    finally:
        store.close()
    assert not (tmp_path / "ingest.journal.sealed").exists()
    reopened = open_store(tmp_path)
    try:
        assert_holds(reopened, 7)
    finally:
        reopened.close()


def test_the_files_of_a_store_caught_mid_flush_open_to_every_acknowledged_point(tmp_path: Path) -> None:
    """What a crash leaves between seal and commit (both journal files, the database without the sealed
    head): copied while the flush is held, opened elsewhere; the sealed file is flushed at once."""
    live = tmp_path / "live"
    store = open_store(live)
    crash = tmp_path / "crash"
    try:
        for seq in range(2):
            store.write("edge", batch(seq))
        store.flush()  # something already in SQLite too
        with flush_held(store):
            for seq in range(2, 7):
                store.write("edge", batch(seq))
            assert (live / "ingest.journal.sealed").exists()
            shutil.copytree(live, crash)
    finally:
        store.close()
    recovered = open_store(crash)
    try:
        assert not (crash / "ingest.journal.sealed").exists()
        assert recovered.stats.flushes == 1
        assert_holds(recovered, 7)
        assert recovered.write("edge", batch(4)).duplicate is True
    finally:
        recovered.close()


def test_concurrent_writers_and_readers_across_many_background_flushes_lose_and_double_nothing(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path)
    errors: list[BaseException] = []
    done = threading.Event()
    next_seq = iter(range(60))
    lock = threading.Lock()

    def writer() -> None:
        while True:
            with lock:
                seq = next(next_seq, None)
            if seq is None:
                return
            try:
                store.write("edge", batch(seq))
            except BaseException as exc:  # surfaced below
                errors.append(exc)
                return

    def reader() -> None:
        while not done.is_set():
            for result in store.query(RangeQuery("load", T0, T0 + 10**10)):
                ts = result.timestamps_ms
                if ts.shape[0] and not bool(np.all(ts[1:] > ts[:-1])):
                    errors.append(AssertionError("a point read twice or out of order"))

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer) for _ in range(4)]
    try:
        for t in readers + writers:
            t.start()
        for t in writers:
            t.join(60)
        done.set()
        for t in readers:
            t.join(60)
        assert not errors
        wait_for(lambda: not (tmp_path / "ingest.journal.sealed").exists(), what="the last flush")
        assert store.stats.flushes >= 5
        assert_holds(store, 60)
    finally:
        store.close()
