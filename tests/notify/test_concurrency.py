"""1,000 notifications submitted at once from many tasks to two receivers: each delivered exactly once.

The outbox writes and claims run in worker threads against one SQLite file (PostgreSQL in the slow
variant); counters must match what the receivers really got, and a group's notifications arrive in
the order they were submitted.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from hub.notify.config import NotifyConfig
from hub.notify.dispatcher import Dispatcher
from hub.notify.metrics import NotifyCollector
from tests.notify.conftest import note
from tests.notify.recorder import Recorder
from tests.support.hubdb import migrated_engine

pytestmark = pytest.mark.integration

TOTAL = 1000
GROUPS = 50  # per receiver: 10 notifications in each group, sent one at a time, in order


async def _run(engine: sa.Engine, recorder: Recorder) -> None:
    receivers = [
        {
            "kind": "webhook",
            "name": name,
            "url": recorder.url(f"/{name}"),
            "secret": "k",
            "concurrency": 8,
            "backoff_base_s": 0.02,
            "backoff_cap_s": 0.1,
        }
        for name in ("pager", "chat")
    ]
    recorder.answer("/chat", 503, times=25)  # some retries too, so the counters have something to agree on
    d = Dispatcher(engine, NotifyConfig.model_validate({"receivers": receivers, "poll_interval_s": 0.5}))
    await d.start()
    notes = [note(i, "pager" if i % 2 else "chat", group=f"g{i % (2 * GROUPS)}") for i in range(TOTAL)]
    try:

        async def producer(chunk: int) -> list[bool]:
            out = []
            for n in notes[chunk::40]:
                out.append(d.submit(n))
                await asyncio.sleep(0)
            return out

        results = await asyncio.gather(*(producer(c) for c in range(40)))
        assert all(ok for r in results for ok in r)
        await recorder.until(TOTAL + 25, timeout=60)
        deadline = time.monotonic() + 30
        while d.stats.snapshot().sent != {"pager": 500, "chat": 500}:
            assert time.monotonic() < deadline, d.stats.snapshot()
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
    finally:
        await d.aclose()

    reqs = recorder.requests()
    ok = [r for r in reqs if r.status == 200]
    delivered = Counter(r.headers["idempotency-key"] for r in reqs)
    assert len(reqs) == TOTAL + 25
    assert set(delivered) == {n.id for n in notes}
    assert sum(delivered.values()) - len(delivered) == 25  # the only repeats are the 503-ed attempts
    snap = d.stats.snapshot()
    assert snap.sent == {"pager": 500, "chat": 500}
    assert snap.retried == {"chat": 25}
    assert snap.dead_lettered == {} and snap.dropped == {} and snap.duplicates == {}
    assert len(ok) == TOTAL
    # Within a group, the receiver acknowledged the notifications in submit order.
    order = {n.id: k for k, n in enumerate(notes)}
    seen: dict[str, list[int]] = {}
    for r in ok:
        seen.setdefault(r.json()["groupKey"], []).append(order[r.headers["idempotency-key"]])
    assert all(v == sorted(v) for v in seen.values())
    assert len(seen) == 2 * GROUPS
    families = {f.name: f for f in NotifyCollector(d.stats).collect()}
    sent = {s.labels["receiver"]: s.value for s in families["outpost_hub_notify_sent"].samples}
    assert sent == {"chat": 500.0, "pager": 500.0}
    counts = {
        s.labels["receiver"]: s.value
        for s in families["outpost_hub_notify_latency_seconds"].samples
        if s.name.endswith("_count")
    }
    assert counts == {"chat": 500.0, "pager": 500.0}


async def test_a_thousand_notifications_from_many_tasks_reach_two_receivers_exactly_once(
    sqlite_url: str, recorder: Recorder
) -> None:
    engine = migrated_engine(sqlite_url)
    try:
        await _run(engine, recorder)
    finally:
        engine.dispose()


@pytest.mark.slow
async def test_a_thousand_notifications_reach_two_receivers_exactly_once_on_postgresql(
    postgres: object, recorder: Recorder
) -> None:
    engine = migrated_engine(postgres.create_database("notifyconc"))  # type: ignore[attr-defined]
    try:
        await _run(engine, recorder)
    finally:
        engine.dispose()
