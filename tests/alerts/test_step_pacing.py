"""Signals that trickle in while steps are written gather into a step per `STEP_INTERVAL_S`, not one per
write: each step costs about a millisecond of CPU whatever its size, and a busy hub spent more on steps
of three events than on the events (bench/alerts.py at 1,000 events/s)."""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa

from hub.alerts.config import AlertsConfig, RouteConfig
from hub.alerts.model import Signal, labels_of
from hub.alerts.service import STEP_INTERVAL_S, AlertService
from hub.alerts.written import StepRows
from hub.bus.config import MemoryBusConfig
from hub.bus.memory import MemoryBus
from hub.notify.dispatcher import Submitted
from hub.notify.model import Notification

pytestmark = pytest.mark.integration


def _signal(device: str) -> Signal:
    return Signal(
        labels_of({"alertname": "LinkDown", "site": "dc1", "device": device}), True, int(time.time() * 1000)
    )


async def test_signals_arriving_while_steps_are_written_gather_into_a_step_per_interval(
    db: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = AlertService(
        AlertsConfig(routes=(RouteConfig(receiver="noc"),)), db, MemoryBus(MemoryBusConfig()), None
    )
    await svc.start(subscribe=False)
    writes = 0
    write = svc._write

    def counted(rows: StepRows, notifications: list[Notification]) -> Submitted | None:
        nonlocal writes
        writes += 1
        time.sleep(0.002)  # a write of a few milliseconds, as on a busy hub
        return write(rows, notifications)

    monkeypatch.setattr(svc, "_write", counted)
    try:
        t0 = time.monotonic()
        calls = []
        for i in range(60):  # one signal a millisecond (or as fast as this machine sleeps)
            calls.append(asyncio.create_task(svc.apply([_signal(f"sw{i}")])))
            await asyncio.sleep(0.001)
        await asyncio.gather(*calls)
        elapsed = time.monotonic() - t0
        # A step per interval (and the first at once); a step per write was two to three times as many.
        assert writes <= elapsed / STEP_INTERVAL_S + 2
        assert len(svc.core.engine.open) == 60
    finally:
        await svc.aclose()
