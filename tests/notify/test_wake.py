"""Rows written by `submit_in` are claimed as soon as the caller says its transaction committed, not at
the next outbox poll: the wake `submit_in` gives itself can arrive before the commit, when the row is not
visible yet (PostgreSQL's claim then finds nothing and waits for the poll)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from hub.notify.config import NotifyConfig
from hub.notify.dispatcher import Dispatcher
from tests.notify.conftest import note
from tests.notify.recorder import Recorder
from tests.support.hubdb import migrated_engine

pytestmark = pytest.mark.integration

POLL_S = 30.0  # far longer than the test waits


@pytest.fixture
async def db(state_url: str) -> AsyncIterator[sa.Engine]:
    engine = migrated_engine(state_url)
    try:
        yield engine
    finally:
        engine.dispose()


async def test_a_row_committed_after_the_wake_is_sent_once_the_caller_says_it_committed(
    db: sa.Engine, recorder: Recorder
) -> None:
    receiver = {"kind": "webhook", "name": "pager", "url": recorder.url()}
    d = Dispatcher(db, NotifyConfig.model_validate({"receivers": [receiver], "poll_interval_s": POLL_S}))
    await d.start()
    try:

        def slow_step() -> None:
            with db.begin() as conn:
                d.submit_in(conn, note(1))
                time.sleep(0.5)  # the rest of a big step: the lane is awake before the row is visible

        await asyncio.to_thread(slow_step)
        t0 = time.monotonic()
        d.committed(["pager", "nobody"])  # an unknown receiver is ignored
        (got,) = await recorder.until(1, timeout=5.0)
        assert got.at - t0 < 2.0
        assert got.headers["idempotency-key"] == "n-pager-1"
    finally:
        await d.aclose()
