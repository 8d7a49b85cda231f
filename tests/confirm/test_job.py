"""The confirmation job on a real store and the in-process bus: batching per tick, the fit budget,
devices without enough history, the queue's bounds, restarts from saved models, many publishers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hub.bus.config import MemoryBusConfig
from hub.bus.memory import MemoryBus
from hub.bus.messages import AnomalyReported, AnomalyVerdict, Message
from hub.confirm.config import ConfirmConfig
from hub.confirm.jobs import ConfirmJob
from hub.store.base import Store
from hub.store.config import EmbeddedStoreConfig
from hub.store.factory import build_store
from shared.clock import FakeClock
from shared.model import Batch, SeriesKey, SeriesPoints

pytestmark = pytest.mark.integration

AGENT = "dc1/edge-1"
T0 = 1_767_225_600_000
STEP = 60_000
STEPS = 400  # enough for the trailing window and `min_rows` below
CONFIG = ConfirmConfig(enabled=True, min_rows=64, history_s=86_400, max_fits_per_tick=1)


@dataclass
class Hub:
    store: Store
    bus: MemoryBus
    clock: FakeClock
    verdicts: list[AnomalyVerdict]
    models: Path


def write_device(store: Store, device: str, steps: int, seq: int) -> None:
    rng = np.random.default_rng(seq)
    ts = T0 + STEP * np.arange(steps, dtype=np.int64)
    series = tuple(
        SeriesPoints(SeriesKey.of(m, {"device": device}), ts, 50 + rng.normal(size=steps))
        for m in ("cpu_util", "temperature")
    )
    store.write(AGENT, Batch(1, seq, series))


def onset(device: str, step: int, metric: str = "temperature") -> AnomalyReported:
    return AnomalyReported.create(
        agent=AGENT, device=device, metric=metric, labels={"device": device}, ts_ms=T0 + STEP * step,
        score=0.7, severity="warning", phase="onset", value=50.0, detector="robust",
    )  # fmt: skip


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    clock = FakeClock(T0 + STEP * STEPS)
    store = build_store(EmbeddedStoreConfig(), tmp_path, clock)
    store.open()
    bus = MemoryBus(MemoryBusConfig(queue_size=100_000, concurrency=64), clock)
    verdicts: list[AnomalyVerdict] = []

    async def collect(msg: Message) -> None:
        assert isinstance(msg, AnomalyVerdict)
        verdicts.append(msg)

    bus.subscribe(AnomalyVerdict.TOPIC, "test", collect)
    await bus.start()
    try:
        yield Hub(store, bus, clock, verdicts, tmp_path / "models")
    finally:
        await bus.aclose()
        store.close()


async def _drain(bus: MemoryBus) -> None:
    for _ in range(100):
        await asyncio.sleep(0)


async def test_new_devices_are_fitted_within_the_budget_and_the_rest_wait_a_tick(hub: Hub) -> None:
    for i, device in enumerate(("a", "b", "c")):
        write_device(hub.store, device, STEPS, i + 1)
    job = ConfirmJob(CONFIG, hub.store, hub.bus, hub.clock, hub.models)
    for device in ("a", "b", "c"):
        await job.handle(onset(device, STEPS - 1))
        await job.handle(onset(device, STEPS - 2, "cpu_util"))
    assert await job.tick() == 2  # one fit per tick: device a's two onsets judged, b and c wait
    assert job.queued == 4 and job.stats.deferred == 4
    assert await job.tick() == 2 and await job.tick() == 2 and job.queued == 0
    await _drain(hub.bus)
    assert sorted({v.device for v in hub.verdicts}) == ["a", "b", "c"] and len(hub.verdicts) == 6
    assert {v.verdict for v in hub.verdicts} <= {"confirmed", "dismissed"}
    assert job.models.fits == 3 and len(list(hub.models.glob("*.npz"))) == 3


async def test_a_device_with_too_little_history_is_unscored_and_not_refitted_every_tick(hub: Hub) -> None:
    write_device(hub.store, "young", 100, 1)
    job = ConfirmJob(CONFIG, hub.store, hub.bus, hub.clock, hub.models)
    await job.handle(onset("young", 99))
    await job.tick()
    await job.handle(onset("young", 99, "cpu_util"))
    await job.tick()
    await _drain(hub.bus)
    assert [v.verdict for v in hub.verdicts] == ["unscored", "unscored"]
    assert job.models.too_little_history == 1 and job.models.fits == 0


async def test_a_restarted_job_judges_from_the_saved_model_without_fitting(hub: Hub) -> None:
    write_device(hub.store, "a", STEPS, 1)
    first = ConfirmJob(CONFIG, hub.store, hub.bus, hub.clock, hub.models)
    await first.handle(onset("a", STEPS - 1))
    await first.tick()
    second = ConfirmJob(CONFIG, hub.store, hub.bus, hub.clock, hub.models)
    await second.handle(onset("a", STEPS - 1, "cpu_util"))
    assert await second.tick() == 1
    assert second.models.fits == 0
    await _drain(hub.bus)
    assert [v.verdict != "unscored" for v in hub.verdicts] == [True, True]


async def test_the_queue_is_bounded_repeats_are_skipped_and_ends_are_not_queued(hub: Hub) -> None:
    job = ConfirmJob(CONFIG.model_copy(update={"max_pending": 3}), hub.store, hub.bus, hub.clock, None)
    for step in range(5):
        await job.handle(onset("a", step))
    await job.handle(onset("a", 0))
    end = AnomalyReported.create(
        agent=AGENT, device="a", metric="temperature", labels={"device": "a"}, ts_ms=T0, score=0.0,
        severity="info", phase="end", value=None,
    )  # fmt: skip
    await job.handle(end)
    assert job.queued == 3 and job.stats.dropped == 2 and job.stats.duplicates == 1


async def test_onsets_from_many_publishers_at_once_get_one_verdict_each(hub: Hub) -> None:
    for i, device in enumerate(("a", "b")):
        write_device(hub.store, device, STEPS, i + 1)
    job = ConfirmJob(CONFIG.model_copy(update={"max_fits_per_tick": 4, "tick_s": 0.05}), hub.store, hub.bus,
                     hub.clock, None)  # fmt: skip
    await job.start()
    try:
        sent = [
            onset("ab"[k % 2], STEPS - 1 - (p * 50 + k) % 300, ("cpu_util", "temperature")[p % 2])
            for p in range(20)
            for k in range(50)
        ]
        expected = {m.id for m in sent}

        async def publisher(p: int) -> None:
            for m in sent[p::20]:
                await hub.bus.publish(m)

        await asyncio.gather(*(publisher(p) for p in range(20)))
        for _ in range(200):
            await hub.clock.advance(0.05)
            await asyncio.sleep(0.01)
            if len(hub.verdicts) >= len(expected) and job.queued == 0:
                break
    finally:
        await job.aclose()
    judged = {(v.device, v.metric, v.ts_ms) for v in hub.verdicts}
    assert len(judged) == len(hub.verdicts) == len(expected)  # each distinct onset once
    assert job.stats.duplicates == len(sent) - len(expected) and job.stats.failed_ticks == 0
