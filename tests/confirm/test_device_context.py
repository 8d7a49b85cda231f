"""The multi-metric device of issue 11 through a real store and the confirmation job on an in-process
bus: edge onsets on coupled load surges are mostly dismissed, those on lone temperature jumps confirmed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.bus.config import MemoryBusConfig
from hub.bus.memory import MemoryBus
from hub.bus.messages import AnomalyReported, AnomalyVerdict, Message
from hub.confirm.config import ConfirmConfig
from hub.confirm.jobs import ConfirmJob
from hub.store.config import EmbeddedStoreConfig
from hub.store.factory import build_store
from shared.clock import FakeClock
from shared.model import Batch, SeriesKey, SeriesPoints
from tests.confirm.simulate import Device, simulate

pytestmark = pytest.mark.integration

AGENT, DEVICE = "dc1/edge-1", "srv-1"
METRICS = ("cpu_util", "if_octets", "temperature")
DAY = 1440
# Steps of lone temperature jumps, all in the last day (history for the fit is the three before).
JUMPS = tuple(3 * DAY + 120 + 150 * i for i in range(8))


@dataclass
class Run:
    surge_onsets: list[AnomalyVerdict]
    jump_onsets: list[AnomalyVerdict]
    job: ConfirmJob


def _batch(device: Device, start: int, stop: int, seq: int) -> Batch:
    """The device's steps [start, stop) as the agent sends them."""
    return Batch(
        1,
        seq,
        tuple(
            SeriesPoints(
                SeriesKey.of(m, {"device": DEVICE}),
                device.ts_ms[start:stop].copy(),
                device.values[row, start:stop].copy(),
            )
            for row, m in enumerate(METRICS)
        ),
    )


def _onset(device: Device, metric: str, step: int) -> AnomalyReported:
    """An edge onset as the ingest publisher builds it from the agent's event."""
    return AnomalyReported.create(
        agent=AGENT, device=DEVICE, metric=metric, labels={"device": DEVICE}, ts_ms=int(device.ts_ms[step]),
        score=0.8, severity="warning", phase="onset", value=float(device.values[METRICS.index(metric), step]),
        detector="robust",
    )  # fmt: skip


@pytest.fixture
async def run(tmp_path: Path) -> AsyncIterator[Run]:
    device = simulate(4, seed=11, jumps=JUMPS)
    clock = FakeClock(int(device.ts_ms[3 * DAY - 1]))
    store = build_store(EmbeddedStoreConfig(), tmp_path, clock)
    store.open()
    bus = MemoryBus(MemoryBusConfig(), clock)
    verdicts: list[AnomalyVerdict] = []

    async def collect(msg: Message) -> None:
        assert isinstance(msg, AnomalyVerdict)
        verdicts.append(msg)

    bus.subscribe(AnomalyVerdict.TOPIC, "test", collect)
    job = ConfirmJob(
        ConfirmConfig(enabled=True, history_s=3 * 86_400), store, bus, clock, tmp_path / "models"
    )
    await bus.start()
    try:
        store.write(AGENT, _batch(device, 0, 3 * DAY, 1))
        job.models.fit((AGENT, DEVICE), clock.now_ms())  # the model the job would fit: three days of history
        await clock.advance(86_400)
        store.write(AGENT, _batch(device, 3 * DAY, 4 * DAY, 2))
        # The edge fires on CPU and traffic as a surge starts, on temperature as it follows a few minutes
        # later, and on temperature alone at each jump.
        last_day = [s for s in device.surges if s >= 3 * DAY]
        surge_onsets = [
            _onset(device, m, s + lag) for s in last_day for m, lag in zip(METRICS, (0, 0, 3), strict=True)
        ]
        jump_onsets = [_onset(device, "temperature", j) for j in device.jumps]
        for m in surge_onsets + jump_onsets:
            await job.handle(m)
        assert await job.tick() == len(surge_onsets) + len(jump_onsets)
        await bus.aclose()  # delivers what is queued
        on_surge = {(m.metric, m.ts_ms) for m in surge_onsets}
        surge = [v for v in verdicts if (v.metric, v.ts_ms) in on_surge]
        jump = [v for v in verdicts if (v.metric, v.ts_ms) not in on_surge]
        yield Run(surge, jump, job)
    finally:
        await job.aclose()
        await bus.aclose()
        store.close()


async def test_coupled_surges_are_mostly_dismissed_and_lone_temperature_jumps_confirmed(run: Run) -> None:
    """One test (the fixture costs seconds): the verdicts, then the counts they leave behind."""
    surges, jumps = run.surge_onsets, run.jump_onsets
    assert len(surges) >= 15 and len(jumps) == len(JUMPS)
    dismissed = sum(v.verdict == "dismissed" for v in surges) / len(surges)
    confirmed = sum(v.verdict == "confirmed" for v in jumps) / len(jumps)
    print(f"coupled surges: {len(surges)} onsets, dismiss rate {dismissed:.2f}; "
          f"lone jumps: {len(jumps)} onsets, confirm rate {confirmed:.2f}")  # fmt: skip
    for metric in METRICS:
        mine = [v for v in surges if v.metric == metric]
        print(f"  {metric}: dismissed {sum(v.verdict == 'dismissed' for v in mine)}/{len(mine)}")
    assert dismissed >= 0.7
    assert confirmed >= 0.85
    assert all(v.top_features for v in surges + jumps)
    assert any(name.startswith("temperature") for v in jumps for name, _ in v.top_features)
    stats = run.job.stats
    per_device = stats.by_device[(AGENT, DEVICE)]
    assert per_device["confirmed"] + per_device["dismissed"] == len(surges) + len(jumps)
    assert {d for d, _ in stats.by_detector} == {"robust"}
    # The day-old model judged the onsets, then was refitted with the tick's spare fit budget (refit_s 1 h).
    assert run.job.models.fits == 2 and run.job.queued == 0
