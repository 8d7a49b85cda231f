"""The state database's WAL: commits never checkpoint, the background checkpointer does, readers too."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.db.checkpoint import WalCheckpointer
from hub.db.engine import create_engine
from shared.clock import FakeClock

pytestmark = pytest.mark.integration

_ROW = "x" * 3000  # about one page a row


def _fill(engine: sa.Engine, rows: int, start: int = 0) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.exec_driver_sql(
            "INSERT INTO t (id, v) VALUES (?, ?)", [(i, _ROW) for i in range(start, start + rows)]
        )


async def test_commits_leave_the_log_to_the_checkpointer_which_copies_it_back(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite"
    engine = create_engine(f"sqlite:///{db}")
    checkpoints = WalCheckpointer(engine, clock=FakeClock())
    try:
        _fill(engine, 1500)  # past SQLite's default autocheckpoint of 1,000 pages, in one commit...
        _fill(engine, 1500, start=1500)  # ...and the next commit would have checkpointed it
        wal = Path(f"{db}-wal")
        assert wal.stat().st_size > 3000 * 4096  # both commits' pages are still in the log
        size_before = db.stat().st_size

        await checkpoints.checkpoint()
        assert checkpoints.frames_pending == 0 and checkpoints.failures == 0
        assert db.stat().st_size > size_before + 3000 * 3000  # copied into the database file

        _fill(engine, 10, start=3000)  # the log is reused from its start after a full checkpoint
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 3010
    finally:
        await checkpoints.aclose()
        engine.dispose()


async def test_checkpoints_run_on_their_interval_beside_a_writer_and_a_reader(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    clock = FakeClock()
    checkpoints = WalCheckpointer(engine, interval_s=1.0, clock=clock)
    await checkpoints.start()
    await asyncio.sleep(0)
    try:
        stop = asyncio.Event()

        async def writer() -> int:
            n = 0
            while not stop.is_set():
                await asyncio.to_thread(_fill, engine, 20, n)
                n += 20
                await asyncio.sleep(0.01)
            return n

        async def reader() -> int:
            reads = 0
            while not stop.is_set():
                with engine.connect() as conn:  # a snapshot held while the checkpoint runs
                    conn.exec_driver_sql("SELECT max(id) FROM t").scalar()
                    await asyncio.sleep(0.005)
                reads += 1
            return reads

        _fill(engine, 1, start=10**9)  # the table exists before the reader starts
        tasks = [asyncio.create_task(writer()), asyncio.create_task(reader())]
        for _ in range(5):
            await asyncio.sleep(0.1)
            await clock.advance(1.0)
            for _ in range(50):  # the pass itself runs in a worker thread
                await asyncio.sleep(0.01)
        stop.set()
        written, reads = await asyncio.gather(*tasks)
        assert (checkpoints.passes, checkpoints.failures) == (5, 0) and reads > 0
        await checkpoints.checkpoint()
        assert checkpoints.frames_pending == 0
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == written + 1
    finally:
        await checkpoints.aclose()
        engine.dispose()


async def test_the_checkpointer_does_nothing_for_a_database_without_a_log_and_closes_twice(
    tmp_path: Path,
) -> None:
    engine = create_engine("sqlite://")  # in memory: no WAL
    checkpoints = WalCheckpointer(engine, clock=FakeClock())
    await checkpoints.start()
    await checkpoints.checkpoint()
    assert (checkpoints.frames_pending, checkpoints.failures) == (0, 0)
    await checkpoints.aclose()
    await checkpoints.aclose()
    engine.dispose()
