"""Steps are made while the one before is written: order, snapshots and failure on a real database.

A trigger makes the database itself slow or refusing for alerts of chosen devices, so the next step is
surely made while a write is under way (SQLite: a 4M-row join in the trigger; PostgreSQL: pg_sleep).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from hub.alerts.config import AlertsConfig, RouteConfig
from hub.alerts.model import Signal, labels_of
from hub.alerts.service import MAX_IDLE_S, AlertService, StepDiscarded
from hub.bus.config import MemoryBusConfig
from hub.bus.memory import MemoryBus
from hub.bus.messages import AlertsChanged, Message
from shared.clock import FakeClock
from tests.support.hubdb import migrated_engine

pytestmark = pytest.mark.integration

_SQLITE = [
    "CREATE TABLE slow_rows (x INTEGER)",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) "
    "INSERT INTO slow_rows SELECT x FROM c",
    """CREATE TRIGGER slow_or_refuse BEFORE INSERT ON alerts
       WHEN NEW.labels LIKE '%slow%' OR NEW.labels LIKE '%poison%' BEGIN
         SELECT count(*) FROM slow_rows a, slow_rows b;
         SELECT CASE WHEN NEW.labels LIKE '%poison%' THEN RAISE(ABORT, 'poison refused') END;
       END""",
]
_POSTGRES = [
    """CREATE FUNCTION slow_or_refuse() RETURNS trigger AS $$ BEGIN
         IF strpos(NEW.labels::text, 'slow') > 0 OR strpos(NEW.labels::text, 'poison') > 0 THEN
           PERFORM pg_sleep(0.4);
         END IF;
         IF strpos(NEW.labels::text, 'poison') > 0 THEN RAISE EXCEPTION 'poison refused'; END IF;
         RETURN NEW;
       END $$ LANGUAGE plpgsql""",
    "CREATE TRIGGER slow_or_refuse BEFORE INSERT ON alerts FOR EACH ROW EXECUTE FUNCTION slow_or_refuse()",
]


@pytest.fixture
async def db(state_url: str) -> AsyncIterator[sa.Engine]:
    engine = migrated_engine(state_url)
    with engine.begin() as conn:
        for sql in _POSTGRES if engine.dialect.name == "postgresql" else _SQLITE:
            conn.exec_driver_sql(sql)
    try:
        yield engine
    finally:
        engine.dispose()


async def _started(db: sa.Engine, bus: MemoryBus | None = None) -> AlertService:
    """The service alone (no dispatcher), fed by `apply`."""
    config = AlertsConfig(routes=(RouteConfig(receiver="noc"),))
    svc = AlertService(config, db, bus or MemoryBus(MemoryBusConfig()), None)
    await svc.start(subscribe=False)
    return svc


def _signal(device: str, firing: bool = True) -> Signal:
    labels = labels_of({"alertname": "LinkDown", "site": "dc1", "device": device})
    return Signal(labels, firing, int(time.time() * 1000))


async def _while_writing(svc: AlertService, *signals: Signal) -> asyncio.Task[object]:
    """Starts applying `signals`, returning once their step's write is under way."""
    task = asyncio.create_task(svc.apply(list(signals)))
    while svc._writing is None or svc._writing.done():
        await asyncio.sleep(0.001)
    return task


def _rows(db: sa.Engine) -> list[tuple[str, str]]:
    with db.connect() as conn:
        q = "SELECT labels, status FROM alerts ORDER BY first_seen_ms"
        return [(str(r[0]), r[1]) for r in conn.exec_driver_sql(q)]


