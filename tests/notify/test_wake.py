"""Rows written by `submit_all_in` go out as soon as the caller says its transaction committed, not at
the next outbox poll: the wake it gives itself can arrive before the commit, when the row is not visible
yet (PostgreSQL's claim then finds nothing and waits for the poll). Rows its lanes have room for are
leased as they are written and sent from memory; a group's later rows still wait for its earlier one."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import sqlalchemy as sa

from hub.notify.config import NotifyConfig
from hub.notify.dispatcher import Dispatcher, Submitted
from hub.notify.model import Notification
from hub.notify.outbox import Claims
from tests.notify.conftest import note
from tests.notify.recorder import Recorder

pytestmark = pytest.mark.integration

POLL_S = 30.0  # far longer than the test waits


def _pager(db: sa.Engine, recorder: Recorder, poll_s: float = POLL_S, **receiver: Any) -> Dispatcher:
    """A dispatcher whose one receiver, the webhook `pager`, posts to the recorder."""
    pager = {"kind": "webhook", "name": "pager", "url": recorder.url(), **receiver}
    return Dispatcher(db, NotifyConfig.model_validate({"receivers": [pager], "poll_interval_s": poll_s}))


async def test_a_row_committed_after_the_wake_is_sent_once_the_caller_says_it_committed(
    db: sa.Engine, recorder: Recorder
) -> None:
    d = _pager(db, recorder)
    await d.start()
    try:

        def slow_step() -> Submitted:
            with db.begin() as conn:
                submitted = d.submit_all_in(conn, [note(1)])
                time.sleep(0.5)  # the rest of a big step: the lane is awake before the row is visible
            return submitted

        submitted = await asyncio.to_thread(slow_step)
        assert [c.id for c in submitted.leased] == ["n-pager-1"]  # leased as written: no claim needed
        t0 = time.monotonic()
        d.committed(submitted)
        (got,) = await recorder.until(1, timeout=5.0)
        assert got.at - t0 < 2.0
        assert got.headers["idempotency-key"] == "n-pager-1"
    finally:
        await d.aclose()


async def test_a_groups_next_row_is_not_leased_while_its_earlier_one_is_pending_and_goes_out_after_it(
    db: sa.Engine, recorder: Recorder
) -> None:
    # Order is what this checks, not how soon a lane wakes (the test above): a short poll keeps a wake
    # that a loaded machine delivers late from failing it.
    d = _pager(db, recorder, poll_s=1.0, backoff_base_s=0.1)
    await d.start()
    try:
        recorder.answer("/hook", 503)  # the first attempt is retried: its row stays pending a while

        def step(*ns: Notification) -> Submitted:
            with db.begin() as conn:
                return d.submit_all_in(conn, list(ns))

        group = '{}:{alertname="A"}'
        first = await asyncio.to_thread(step, note(1, group=group), note(2, group=group), note(3))
        assert [c.id for c in first.leased] == ["n-pager-1", "n-pager-3"]  # one per group
        d.committed(first)
        later = await asyncio.to_thread(step, note(4, group=group))
        assert later.leased == []  # the group's earlier rows are still pending
        d.committed(later)
        got = await recorder.until(5, timeout=20.0)
        order = [r.headers["idempotency-key"] for r in got if r.status == 200]
        assert [k for k in order if k != "n-pager-3"] == ["n-pager-1", "n-pager-2", "n-pager-4"]
        assert len(got) == 5  # four notifications, one of them twice (after its 503)
    finally:
        await d.aclose()


async def test_rows_leased_as_written_go_out_without_the_loader_claiming_after_each_step_or_send(
    db: sa.Engine, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = _pager(db, recorder)
    claims = 0
    claim = d.outbox.claim

    def counted(*args: Any) -> Claims:
        nonlocal claims
        claims += 1
        return claim(*args)

    monkeypatch.setattr(d.outbox, "claim", counted)
    await d.start()
    try:

        def step(i: int) -> Submitted:
            with db.begin() as conn:
                return d.submit_all_in(conn, [note(i)])

        for i in range(30):
            submitted = await asyncio.to_thread(step, i)
            assert len(submitted.leased) == 1 and not submitted.unleased
            d.committed(submitted)
        await recorder.until(30, timeout=10.0)
        await asyncio.sleep(0.2)  # the outcomes recorded, their wakes (if any) handled
        # The loader's first look at start; a claim per step or per send (a write transaction each,
        # competing with the alert path's commits) was 60 here.
        assert claims <= 2
    finally:
        await d.aclose()


async def test_a_steps_rows_are_written_once_each_and_leased_by_the_seq_the_database_gave_them(
    db: sa.Engine, recorder: Recorder
) -> None:
    d = _pager(db, recorder)
    await d.start()
    try:

        def step(*ns: Notification) -> Submitted:
            with db.begin() as conn:
                return d.submit_all_in(conn, list(ns))

        first = await asyncio.to_thread(step, note(1), note(1), note(2))
        assert first.added == [True, False, True]  # the same id twice in one step: written once
        again = await asyncio.to_thread(step, note(2), note(3))
        assert again.added == [False, True]
        with db.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, seq FROM notify_outbox")).all()
        seqs: dict[str, int] = {str(r[0]): int(r[1]) for r in rows}
        assert {c.id: c.seq for c in first.leased + again.leased} == seqs
        d.committed(first)
        d.committed(again)
        got = await recorder.until(3, timeout=10.0)
        assert sorted(r.headers["idempotency-key"] for r in got) == ["n-pager-1", "n-pager-2", "n-pager-3"]
    finally:
        await d.aclose()
