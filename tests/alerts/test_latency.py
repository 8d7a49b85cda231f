"""The alert path's own latency: a group with group_wait 0 is paged as soon as its step commits, not when
the dispatcher next polls the outbox (bench/alerts.py measures it at 1,000 events/s)."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from hub.alerts.config import AlertsConfig, RouteConfig, Timers
from hub.alerts.model import Signal, labels_of
from hub.alerts.service import AlertService
from hub.bus.config import MemoryBusConfig
from hub.bus.memory import MemoryBus
from hub.notify.config import NotifyConfig, WebhookConfig
from hub.notify.dispatcher import Dispatcher
from tests.notify.recorder import Recorder

pytestmark = pytest.mark.integration

# Far longer than the test waits: a notification that arrives in time was not found by a poll.
POLL_S = 30.0


def _signal(device: str) -> Signal:
    labels = {"alertname": "LinkDown", "agent": "dc1/a1", "site": "dc1", "device": device, "ifIndex": "1"}
    return Signal(labels_of(labels), True, int(time.time() * 1000), "warning", (("summary", "down"),))


async def test_each_new_group_is_sent_once_its_step_commits_without_waiting_for_the_outbox_poll(
    db: sa.Engine, recorder: Recorder
) -> None:
    timers = Timers(group_wait_s=0, group_interval_s=300, repeat_interval_s=3600)
    config = AlertsConfig(routes=(RouteConfig(receiver="noc", timers=timers),))
    notify = NotifyConfig(
        receivers=[WebhookConfig(name="noc", url=recorder.url("/hook"))], poll_interval_s=POLL_S
    )
    dispatcher = Dispatcher(db, notify)
    bus = MemoryBus(MemoryBusConfig())
    service = AlertService(config, db, bus, dispatcher)
    await dispatcher.start()
    await service.start(subscribe=False)
    try:
        for i in range(5):
            t0 = time.monotonic()
            await service.apply([_signal(f"sw{i}")])
            (*_, last) = await recorder.until(i + 1, "/hook", timeout=5.0)
            assert last.at - t0 < 2.0
            body = json.loads(last.body)
            assert (body["status"], body["groupLabels"]) == ("firing", {"site": "dc1", "device": f"sw{i}"})
        assert len(recorder.requests("/hook")) == 5
    finally:
        await service.aclose()
        await dispatcher.aclose()
        await bus.aclose()
