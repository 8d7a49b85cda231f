"""Outbox retention: sent and dead rows past their keep time go, in bounded chunks; pending rows never."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.notify.models import notify_outbox as t
from hub.notify.outbox import Outbox
from hub.pipeline import RetentionJob
from hub.store.config import EmbeddedStoreConfig
from hub.store.embedded.store import EmbeddedStore
from hub.telemetry import HubMetrics
from shared.clock import FakeClock
from tests.notify.conftest import T0, note

pytestmark = pytest.mark.integration

DAY = 86_400_000


def _mark(engine: sa.Engine, ids: list[str], state: str, updated_ms: int) -> None:
    with engine.begin() as conn:
        conn.execute(t.update().where(t.c.id.in_(ids)).values(state=state, updated_ms=updated_ms))


async def test_prune_deletes_only_finished_rows_older_than_the_cutoff_across_several_chunks(
    engine: sa.Engine,
) -> None:
    outbox = Outbox(engine)
    notes = [note(i) for i in range(14)]
    assert all(outbox.insert_many(notes, T0))
    ids = [n.id for n in notes]
    cutoff = T0 + 10_000
    _mark(engine, ids[0:7], "sent", cutoff - 1)  # old sent: go
    _mark(engine, ids[7:9], "dead", T0)  # old dead letters: go
    _mark(engine, ids[9:10], "sent", cutoff)  # not older than the cutoff: kept
    _mark(engine, ids[10:12], "pending", T0)  # old but still owed to the receiver: kept whatever its age

    assert outbox.prune(cutoff, chunk=3) == 9  # three full chunks and an empty one
    assert outbox.prune(cutoff, chunk=3) == 0

    with engine.connect() as conn:
        left = conn.execute(sa.select(t.c.id, t.c.state)).all()
    assert {r[0] for r in left} == set(ids[9:])
    assert Counter(r[1] for r in left) == Counter({"pending": 4, "sent": 1})


async def test_the_hourly_retention_pass_prunes_notifications_past_keep_done_days(
    engine: sa.Engine, tmp_path: Path
) -> None:
    clock = FakeClock(T0)
    store = EmbeddedStore(tmp_path / "store", EmbeddedStoreConfig(), clock)
    store.open()
    outbox = Outbox(engine)
    notes = [note(i) for i in range(3)]
    outbox.insert_many(notes, T0)
    _mark(engine, [notes[0].id], "sent", T0)
    _mark(engine, [notes[1].id], "sent", T0 + 2 * DAY)
    metrics = HubMetrics()
    job = RetentionJob(store, metrics, clock, None, outbox, outbox_keep_ms=DAY, interval_s=3600)
    await job.start()
    await asyncio.sleep(0)  # the loop is asleep until its first pass
    try:
        await clock.advance(2 * 86_400)  # two days; the pass due then runs in a thread: wait for its count
        for _ in range(200):
            if metrics.notifications_pruned._value.get():
                break
            await asyncio.sleep(0.02)
        with engine.connect() as conn:
            left = {r[0] for r in conn.execute(sa.select(t.c.id))}
    finally:
        await job.aclose()
        store.close()
    assert left == {notes[1].id, notes[2].id}
    assert metrics.notifications_pruned._value.get() == 1
