"""The forecast job's scheduling on a real embedded store: the CPU budget defers series to later rounds,
the oldest fit goes first, the cost reaches the metrics, and a round never stalls the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from hub.bus.config import MemoryBusConfig
from hub.bus.memory import MemoryBus
from hub.forecast.config import ForecastConfig, ThresholdRule
from hub.forecast.jobs import ForecastJob
from hub.forecast.metrics import ForecastMetrics
from hub.forecast.service import ForecastService
from hub.store.base import Store
from hub.store.config import EmbeddedStoreConfig
from hub.store.factory import build_store
from shared.clock import FakeClock
from shared.model import Batch, SeriesKey, SeriesPoints

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000
T_END = 1_790_000_000_000 // HOUR_MS * HOUR_MS
SERIES = 12
METRIC = "fixture_used_percent"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = build_store(EmbeddedStoreConfig(), tmp_path, FakeClock(T_END))
    s.open()
    ts = T_END - HOUR_MS * np.arange(10 * 24, 0, -1, dtype=np.int64)
    rng = np.random.default_rng(0)
    points = tuple(
        SeriesPoints(SeriesKey.of(METRIC, {"device": f"d{i:02d}"}), ts, 50 + rng.normal(0, 2, ts.shape[0]))
        for i in range(SERIES)
    )
    s.write("dc1/edge1", Batch(1, 1, points))
    try:
        yield s
    finally:
        s.close()


def _job(store: Store, cpu_share: float) -> tuple[ForecastJob, CollectorRegistry, MemoryBus]:
    config = ForecastConfig(cpu_share=cpu_share, thresholds=(ThresholdRule(metric=METRIC, value=100.0),))
    clock = FakeClock(T_END + 1)
    registry = CollectorRegistry()
    bus = MemoryBus(MemoryBusConfig(), clock)
    return ForecastJob(ForecastService(store, config), bus, clock, ForecastMetrics(registry)), registry, bus


async def test_a_spent_budget_defers_the_rest_and_the_oldest_fit_goes_first(store: Store) -> None:
    job, registry, bus = _job(store, cpu_share=1e-9)  # a budget smaller than any fit: one per round
    try:
        rounds = [await job.run_round() for _ in range(SERIES + 1)]
    finally:
        await job.aclose()
        await bus.aclose()
    assert [(r.eligible, r.fitted, r.deferred) for r in rounds] == [(SERIES, 1, SERIES - 1)] * (SERIES + 1)
    assert all(r.cpu_s > 0 for r in rounds)
    first = [r.series[0] for r in rounds[:SERIES]]
    assert len(set(first)) == SERIES  # every series got its turn before any was refitted...
    assert rounds[SERIES].series == (first[0],)  # ...and then the oldest fit goes again
    deferred = registry.get_sample_value("outpost_hub_forecast_deferred_total")
    assert deferred == (SERIES - 1) * (SERIES + 1)
    assert registry.get_sample_value("outpost_hub_forecast_fits_total", {"result": "ok"}) == SERIES + 1
    assert registry.get_sample_value("outpost_hub_forecast_fit_cpu_seconds_count") == SERIES + 1
    assert registry.get_sample_value("outpost_hub_forecast_series") == SERIES


async def test_a_round_within_budget_fits_everything_without_stalling_the_event_loop(store: Store) -> None:
    job, registry, bus = _job(store, cpu_share=1.0)
    lags: list[float] = []

    async def ticker() -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - t - 0.01)

    tick = asyncio.create_task(ticker())
    try:
        done = await job.run_round()
    finally:
        tick.cancel()
        await job.aclose()
        await bus.aclose()
    assert (done.fitted, done.deferred, done.published) == (SERIES, 0, 0)  # flat at 50 %: nothing crosses
    assert len(lags) >= 3 and max(lags) < 0.5, max(lags)