async def test_a_step_made_while_the_write_before_it_fails_is_dropped_with_it_and_then_applies_cleanly(
    db: sa.Engine,
) -> None:
    svc = await _started(db)
    try:
        refused = await _while_writing(svc, _signal("poison"))
        made_on_top = await asyncio.gather(svc.apply([_signal("sw1")]), return_exceptions=True)
        first = await asyncio.gather(refused, return_exceptions=True)
        assert isinstance(first[0], sa.exc.SQLAlchemyError) and "poison refused" in str(first[0])
        assert isinstance(made_on_top[0], StepDiscarded)
        assert svc.failed_writes == 1
        assert svc.core.engine.open == {} and _rows(db) == []  # reloaded: neither step happened

        await svc.apply([_signal("sw1")])  # the input, retried, applies on the reloaded state
        assert [a.label("device") for a in svc.core.engine.open.values()] == ["sw1"]
        assert [status for _, status in _rows(db)] == ["firing"]
    finally:
        await svc.aclose()


async def test_what_a_failed_step_would_have_written_is_written_when_its_input_is_retried(
    db: sa.Engine,
) -> None:
    # The writer writes only the columns that moved since its last write; what a failed step moved was
    # never written, so after the failure nothing of it may count as written. With time standing still
    # the retried resolve moves exactly what the failed one did: status, ends, active, transitions.
    clock = FakeClock(int(time.time() * 1000))
    config = AlertsConfig(routes=(RouteConfig(receiver="noc"),))
    svc = AlertService(config, db, MemoryBus(MemoryBusConfig()), None, clock=clock)
    await svc.start(subscribe=False)
    try:
        labels = labels_of({"alertname": "LinkDown", "site": "dc1", "device": "sw1"})
        await svc.apply([Signal(labels, True, clock.now_ms())])
        end = Signal(labels, False, clock.now_ms())
        (failed,) = await asyncio.gather(svc.apply([end, _signal("poison")]), return_exceptions=True)
        assert isinstance(failed, sa.exc.SQLAlchemyError) and "poison refused" in str(failed)
        assert [status for _, status in _rows(db)] == ["firing"]
        await clock.advance(MAX_IDLE_S)  # the loop pauses this long after a failed write
        await svc.apply([end])
        assert [a.status.value for a in svc.core.engine.by_id.values()] == ["resolved"]
        assert [status for _, status in _rows(db)] == ["resolved"]
    finally:
        await svc.aclose()


async def test_each_step_is_announced_in_order_as_it_was_when_made_even_while_the_next_one_is_made(
    db: sa.Engine,
) -> None:
    bus = MemoryBus(MemoryBusConfig())
    seen: list[tuple[str, str]] = []

    async def on_change(msg: Message) -> None:
        assert isinstance(msg, AlertsChanged)
        seen.extend(zip(msg.changes, msg.statuses, strict=True))

    bus.subscribe(AlertsChanged.TOPIC, "test", on_change)
    await bus.start()
    svc = await _started(db, bus)
    try:
        created = await _while_writing(svc, _signal("slow-sw"))
        await svc.apply([_signal("slow-sw", firing=False)])  # made while the creation is written
        await created
        for _ in range(100):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.01)
        assert seen == [("created", "firing"), ("resolved", "resolved")]
        assert [status for _, status in _rows(db)] == ["resolved"]
    finally:
        await svc.aclose()
        await bus.aclose()


async def test_many_concurrent_callers_through_overlapping_steps_leave_memory_and_database_equal(
    db: sa.Engine,
) -> None:
    svc = await _started(db)
    try:

        async def caller(k: int) -> None:
            for i in range(40):
                device = f"sw{(k * 7 + i) % 60}"
                await svc.apply([_signal(device, firing=(i + k) % 3 != 0)])

        await asyncio.gather(*(caller(k) for k in range(16)))
        await svc.tick()
        with db.connect() as conn:
            q = "SELECT id, status, count FROM alerts WHERE status != 'resolved' ORDER BY id"
            stored = {(r[0], r[1], r[2]) for r in conn.exec_driver_sql(q)}
        in_memory = {(a.id, a.status.value, a.count) for a in svc.core.engine.open.values()}
        assert stored == in_memory and len(stored) > 10
        assert svc.failed_writes == 0
    finally:
        await svc.aclose()
