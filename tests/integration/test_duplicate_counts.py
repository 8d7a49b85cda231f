"""`/metrics` and `/api/v1/agents` count delivered and duplicate batches alike, on SQLite and PostgreSQL.

The hub state's batch-id decision is the one source of truth: the ingest counters follow it, so the two
views agree exactly, also for a batch the store already had but the state had not counted yet (the state
database failed between the two writes, so the agent was told to retry).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
import sqlalchemy as sa

from hub.identity import pki
from shared import codec
from tests.support.outpost import HubHandle, start_hub
from tests.support.postgres import Postgres
from tests.transport.items import metrics_item

pytestmark = pytest.mark.integration

POINTS = 10


@dataclass
class Setup:
    hub: HubHandle
    backend: str
    state_url: str
    push: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]


@pytest.fixture(params=["sqlite", "postgresql"])
async def wired(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Setup]:
    """A real hub whose state is SQLite under its data dir or a database on a real PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub' / 'state.sqlite'}"
        hub = start_hub(tmp_path)
    else:
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"dup{abs(hash(tmp_path)) % 10**9}")
        hub = start_hub(tmp_path, extra={"state_url": url})
    try:
        pair = pki.issue(hub.ca, "twice", agent_uri="dc1/twice")
        creds = grpc.ssl_channel_credentials(hub.ca.cert.read_bytes(), pair.key_pem, pair.cert_pem)
        async with grpc.aio.secure_channel(
            hub.grpc_address, creds, options=[("grpc.ssl_target_name_override", "localhost")]
        ) as ch:
            push = ch.unary_unary(codec.PUSH_METHOD, request_serializer=bytes, response_deserializer=bytes)
            yield Setup(hub, request.param, url, push)
    finally:
        hub.stop()


async def _send(s: Setup, seq: int) -> codec.PushResult:
    envelope = metrics_item(seq, points=POINTS).envelope
    return codec.parse_push_response(await s.push(codec.push_request(envelope), timeout=20))


def _metric(hub: HubHandle, result: str) -> float:
    """`outpost_hub_ingest_batches_total{transport="grpc",result=...}`; 0 while never incremented."""
    for line in httpx.get(hub.api_url + "/metrics").text.splitlines():
        if line.startswith("outpost_hub_ingest_batches_total{") and f'result="{result}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _points_metric(hub: HubHandle) -> float:
    for line in httpx.get(hub.api_url + "/metrics").text.splitlines():
        if line.startswith("outpost_hub_ingest_points_total{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _agent(hub: HubHandle) -> dict[str, int]:
    (a,) = [a for a in hub.get("/api/v1/agents")["agents"] if a["id"] == "dc1/twice"]
    return {k: a[k] for k in ("batches_received", "duplicates", "points_received", "gaps")}


async def test_envelopes_sent_twice_are_the_same_duplicates_on_metrics_and_agents_api(wired: Setup) -> None:
    s = wired
    for _ in range(2):
        for seq in range(1, 5):
            await _send(s, seq)
    assert _agent(s.hub) == {"batches_received": 4, "duplicates": 4, "points_received": 40, "gaps": 0}
    assert (_metric(s.hub, "stored"), _metric(s.hub, "duplicate"), _points_metric(s.hub)) == (4, 4, 40)


async def test_a_batch_stored_but_not_yet_counted_is_counted_once_as_new_on_both_views(wired: Setup) -> None:
    s = wired
    first = await _send(s, 1)
    assert (first.accepted_points, first.duplicate) == (POINTS, False)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _with_state_failing(s, _send(s, 2))  # stored, then the state write fails: "retry later"
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    retried = await _send(s, 2)  # the store has it (duplicate there); the state has not counted it yet
    assert (retried.accepted_points, retried.duplicate) == (POINTS, False)
    again = await _send(s, 2)
    assert (again.accepted_points, again.duplicate) == (0, True)
    assert _agent(s.hub) == {"batches_received": 2, "duplicates": 1, "points_received": 20, "gaps": 0}
    assert (_metric(s.hub, "stored"), _metric(s.hub, "duplicate"), _points_metric(s.hub)) == (2, 1, 20)


async def _with_state_failing(s: Setup, push: object) -> object:
    """Runs `push` while the hub's state database fails its bookkeeping write for real.

    SQLite: this process holds the write lock longer than the hub's 5 s busy timeout. PostgreSQL: a
    table lock makes the hub's write wait, and the server then terminates the waiting connection.
    """
    assert asyncio.iscoroutine(push)
    if s.backend == "sqlite":
        db = sqlite3.connect(s.state_url.removeprefix("sqlite:///"), isolation_level=None, timeout=10)
        try:
            db.execute("BEGIN EXCLUSIVE")
            return await push
        finally:
            db.execute("ROLLBACK")
            db.close()
    engine = sa.create_engine(s.state_url)
    try:
        with engine.connect() as locker, engine.connect() as admin:
            locker.execute(sa.text("LOCK TABLE seen_batches IN ACCESS EXCLUSIVE MODE"))
            task = asyncio.ensure_future(push)
            waiting = (
                "SELECT pid FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            deadline = time.monotonic() + 15
            while not (pids := admin.execute(sa.text(waiting)).scalars().all()):
                assert time.monotonic() < deadline and not task.done(), "the hub never waited on the lock"
                await asyncio.sleep(0.05)
            assert len(pids) == 1
            admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pids[0]})
            admin.commit()
            try:
                return await task
            finally:
                locker.rollback()
    finally:
        engine.dispose()
