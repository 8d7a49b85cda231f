"""The scheduler on a FakeClock: phases, deadlines, concurrency caps, down/up logged once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agent.collect.scheduler import Scheduler, phase_of
from shared.clock import FakeClock
from shared.model import CollectResult

pytestmark = pytest.mark.unit


class FakeDevice:
    """A collector whose poll takes `work_s` on the injected clock, or never ends while `dark`."""

    def __init__(self, name: str, clock: FakeClock, work_s: float = 0.5, interval_s: float = 60.0) -> None:
        self.name, self.clock, self.work_s, self._interval = name, clock, work_s, interval_s
        self.dark = False
        self.in_flight = self.max_in_flight = 0

    @property
    def target(self) -> str:
        return self.name

    @property
    def interval_s(self) -> float:
        return self._interval

    async def start(self) -> None:
        return None

    async def collect(self) -> CollectResult:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self.clock.sleep(10_000 if self.dark else self.work_s)
            return CollectResult(self.name)
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        return None


async def run_for(clock: FakeClock, seconds: float, step: float = 0.5) -> None:
    for _ in range(int(seconds / step)):
        await clock.advance(step)


def test_phase_is_deterministic_and_within_the_interval() -> None:
    assert phase_of("sw1", 60) == phase_of("sw1", 60)
    assert 0 <= phase_of("sw1", 60) < 60 and phase_of("sw1", 60) != phase_of("sw2", 60)


async def test_one_black_holed_target_among_200_delays_no_other_by_more_than_5_percent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    devices = [FakeDevice(f"sw{i}", clock) for i in range(200)]
    devices[17].dark = True
    results: list[CollectResult] = []
    sched = Scheduler(devices, results.append, clock, max_concurrency=8, seed=1)
    with caplog.at_level(logging.INFO, logger="agent.collect.scheduler"):
        await sched.start()
        await run_for(clock, 300)
        devices[17].dark = False
        await run_for(clock, 120)
        await sched.aclose()
    others = [s for name, s in sched.stats.items() if name != "sw17"]
    assert max(s.lateness_s for s in others) <= 0.05 * 60
    assert all(s.timeouts == 0 and s.polls >= 6 for s in others)
    assert sched.stats["sw17"].timeouts == 5 and sched.stats["sw17"].up
    assert max(d.max_in_flight for d in devices) == 1  # one poll per device in flight
    messages = [r.getMessage() for r in caplog.records]
    assert [m for m in messages if "sw17 down" in m] == ["target sw17 down: timeout"]
    ups = [m for m in messages if "sw17 back" in m]
    assert len(ups) == 1 and ups[0].startswith("target sw17 back after 4m")
    timeouts = {
        s.key.label("target"): s.value
        for s in sched.samples(clock.now_ms())
        if s.key.metric == "collect_timeouts_total"
    }
    assert timeouts["sw17"] == 5.0 and timeouts["sw0"] == 0.0


async def test_global_concurrency_cap_is_never_exceeded() -> None:
    clock = FakeClock()
    devices = [FakeDevice(f"d{i}", clock, work_s=5.0, interval_s=10.0) for i in range(30)]
    peak = 0

    def sink(_: CollectResult) -> None:
        nonlocal peak
        peak = max(peak, sum(d.in_flight for d in devices))

    sched = Scheduler(devices, sink, clock, max_concurrency=4, seed=2)
    await sched.start()
    for _ in range(100):
        await clock.advance(0.25)
        peak = max(peak, sum(d.in_flight for d in devices))
    await sched.aclose()
    await asyncio.sleep(0)
    assert peak == 4
