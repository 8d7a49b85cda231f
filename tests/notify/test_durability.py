"""Notification state survives a hub restart: no re-page of what went out, no lost resolve.

The receiver is down (nothing listens on its port) while 20 notifications are submitted and retried;
the dispatcher stops as a hub would on restart; a new one on the same database resumes once the
receiver is up. Every notification arrives exactly once, a group's resolve after its firing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from hub.notify.config import NotifyConfig
from hub.notify.dispatcher import Dispatcher
from hub.notify.models import notify_outbox
from tests.notify.conftest import make_engine, note
from tests.notify.recorder import Recorder
from tests.support.procs import free_port

pytestmark = pytest.mark.integration


async def until(cond: Callable[[], Any], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(cond):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def _attempts(engine: sa.Engine) -> list[tuple[str, str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(notify_outbox.c.id, notify_outbox.c.state, notify_outbox.c.attempts))
        return [(r[0], r[1], r[2]) for r in rows]


async def test_twenty_notifications_queued_while_the_receiver_is_down_go_out_exactly_once_after_a_restart(
    db_url: str,
) -> None:
    engine = make_engine(db_url)
    port = free_port()
    cfg = NotifyConfig.model_validate(
        {
            "receivers": [
                {
                    "kind": "webhook",
                    "name": "pager",
                    "url": f"http://127.0.0.1:{port}/hook",
                    "timeout_s": 2,
                    "backoff_base_s": 0.05,
                    "backoff_cap_s": 0.2,
                    "deadline_s": 120,
                }
            ],
            "poll_interval_s": 0.2,
        }
    )
    # 10 alert groups, each fired then resolved while the receiver is down.
    firing = [note(i, group=f"g{i}") for i in range(10)]
    resolved = [note(i + 100, group=f"g{i}", status="resolved") for i in range(10)]
    first = Dispatcher(engine, cfg, owner="hub-a")
    rec: Recorder | None = None
    try:
        await first.start()
        assert all(first.submit(n) for n in firing + resolved)
        # Every group's head has been tried and failed at least once; the resolves wait behind them.
        await until(lambda: sum(a >= 1 for _, _, a in _attempts(engine)) == 10)
        await first.aclose()
        rows = _attempts(engine)
        assert len(rows) == 20 and {s for _, s, _ in rows} == {"pending"}
        assert first.stats.snapshot().sent == {}

        rec = Recorder(port).start()  # the receiver comes back
        second = Dispatcher(engine, cfg, owner="hub-a")
        await second.start()
        try:
            await rec.until(20, "/hook")
            await until(lambda: second.stats.snapshot().sent == {"pager": 20})
            await asyncio.sleep(0.5)  # anything sent twice would arrive by now
        finally:
            await second.aclose()
        reqs = rec.requests("/hook")
        keys = [r.headers["idempotency-key"] for r in reqs]
        assert sorted(keys) == sorted(n.id for n in firing + resolved)  # all 20, each exactly once
        for i in range(10):
            in_group = [r.json()["status"] for r in reqs if r.json()["groupKey"] == f"g{i}"]
            assert in_group == ["firing", "resolved"]
        assert {s for _, s, _ in _attempts(engine)} == {"sent"}
    finally:
        await first.aclose()
        if rec is not None:
            rec.stop()
        engine.dispose()
