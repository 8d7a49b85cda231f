"""Operator actions as an `api` process sends them (AlertCommand over a real bus, outcome in a real
database): run once by the engine, answered from the database, unknown targets and bad commands recorded
as such, a redelivered command run once, and nothing waited for beyond the bound without an engine."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.alerts.command_models import alert_commands
from hub.alerts.commands import CommandClient, CommandExecutor, Outcome
from hub.alerts.config import AlertsConfig, Timers
from hub.alerts.engine import new_id
from hub.alerts.model import AlertStatus, Signal, labels_of
from hub.alerts.repository import AlertRepository
from hub.alerts.service import GROUP, AlertService
from hub.alerts.windows import Window, WindowKind
from hub.bus.config import MemoryBusConfig
from hub.bus.memory import MemoryBus
from hub.bus.messages import AlertCommand
from hub.matchers import parse_matchers
from shared.clock import SystemClock
from tests.support.hubdb import migrated_engine

pytestmark = pytest.mark.integration


class Engine:
    """The engine's side (service + executor) and the api's side (client) on one bus and database."""

    def __init__(self, db: sa.Engine) -> None:
        self.db = db
        self.bus = MemoryBus(MemoryBusConfig(retry_backoff_s=0.01))
        config = AlertsConfig(timers=Timers(group_wait_s=0, group_interval_s=0.2, repeat_interval_s=3600))
        self.service = AlertService(config, db, self.bus, None)
        self.executor = CommandExecutor(self.service, db, SystemClock())
        self.client = CommandClient(self.bus, db, SystemClock(), 300, wait_s=3.0)
        self.repo = AlertRepository(db)

    async def start(self) -> Engine:
        await self.service.start()
        self.bus.subscribe(AlertCommand.TOPIC, GROUP, self.executor.handle)
        await self.bus.start()
        return self

    async def stop(self) -> None:
        await self.bus.aclose()
        await self.service.aclose()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    db = migrated_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    e = await Engine(db).start()
    try:
        yield e
    finally:
        await e.stop()
        db.dispose()


def _signal(name: str = "DiskFull", device: str = "nas1") -> Signal:
    labels = labels_of({"alertname": name, "site": "dc1", "device": device})
    return Signal(labels, True, int(time.time() * 1000), "critical", source="api:alice")


async def test_signals_then_ack_and_resolve_by_command_are_visible_in_the_database(engine: Engine) -> None:
    ids, changed = await engine.client.signals([_signal(), _signal("LinkDown", "sw1")], "alice")
    assert (len(ids), changed) == (1, 2)
    alerts = {a.label("alertname"): a for a in engine.repo.alerts()}
    assert set(alerts) == {"DiskFull", "LinkDown"} and alerts["DiskFull"].source == "api:alice"
    _, ack = await engine.client.run("ack", alerts["DiskFull"].id, "bob")
    assert ack == Outcome("ok", "")
    acked = engine.repo.alert(alerts["DiskFull"].id)
    assert acked is not None and (acked.status, acked.ack_by) == (AlertStatus.ACKNOWLEDGED, "bob")
    _, done = await engine.client.run("resolve", alerts["LinkDown"].id, "bob")
    resolved = engine.repo.alert(alerts["LinkDown"].id)
    assert done is not None and done.ok
    assert resolved is not None and (resolved.status, resolved.resolved_by) == (AlertStatus.RESOLVED, "bob")
    assert engine.executor.executed == 3


async def test_an_unknown_alert_and_a_bad_command_are_recorded_as_such_and_counted(engine: Engine) -> None:
    _, missing = await engine.client.run("ack", "0123456789ab0123456789ab", "bob")
    assert missing == Outcome("not_found", "no such open alert")
    _, incident = await engine.client.run("incident_note", "0123456789ab0123456789ab", "bob", '{"text": "x"}')
    assert incident == Outcome("not_found", "no such open incident")
    _, bad = await engine.client.run("signals", "", "bob", "[{}]")
    assert bad is not None and bad.outcome == "error" and bad.detail.startswith("bad command: KeyError")
    _, unknown = await engine.client.run("reboot", "", "bob")
    assert unknown == Outcome("error", "bad command: ValueError: unknown action 'reboot'")
    assert (engine.executor.executed, engine.executor.refused) == (4, 2)


async def test_a_redelivered_command_runs_once(engine: Engine) -> None:
    await engine.client.signals([_signal()], "alice")
    (alert,) = engine.repo.alerts()
    cmd = AlertCommand.new("incident_note", alert.incident_id or "", "bob", json.dumps({"text": "swap"}), 1)
    for _ in range(3):  # the bus delivers at least once: a dead leader's command comes again
        await engine.executor.handle(cmd)
    found = engine.repo.incident(alert.incident_id or "")
    assert found is not None
    assert [(e.kind, e.text, e.actor) for e in found[1] if e.kind == "note"] == [("note", "swap", "bob")]
    with engine.db.connect() as conn:
        rows = conn.execute(sa.select(alert_commands.c.id).where(alert_commands.c.action == "incident_note"))
        assert [r.id for r in rows] == [cmd.id]
    assert engine.executor.executed == 2  # the signals and the note, once


async def test_a_window_the_api_wrote_applies_once_the_engine_is_told_to_reload(engine: Engine) -> None:
    await engine.client.signals([_signal(device="sw9")], "alice")
    now = int(time.time() * 1000)
    window = Window(
        new_id(now), WindowKind.SILENCE, parse_matchers(['device="sw9"']), now, now + 3_600_000, "bob", now
    )
    engine.repo.add_window(window)  # as the api process does, straight into the shared database
    _, done = await engine.client.run("windows", "", "bob")
    assert done is not None and done.ok
    (alert,) = engine.repo.alerts()
    assert (alert.status, alert.silenced_by) == (AlertStatus.SUPPRESSED, window.id)


async def test_without_an_engine_the_client_gives_up_after_its_bound_and_the_command_waits(
    tmp_path: Path,
) -> None:
    db = migrated_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    bus = MemoryBus(MemoryBusConfig())
    await bus.start()
    client = CommandClient(bus, db, SystemClock(), 300, wait_s=0.5)
    try:
        t0 = asyncio.get_running_loop().time()
        command_id, outcome = await client.run("ack", "0123456789ab0123456789ab", "bob")
        waited = asyncio.get_running_loop().time() - t0
        assert outcome is None and command_id.startswith("cmd:") and 0.5 <= waited < 1.5
        ids, changed = await client.signals([_signal()], "alice")
        assert len(ids) == 1 and changed is None
    finally:
        await bus.aclose()
        db.dispose()
