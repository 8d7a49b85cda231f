"""The InfluxDB store's batch ids and events in the shared state database (real PostgreSQL, real
VictoriaMetrics): a batch one worker stored is a duplicate for the other, two workers storing the same
batch at once record its events once, and every worker's events are read from any process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from hub.db import migrate
from hub.db.engine import create_engine
from hub.store.config import InfluxStoreConfig
from hub.store.factory import build_store
from hub.store.influx.store import InfluxStore
from hub.store.ledger import SharedLedger
from shared.clock import FakeClock
from shared.model import Batch, Event, SeriesKey, SeriesPoints, Severity
from tests.store.conftest import T0, start_victoria_metrics
from tests.store.vm_reader import VictoriaMetricsReader
from tests.support.postgres import Postgres

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pg = Postgres(tmp_path_factory.mktemp("pg-logs"))
    try:
        url = pg.create_database("outpost")
        engine = create_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        pg.stop()


@pytest.fixture
def workers(tmp_path: Path, pg_url: str) -> Iterator[tuple[list[InfluxStore], FakeClock, list[sa.Engine]]]:
    """Two stores as two worker processes would have them: each its own state engine, one VictoriaMetrics."""
    vm = start_victoria_metrics(tmp_path)
    url = f"http://127.0.0.1:{vm.port}"
    cfg = InfluxStoreConfig(url=url, org="noc", bucket="outpost")
    clock = FakeClock(T0 + 86_400_000)
    engines = [create_engine(pg_url) for _ in range(2)]
    stores = [
        InfluxStore(cfg, tmp_path / f"w{i}.sqlite", clock, VictoriaMetricsReader(url), SharedLedger(e))
        for i, e in enumerate(engines)
    ]
    for s in stores:
        s.open()
    try:
        yield stores, clock, engines
    finally:
        for s in stores:
            s.close()
        with engines[0].begin() as conn:
            conn.exec_driver_sql("DELETE FROM store_batches")
            conn.exec_driver_sql("DELETE FROM store_events")
        for e in engines:
            e.dispose()
        vm.stop()


def _batch(boot: int, seq: int, events: int = 2) -> Batch:
    ts = T0 + seq * 1000 + np.arange(3, dtype=np.int64)
    return Batch(
        boot,
        seq,
        (SeriesPoints(SeriesKey.of("cpu", {"host": "a"}), ts, np.full(3, float(seq))),),
        tuple(
            Event.of(T0 + seq * 1000 + i, "trap.linkDown", Severity.WARNING, "sw1", f"port {i}")
            for i in range(events)
        ),
    )


def test_a_batch_one_worker_stored_is_a_duplicate_for_the_other_and_its_events_are_read_anywhere(
    workers: tuple[list[InfluxStore], FakeClock, list[sa.Engine]],
) -> None:
    (a, b), _, _ = workers
    first = a.write("dc1/edge1", _batch(7, 1))
    again = b.write("dc1/edge1", _batch(7, 1))  # redelivered to the other worker after ack_wait
    assert (first.accepted_points, first.duplicate) == (3, False)
    assert (again.accepted_points, again.duplicate) == (0, True)
    assert b.write("dc1/edge1", _batch(7, 2)).duplicate is False
    seen_by_b = b.events(T0, T0 + 10_000, 100)
    assert seen_by_b == a.events(T0, T0 + 10_000, 100)
    assert [(agent, e.ts_ms, e.message) for agent, e in seen_by_b] == [
        ("dc1/edge1", T0 + 2001, "port 1"),
        ("dc1/edge1", T0 + 2000, "port 0"),
        ("dc1/edge1", T0 + 1001, "port 1"),
        ("dc1/edge1", T0 + 1000, "port 0"),
    ]
    assert [e.kind for _, e in b.events(T0, T0 + 10_000, 100, kind="trap.")] == ["trap.linkDown"] * 4
    assert b.events(T0, T0 + 10_000, 100, kind="anomaly") == []
    assert seen_by_b[0][1].attributes == () and seen_by_b[0][1].severity is Severity.WARNING


def test_two_workers_storing_the_same_batches_at_once_record_each_once_with_its_events_once(
    workers: tuple[list[InfluxStore], FakeClock, list[sa.Engine]],
) -> None:
    stores, _, _ = workers
    new = [0, 0]
    barrier = threading.Barrier(2)

    def run(i: int) -> None:
        for seq in range(1, 21):
            barrier.wait()
            if not stores[i].write("dc1/edge2", _batch(9, seq, events=3)).duplicate:
                new[i] += 1

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(run, range(2)))
    assert sum(new) == 20
    events = stores[0].events(T0, T0 + 100_000, 1000)
    assert len(events) == 60
    assert len({(e.ts_ms, e.message) for _, e in events}) == 60


def test_retention_forgets_old_batch_ids_and_events_in_the_shared_database(
    workers: tuple[list[InfluxStore], FakeClock, list[sa.Engine]],
) -> None:
    (a, b), clock, _ = workers
    a.write("dc1/edge3", _batch(1, 1))
    later = clock.now_ms() + 91 * 86_400_000  # past events_retention (90 d) and the dedup window (72 h)
    assert b.apply_retention(later) == 0
    assert a.events(0, T0 + 10**12, 100) == []
    assert a.write("dc1/edge3", _batch(1, 1)).duplicate is False  # forgotten, so stored as new


def test_the_factory_builds_a_shared_ledger_store_only_when_given_the_state_database(
    tmp_path: Path, pg_url: str
) -> None:
    cfg = InfluxStoreConfig(url="http://127.0.0.1:9")
    engine = create_engine(pg_url)
    try:
        shared = build_store(cfg, tmp_path, shared_state=engine)
        local = build_store(cfg, tmp_path)
        shared.open()
        assert not (tmp_path / "influx-ledger.sqlite").exists()
        local.open()
        assert isinstance(shared, InfluxStore) and isinstance(local, InfluxStore)
        assert shared.events(0, 1, 10) == local.events(0, 1, 10) == []
        assert (tmp_path / "influx-ledger.sqlite").exists()  # the local one's file; the shared has none
        shared.close()
        local.close()
    finally:
        engine.dispose()
