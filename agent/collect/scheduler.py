"""Runs every collector on its own interval: deterministic phase, bounded jitter, deadline, concurrency caps.

Why deterministic phase: 500 targets on a 60 s interval spread evenly instead of bursting at start-up,
and a restart keeps each target's slot. A per-target deadline and a global cap keep one black-holed
device from delaying the others. State changes (down/up) are logged once; per-poll outcomes are counters.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agent.collect.base import Collector
from shared.clock import Clock, SystemClock
from shared.model import CollectResult

log = logging.getLogger(__name__)


def phase_of(target: str, interval_s: float) -> float:
    """A stable offset in [0, interval) derived from the target name."""
    digest = hashlib.blake2b(target.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") / 2**64) * interval_s


@dataclass
class TargetStats:
    """Per-target counters exported as agent metrics."""

    polls: int = 0
    timeouts: int = 0
    errors: int = 0
    lateness_s: float = 0.0
    up: bool = True
    down_since: float | None = None
    last_duration_s: float = 0.0


@dataclass
class Scheduler:
    """Polls collectors forever and hands each result to `sink` (a cheap, non-blocking callable)."""

    collectors: Sequence[Collector]
    sink: Callable[[CollectResult], None]
    clock: Clock = field(default_factory=SystemClock)
    max_concurrency: int = 64
    jitter_fraction: float = 0.05
    stats: dict[str, TargetStats] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._sem = asyncio.Semaphore(self.max_concurrency)
        self._tasks: list[asyncio.Task[None]] = []
        self._rng = random.Random()

    async def start(self) -> None:
        for c in self.collectors:
            await c.start()
            self.stats[c.target] = TargetStats()
            self._tasks.append(asyncio.create_task(self._loop(c), name=f"poll:{c.target}"))

    async def _loop(self, c: Collector) -> None:
        interval = c.interval_s
        start = self.clock.monotonic()
        next_due = start + phase_of(c.target, interval)
        while True:
            jitter = self._rng.uniform(0, self.jitter_fraction * interval)
            await self.clock.sleep(next_due + jitter - self.clock.monotonic())
            began = self.clock.monotonic()
            stats = self.stats[c.target]
            stats.lateness_s = max(0.0, began - next_due - jitter)
            await self._poll_once(c, stats, deadline=interval * 0.9)
            stats.last_duration_s = self.clock.monotonic() - began
            next_due += interval
            if next_due < self.clock.monotonic():  # overran: skip missed slots rather than burst
                missed = int((self.clock.monotonic() - next_due) // interval) + 1
                next_due += missed * interval

    async def _poll_once(self, c: Collector, stats: TargetStats, deadline: float) -> None:
        async with self._sem:
            stats.polls += 1
            try:
                result = await asyncio.wait_for(c.collect(), timeout=deadline)
            except TimeoutError:
                stats.timeouts += 1
                self._mark(c.target, stats, up=False, reason="timeout")
                return
            except Exception as exc:  # a collector bug must not kill the schedule
                stats.errors += 1
                self._mark(c.target, stats, up=False, reason=type(exc).__name__)
                return
        if result.errors:
            stats.errors += 1
        up = bool(result.samples) or not result.errors
        self._mark(c.target, stats, up=up, reason="; ".join(result.errors))
        self.sink(result)

    def _mark(self, target: str, stats: TargetStats, up: bool, reason: str) -> None:
        if stats.up and not up:
            stats.up, stats.down_since = False, self.clock.monotonic()
            log.warning("target %s is down: %s", target, reason[:200])
        elif not stats.up and up:
            down_for = self.clock.monotonic() - (stats.down_since or self.clock.monotonic())
            stats.up, stats.down_since = True, None
            log.info("target %s is up again after %s", target, _human(down_for))

    async def aclose(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for c in self.collectors:
            await c.aclose()


def _human(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m}m{s}s" if h else f"{m}m{s}s"
