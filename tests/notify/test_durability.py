"""Notification state survives a hub restart: no re-page of what went out, no lost resolve.

The receiver is down (nothing listens on its port) while 20 notifications are submitted and retried;
the dispatcher stops as a hub would on restart; a new one on the same database resumes once the
receiver is up. Every notification arrives exactly once, a group's resolve after its firing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hub.notify.config import NotifyConfig
from hub.notify.dispatcher import Dispatcher
from hub.notify.models import notify_outbox
from tests.notify.conftest import note
from tests.notify.recorder import Recorder
from tests.support.hubdb import migrated_engine
from tests.support.procs import free_port, start_service

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
    state_url: str,
) -> None:
    engine = migrated_engine(state_url)
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


def _config(url: str, **top: Any) -> NotifyConfig:
    receiver = {"kind": "webhook", "name": "pager", "url": url, "backoff_base_s": 0.05, "backoff_cap_s": 0.1}
    return NotifyConfig.model_validate({"receivers": [receiver], "poll_interval_s": 0.1, **top})


async def test_submit_in_sends_what_the_callers_transaction_commits_and_nothing_it_rolls_back(
    engine: sa.Engine, recorder: Recorder
) -> None:
    d = Dispatcher(engine, _config(recorder.url()), owner="hub-a")
    await d.start()
    try:

        def alert_state_change(n_ok: Any, n_rolled_back: Any) -> bool:
            with engine.begin() as conn:  # the engine's own transaction: alert state + notification
                new = d.submit_in(conn, n_ok)
            try:
                with engine.begin() as conn:
                    d.submit_in(conn, n_rolled_back)
                    raise RuntimeError("alert state write failed")
            except RuntimeError:
                pass
            return new

        assert await asyncio.to_thread(alert_state_change, note(1), note(2)) is True
        assert await asyncio.to_thread(alert_state_change, note(1), note(3)) is False  # same id: queued once
        await recorder.until(1)
        await asyncio.sleep(0.4)
    finally:
        await d.aclose()
    assert [r.headers["idempotency-key"] for r in recorder.requests()] == ["n-pager-1"]
    assert d.stats.snapshot().duplicates == {"pager": 1}


async def test_submit_refuses_unknown_receivers_a_full_intake_and_a_closed_dispatcher_and_counts_each(
    engine: sa.Engine, recorder: Recorder
) -> None:
    d = Dispatcher(engine, _config(recorder.url(), queue_size=2), owner="hub-a")
    # Not started: nothing drains the intake, so the third submit finds it full.
    assert [d.submit(note(i)) for i in range(3)] == [True, True, False]
    assert d.submit(note(9, receiver="nobody")) is False
    with pytest.raises(ValueError, match="unknown_receiver"):
        await asyncio.to_thread(lambda: _submit_in(engine, d, note(10, receiver="nobody")))
    await d.start()
    await recorder.until(2)
    await d.aclose()
    assert d.submit(note(5)) is False
    assert d.stats.snapshot().dropped == {
        ("pager", "queue_full"): 1,
        ("nobody", "unknown_receiver"): 2,
        ("pager", "closed"): 1,
    }
    assert d.queued == 0


def _submit_in(engine: sa.Engine, d: Dispatcher, n: Any) -> bool:
    with engine.begin() as conn:
        return d.submit_in(conn, n)


# PostgreSQL refuses with DataError, SQLite with OverflowError: both paths, the second in the slow suite.
@pytest.mark.parametrize(
    "state_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)], indirect=True
)
async def test_a_notification_the_database_refuses_is_dropped_and_counted_and_the_rest_of_its_batch_goes_out(
    state_url: str, recorder: Recorder
) -> None:
    engine = migrated_engine(state_url)
    d = Dispatcher(engine, _config(recorder.url()), owner="hub-a")
    bad = dataclasses.replace(note(2), created_ms=2**63)  # beyond BIGINT: SQLite and PostgreSQL refuse it
    try:
        assert [d.submit(n) for n in (note(1), bad, note(3))] == [True, True, True]
        await d.start()  # the three are written as one batch
        await recorder.until(2)
        await asyncio.sleep(0.3)
        assert d.submit(note(4))  # the intake is not stuck behind the bad row
        await recorder.until(3)
    finally:
        await d.aclose()
        engine.dispose()
    keys = sorted(r.headers["idempotency-key"] for r in recorder.requests())
    assert keys == ["n-pager-1", "n-pager-3", "n-pager-4"]
    assert d.stats.snapshot().dropped == {("pager", "invalid"): 1}


async def test_a_hub_killed_mid_send_gets_its_leased_rows_back_at_once_when_it_restarts(
    sqlite_url: str, recorder: Recorder, tmp_path: Path
) -> None:
    engine = migrated_engine(sqlite_url)
    recorder.hang("/hook", seconds=30)  # the killed hub's requests never get an answer
    proc = start_service(
        "crash-sender",
        [sys.executable, "-m", "tests.notify.crash_sender", sqlite_url, recorder.url(), "hub-a", "4"],
        tmp_path,
        ready_log="queued",
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        await recorder.until(4)  # all four in flight, leased by the process
        proc.kill()  # SIGKILL: no shutdown, the leases stay in the table
    finally:
        proc.kill()
    recorder.reset("/hook")
    with engine.connect() as conn:
        leased = conn.execute(
            sa.select(sa.func.count()).where(notify_outbox.c.lease_owner == "hub-a")
        ).scalar()
    assert leased == 4
    d = Dispatcher(engine, _config(recorder.url()), owner="hub-a")
    started = time.monotonic()
    await d.start()
    try:
        await recorder.until(8, timeout=10)
        took = time.monotonic() - started
        await asyncio.sleep(0.3)
    finally:
        await d.aclose()
        engine.dispose()
    assert took < 5  # not the minute a stranger's lease lasts
    reqs = recorder.requests()
    assert Counter(r.headers["idempotency-key"] for r in reqs) == {f"n-pager-{i}": 2 for i in range(4)}
    assert [r.status for r in reqs[4:]] == [200] * 4
    assert {s for _, s, _ in _attempts(engine)} == {"sent"}
