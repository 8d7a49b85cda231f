"""Verdicts on alerts: with confirmation on, a dismissed onset is an alert that is listed with its
verdict but never pages; a confirmed one pages; a later confirmed repeat of a dismissed one pages."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.alerts.config import AlertsConfig, RouteConfig, Timers
from hub.alerts.rules import CONFIRMED_RULES
from hub.alerts.service import AlertService
from hub.api.routes.alerts import alert_json
from hub.bus.config import MemoryBusConfig
from hub.bus.memory import MemoryBus
from hub.bus.messages import AnomalyReported, AnomalyVerdict
from hub.notify.config import NotifyConfig, WebhookConfig
from hub.notify.dispatcher import Dispatcher
from tests.notify.conftest import recorder
from tests.notify.recorder import Recorder
from tests.support.hubdb import migrated_engine

pytestmark = pytest.mark.integration
__all__ = ["recorder"]

FAST = Timers(group_wait_s=0, group_interval_s=0.2, repeat_interval_s=3600)


def verdict(device: str, which: str, ts_ms: int) -> AnomalyVerdict:
    return AnomalyVerdict.create(
        agent="dc1/edge-1", device=device, metric="temperature", labels={"device": device}, ts_ms=ts_ms,
        score=0.8, severity="warning", value=71.0, detector="robust", verdict=which, confirm_score=0.7,
        top_features={"temperature{}:coupled_dz": "0.61", "temperature{}:z": "0.22"},
    )  # fmt: skip


def onset(device: str, ts_ms: int) -> AnomalyReported:
    return AnomalyReported.create(
        agent="dc1/edge-1", device=device, metric="temperature", labels={"device": device}, ts_ms=ts_ms,
        score=0.8, severity="warning", phase="onset", value=71.0, detector="robust",
    )  # fmt: skip


@pytest.fixture
async def running(
    tmp_path: Path, recorder: Recorder
) -> AsyncIterator[tuple[AlertService, MemoryBus, sa.Engine]]:
    db = migrated_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    bus = MemoryBus(MemoryBusConfig())
    dispatcher = Dispatcher(
        db,
        NotifyConfig(receivers=[WebhookConfig(name="noc", url=recorder.url("/hook"))], poll_interval_s=0.1),
    )
    config = AlertsConfig(routes=(RouteConfig(receiver="noc", group_by=("device",)),), timers=FAST)
    alerts = AlertService(config, db, bus, dispatcher, rules=CONFIRMED_RULES)
    await dispatcher.start()
    await alerts.start()
    await bus.start()
    try:
        yield alerts, bus, db
    finally:
        await bus.aclose()
        await alerts.aclose()
        await dispatcher.aclose()
        db.dispose()


def paged_devices(recorder: Recorder) -> list[str]:
    return sorted(
        {a["labels"]["device"] for r in recorder.requests("/hook") for a in json.loads(r.body)["alerts"]}
    )


async def test_dismissed_onsets_are_listed_with_their_verdict_but_never_page(
    running: tuple[AlertService, MemoryBus, sa.Engine], recorder: Recorder
) -> None:
    alerts, bus, _ = running
    now = int(time.time() * 1000)
    await bus.publish(verdict("srv-quiet", "dismissed", now))
    await bus.publish(verdict("srv-hot", "confirmed", now))
    await bus.publish(onset("srv-raw", now))  # the agent's own onset waits for its verdict
    await recorder.until(1, "/hook")
    await asyncio.sleep(0.6)  # a few group intervals: nothing else may page
    assert paged_devices(recorder) == ["srv-hot"]
    listed = {a.label("device"): a for a in await asyncio.to_thread(alerts.repo.alerts, limit=10)}
    assert sorted(listed) == ["srv-hot", "srv-quiet"]
    quiet = alert_json(listed["srv-quiet"])
    assert quiet["status"] == "firing" and quiet["verdict"] == "dismissed"
    assert quiet["verdict_features"][0] == {"feature": "temperature{}:coupled_dz", "share": 0.61}

    await bus.publish(verdict("srv-quiet", "confirmed", now + 60_000))  # the same series, now confirmed
    await recorder.until(2, "/hook")
    assert paged_devices(recorder) == ["srv-hot", "srv-quiet"]
    again = {a.label("device"): a for a in await asyncio.to_thread(alerts.repo.alerts, limit=10)}
    assert again["srv-quiet"].verdict == "confirmed" and again["srv-quiet"].count == 2
