"""The alerts component on a real database (SQLite and PostgreSQL), the in-process bus and a real HTTP
receiver: dedup through the bus, restart without re-paging, concurrency, operator actions."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import time

import pytest
import sqlalchemy as sa

from hub.alerts.config import AlertsConfig, OfflineConfig, RouteConfig, Timers
from hub.alerts.model import AlertStatus
from hub.alerts.service import AlertService, NotFound
from hub.bus.config import MemoryBusConfig
from hub.bus.memory import MemoryBus
from hub.bus.messages import AgentSeen, DeviceEvent
from hub.notify.config import NotifyConfig, WebhookConfig
from hub.notify.dispatcher import Dispatcher
from tests.notify.recorder import Recorder

pytestmark = pytest.mark.integration

FAST = Timers(group_wait_s=0, group_interval_s=0.2, repeat_interval_s=3600)


_ids = itertools.count()


def link(state: str, i: int = 0, device: str = "sw1", agent: str = "dc1/rack12") -> DeviceEvent:
    """A trap event as ingest publishes it: its id is its place in its batch, unique per event."""
    return DeviceEvent(
        id=f"event:{agent}:1-{next(_ids)}:0",
        agent=agent,
        device=device,
        kind="snmp.trap",
        severity="warning" if state == "linkDown" else "info",
        source=device,
        message=state,
        attributes=(("1.3.6.1.2.1.2.2.1.1.7", "7"), ("n", str(i))),
        ts_ms=int(time.time() * 1000),
    )


class Running:
    def __init__(self, db: sa.Engine, recorder: Recorder, offline: OfflineConfig | None = None) -> None:
        self.db = db
        self.recorder = recorder
        self.config = AlertsConfig(
            routes=(RouteConfig(receiver="noc"),), timers=FAST, offline=offline or OfflineConfig()
        )
        self.bus = MemoryBus(MemoryBusConfig(queue_size=100_000, concurrency=64))
        notify = NotifyConfig(
            receivers=[WebhookConfig(name="noc", url=recorder.url("/hook"), backoff_base_s=0.05)],
            poll_interval_s=0.1,
        )
        self.dispatcher = Dispatcher(db, notify)
        self.alerts = AlertService(self.config, db, self.bus, self.dispatcher)

    async def start(self) -> Running:
        await self.dispatcher.start()
        await self.alerts.start()
        await self.bus.start()
        return self

    async def stop(self) -> None:
        await self.bus.aclose()
        await self.alerts.aclose()
        await self.dispatcher.aclose()

    def rows(self) -> list[sa.Row]:  # type: ignore[type-arg]
        with self.db.connect() as conn:
            return list(conn.execute(sa.text("SELECT id, status, count FROM alerts ORDER BY id")))

    def hooks(self) -> list[dict]:  # type: ignore[type-arg]
        return [json.loads(r.body) for r in self.recorder.requests("/hook")]


async def _until(cond: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_a_thousand_identical_traps_through_the_bus_are_one_alert_counted_a_thousand_times(
    db: sa.Engine, recorder: Recorder
) -> None:
    run = await Running(db, recorder).start()
    try:
        for i in range(1000):
            await run.bus.publish(link("linkDown", i))
        await _until(lambda: run.rows() and run.rows()[0].count == 1000)
        await _until(lambda: len(run.hooks()) >= 1)
        await asyncio.sleep(0.5)
        (row,) = run.rows()
        assert (row.status, row.count) == ("firing", 1000)
        (hook,) = run.hooks()
        assert hook["status"] == "firing" and len(hook["alerts"]) == 1
        assert hook["alerts"][0]["labels"]["alertname"] == "LinkDown"
        assert hook["alerts"][0]["labels"]["ifIndex"] == "7"
        await run.bus.publish(link("linkUp"))
        await _until(lambda: len(run.hooks()) == 2)
        assert run.hooks()[1]["status"] == "resolved" and run.rows()[0].status == "resolved"
    finally:
        await run.stop()


async def test_a_restart_neither_repages_nor_loses_the_resolve(db: sa.Engine, recorder: Recorder) -> None:
    run = await Running(db, recorder).start()
    for device in ("sw1", "sw2", "sw3"):
        await run.bus.publish(link("linkDown", device=device))
    await _until(lambda: len(run.hooks()) == 3)
    await run.stop()

    again = await Running(db, recorder).start()
    try:
        await asyncio.sleep(1.0)
        assert len(again.hooks()) == 3  # nothing paged twice
        await again.bus.publish(link("linkUp", device="sw2"))
        await _until(lambda: len(again.hooks()) == 4)
        last = again.hooks()[3]
        assert last["status"] == "resolved" and last["alerts"][0]["labels"]["device"] == "sw2"
        assert sorted(r.status for r in again.rows()) == ["firing", "firing", "resolved"]
    finally:
        await again.stop()


async def test_concurrent_publishers_on_many_devices_count_exactly(db: sa.Engine, recorder: Recorder) -> None:
    run = await Running(db, recorder).start()
    try:

        async def publisher(d: int) -> None:
            for i in range(50):
                await run.bus.publish(link("linkDown", i, device=f"sw{d}"))

        await asyncio.gather(*(publisher(d) for d in range(20)))
        await _until(lambda: len(run.rows()) == 20 and all(r.count == 50 for r in run.rows()), timeout=20)
        await _until(lambda: len(run.hooks()) == 20, timeout=20)
        assert sorted(h["groupLabels"]["device"] for h in run.hooks()) == sorted(f"sw{d}" for d in range(20))
    finally:
        await run.stop()


async def test_ack_unack_and_resolve_record_who_and_when(db: sa.Engine, recorder: Recorder) -> None:
    run = await Running(db, recorder).start()
    try:
        await run.bus.publish(link("linkDown"))
        await _until(lambda: len(run.rows()) == 1)
        alert_id = run.rows()[0].id
        acked = await run.alerts.acknowledge(alert_id, "ana")
        assert acked.status is AlertStatus.ACKNOWLEDGED and acked.ack_by == "ana" and acked.ack_ms
        assert run.alerts.repo.alert(alert_id).ack_by == "ana"  # type: ignore[union-attr]
        back = await run.alerts.unacknowledge(alert_id, "ana")
        assert back.status is AlertStatus.FIRING and back.ack_by is None
        done = await run.alerts.resolve(alert_id, "bo")
        assert done.status is AlertStatus.RESOLVED and done.resolved_by == "bo"
        with pytest.raises(NotFound):
            await run.alerts.resolve(alert_id, "bo")
        _, timeline = run.alerts.repo.incident(done.incident_id)  # type: ignore[arg-type,misc]
        assert [e.kind for e in timeline] == [
            "state",
            "alert_joined",
            "alert_acknowledged",
            "alert_unacknowledged",
            "alert_resolved",
            "state",
        ]
    finally:
        await run.stop()


async def test_an_agent_that_stops_heartbeating_raises_one_offline_alert_and_inhibits_its_devices(
    db: sa.Engine, recorder: Recorder
) -> None:
    run = await Running(db, recorder, OfflineConfig(max_after_s=1.0)).start()
    try:
        now = int(time.time() * 1000)
        seen = AgentSeen.create(
            agent="dc1/rack12",
            ts_ms=now,
            heartbeat_s=0.3,
            version="t",
            spool_depth=0,
            cert_expiry_ms=0,
            targets_up=("sw1", "sw2"),
            targets_down=(),
        )
        await run.bus.publish(seen)
        await _until(lambda: len(run.rows()) == 1, timeout=5)
        await run.bus.publish(link("linkDown", device="sw1"))  # behind the offline agent: not created
        await asyncio.sleep(0.5)
        (row,) = run.rows()
        alert = run.alerts.repo.alert(row.id)
        assert alert is not None and alert.label("alertname") == "AgentOffline"
        assert dict(alert.annotations)["summary"] == "agent dc1/rack12 offline, 2 devices unobserved"
        await run.bus.publish(dataclasses.replace(seen, id="hb-2", ts_ms=int(time.time() * 1000)))
        await _until(lambda: run.rows()[0].status == "resolved", timeout=5)
    finally:
        await run.stop()
