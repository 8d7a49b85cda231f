"""Runs every collector on its own interval: deterministic phase, bounded jitter, deadline, concurrency caps.

Why deterministic phase: 500 targets on a 60 s interval spread evenly instead of bursting at start-up,
and a restart keeps each target's slot. Each target has one loop, so at most one poll per device is in
flight; a global semaphore caps polls across devices. The deadline runs on the injected clock (not
asyncio's), so a black-holed device is cut off on time in production and in FakeClock tests alike,
and it holds one semaphore slot at most until then. State changes (down/up) are logged once;
per-poll outcomes are counters (`stats`, `samples()`). Every result reaches the sink through the
target's `DeviceStamp`, so each series carries `device=<target>` whatever the collector put in it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from agent.collect.base import Collector
from agent.collect.device import DeviceStamp
from shared.clock import Clock, SystemClock
from shared.logging import UpDown
from shared.model import CollectResult, MetricKind, Sample, SeriesKey

log = logging.getLogger(__name__)


def phase_of(target: str, interval_s: float) -> float:
    """A stable offset in [0, interval) derived from the target name."""
    digest = hashlib.blake2b(target.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") / 2**64) * interval_s


@dataclass
class TargetStats:
    """Per-target counters exported as agent metrics (`collect_timeouts_total{target}` is `timeouts`)."""

    health: UpDown
    polls: int = 0
    timeouts: int = 0
    errors: int = 0
    lateness_s: float = 0.0
    last_duration_s: float = 0.0

    @property
    def up(self) -> bool:
        return self.health.is_up


async def run_with_deadline(clock: Clock, work: Awaitable[CollectResult], seconds: float) -> CollectResult:
    """Awaits `work` but cancels it when `seconds` pass on `clock`.

    Raises:
        TimeoutError: the deadline passed first (the work was cancelled and awaited).
    """
    task = asyncio.ensure_future(work)
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task.cancelled():
        raise TimeoutError(f"deadline of {seconds:.1f}s passed")
    return task.result()


@dataclass
class Scheduler:
    """Polls collectors forever and hands each result to `sink` (a cheap, non-blocking callable).

    `deadline_fraction` of a target's interval bounds one poll; jitter is uniform in
    [0, min(jitter_fraction * interval, max_jitter_s)] on top of the target's phase.
    """

    collectors: Sequence[Collector]
    sink: Callable[[CollectResult], None]
    clock: Clock = field(default_factory=SystemClock)
    max_concurrency: int = 64
    jitter_fraction: float = 0.05
    max_jitter_s: float = 5.0
    deadline_fraction: float = 0.9
    stats: dict[str, TargetStats] = field(default_factory=dict)
    seed: int | None = None

    def __post_init__(self) -> None:
        self._sem = asyncio.Semaphore(self.max_concurrency)
        self._tasks: list[asyncio.Task[None]] = []
        self._stamps: dict[str, DeviceStamp] = {}
        self._rng = random.Random(self.seed)
        # Recent poll lateness across all targets (for the p99 the bench and telemetry report).
        self.recent_lateness: deque[float] = deque(maxlen=10_000)

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """One polling loop per target (the agent watches them for a loop that ends)."""
        return list(self._tasks)

    async def start(self) -> None:
        for c in self.collectors:
            await c.start()
            self.stats[c.target] = TargetStats(UpDown(log, f"target {c.target}", self.clock))
            self._stamps[c.target] = DeviceStamp(c.target)
        for c in self.collectors:
            self._tasks.append(asyncio.create_task(self._loop(c), name=f"poll:{c.target}"))

    async def _loop(self, c: Collector) -> None:
        interval = c.interval_s
        next_due = self.clock.monotonic() + phase_of(c.target, interval)
        stats = self.stats[c.target]
        jitter_cap = min(self.jitter_fraction * interval, self.max_jitter_s)
        while True:
            due = next_due + self._rng.uniform(0, jitter_cap)
            await self.clock.sleep(due - self.clock.monotonic())
            await self._poll_once(c, stats, due, deadline=interval * self.deadline_fraction)
            next_due += interval
            now = self.clock.monotonic()
            if next_due < now:  # overran: skip missed slots rather than burst
                next_due += (int((now - next_due) // interval) + 1) * interval

    async def _poll_once(self, c: Collector, stats: TargetStats, due: float, deadline: float) -> None:
        async with self._sem:
            began = self.clock.monotonic()
            stats.lateness_s = max(0.0, began - due)
            self.recent_lateness.append(stats.lateness_s)
            stats.polls += 1
            try:
                result = await run_with_deadline(self.clock, c.collect(), deadline)
            except TimeoutError:
                stats.timeouts += 1
                self._mark(stats, up=False, reason="timeout")
                return
            except Exception as exc:  # a collector bug must not kill the schedule
                stats.errors += 1
                self._mark(stats, up=False, reason=type(exc).__name__)
                return
            finally:
                stats.last_duration_s = self.clock.monotonic() - began
        if result.errors:
            stats.errors += 1
        up = bool(result.samples) or not result.errors
        self._mark(stats, up=up, reason="; ".join(result.errors))
        self.sink(self._stamps[c.target].result(result))

    def _mark(self, stats: TargetStats, up: bool, reason: str) -> None:
        if up:
            stats.health.up()
        else:
            stats.health.down(reason)

    def lateness_quantile(self, q: float) -> float:
        """The q-quantile (0..1) of recent poll lateness in seconds (0 before any poll)."""
        if not self.recent_lateness:
            return 0.0
        ordered = sorted(self.recent_lateness)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def samples(self, now_ms: int) -> list[Sample]:
        """The scheduler's own metrics per target, for the agent's telemetry."""
        out: list[Sample] = []
        for target, s in self.stats.items():
            labels = {"target": target}
            for name, value, kind in (
                ("collect_polls_total", s.polls, MetricKind.COUNTER),
                ("collect_timeouts_total", s.timeouts, MetricKind.COUNTER),
                ("collect_errors_total", s.errors, MetricKind.COUNTER),
                ("collect_lateness_seconds", s.lateness_s, MetricKind.GAUGE),
                ("collect_duration_seconds", s.last_duration_s, MetricKind.GAUGE),
                ("collect_up", 1.0 if s.up else 0.0, MetricKind.GAUGE),
            ):
                out.append(Sample(SeriesKey.of(name, labels), now_ms, float(value), kind))
        return out

    async def aclose(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for c in self.collectors:
            await c.aclose()
