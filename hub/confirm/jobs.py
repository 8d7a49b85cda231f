"""The confirmation job: edge onsets in, one `AnomalyVerdict` each out, judged in batches per tick.

A run-once job in a worker (`hub.pipeline`): it takes `AnomalyReported` onsets off the bus into a bounded
queue and, every `tick_s`, judges what is queued in one worker thread: onsets grouped by device, one
history read and one forest pass per device. Devices without a model are fitted in the same tick, at
most `max_fits_per_tick` of them (the rest wait for the next tick), and stale models are refitted with
what is left of that budget. A queued onset is acknowledged to the bus at once (batching needs many in
hand), so a worker that dies loses at most one tick of them; their alerts are the only thing missed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path

from hub.bus.base import Bus
from hub.bus.errors import BusError
from hub.bus.job import JobTasks
from hub.bus.messages import AnomalyReported, AnomalyVerdict, Message
from hub.confirm.config import ConfirmConfig
from hub.confirm.devices import DeviceKey, DeviceModels
from hub.confirm.verdict import CONFIRMED, DISMISSED, UNSCORED, Judgement
from hub.store.base import Store
from shared.clock import Clock
from shared.logging import UpDown

log = logging.getLogger(__name__)

GROUP = "confirm"
VERDICTS = (CONFIRMED, DISMISSED, UNSCORED)
# Devices whose verdict counts are kept (least recently judged dropped first): bounds /metrics series.
MAX_DEVICES_TRACKED = 10_000
_SEEN_IDS = 100_000


@dataclass(slots=True)
class ConfirmStats:
    """Counts the job keeps for /metrics and the API (read on the event loop, written there too)."""

    by_detector: Counter[tuple[str, str]] = field(default_factory=Counter)  # (detector, verdict)
    by_device: OrderedDict[DeviceKey, Counter[str]] = field(default_factory=OrderedDict)
    dropped: int = 0  # queue full
    duplicates: int = 0
    deferred: int = 0  # waited a tick for their device's first fit
    failed_ticks: int = 0
    publish_failures: int = 0
    ticks: int = 0
    tick_seconds: float = 0.0

    def count(self, msg: AnomalyReported, verdict: str) -> None:
        self.by_detector[(msg.detector, verdict)] += 1
        key = (msg.agent, msg.device)
        per = self.by_device.pop(key, None) or Counter()
        per[verdict] += 1
        self.by_device[key] = per
        while len(self.by_device) > MAX_DEVICES_TRACKED:
            self.by_device.popitem(last=False)


def rate(counts: Counter[str]) -> float | None:
    """Share of judged onsets confirmed (unscored ones are not judged); None before any was judged."""
    judged = counts[CONFIRMED] + counts[DISMISSED]
    return counts[CONFIRMED] / judged if judged else None


class ConfirmJob:
    """`start` subscribes and starts ticking; `aclose` unsubscribes and stops (safe twice, safe unstarted)."""

    name = "confirm"

    def __init__(
        self, config: ConfirmConfig, store: Store, bus: Bus, clock: Clock, model_dir: Path | None
    ) -> None:
        self.config = config
        self.models = DeviceModels(config, store, model_dir)
        self.stats = ConfirmStats()
        self._bus = bus
        self._clock = clock
        self._pending: deque[AnomalyReported] = deque()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._running = JobTasks()
        self._health = UpDown(log, "edge onset confirmation", clock)  # logs a failing tick once

    async def start(self) -> None:
        self._running.subscribe(self._bus, AnomalyReported.TOPIC, GROUP, self.handle)
        self._running.spawn("confirm", self._loop())

    async def aclose(self) -> None:
        await self._running.stop()

    @property
    def queued(self) -> int:
        return len(self._pending)

    async def handle(self, msg: Message) -> None:
        """Queues an onset for the next tick; ends, repeats and a full queue are not queued."""
        if not isinstance(msg, AnomalyReported) or msg.phase != "onset":
            return
        if msg.id in self._seen:
            self.stats.duplicates += 1
            return
        if len(self._pending) >= self.config.max_pending:
            self.stats.dropped += 1
            return
        self._pending.append(msg)
        self._seen[msg.id] = None
        while len(self._seen) > _SEEN_IDS:
            self._seen.popitem(last=False)

    async def _loop(self) -> None:
        while True:
            await self._clock.sleep(self.config.tick_s)
            try:
                await self.tick()
            except Exception as exc:  # a failed tick puts its onsets back; the job keeps ticking
                self.stats.failed_ticks += 1
                self._health.down(f"{type(exc).__name__}: {exc} (onsets queued again)")
            else:
                self._health.up()

    async def tick(self) -> int:
        """Judges everything queued and publishes the verdicts; returns how many were published."""
        batch = list(self._pending)
        self._pending.clear()
        if not batch:
            return 0
        started = time.perf_counter()
        try:
            judged, deferred = await asyncio.to_thread(self._judge, batch, self._clock.now_ms())
        except Exception:
            self._pending.extendleft(reversed(batch))
            raise
        self._pending.extendleft(reversed(deferred))
        self.stats.deferred += len(deferred)
        published = 0
        for i, (msg, j) in enumerate(judged):
            try:
                await self._bus.publish(verdict_message(msg, j))
            except BusError:
                self.stats.publish_failures += len(judged) - i
                self._pending.extend(m for m, _ in judged[i:])  # judged again next tick
                break
            self.stats.count(msg, j.verdict)
            published += 1
        self.stats.ticks += 1
        self.stats.tick_seconds += time.perf_counter() - started
        return published

    def _judge(
        self, batch: list[AnomalyReported], now_ms: int
    ) -> tuple[list[tuple[AnomalyReported, Judgement]], list[AnomalyReported]]:
        """(onset, verdict) pairs and the onsets deferred to the next tick (their device awaits a fit)."""
        by_device: dict[DeviceKey, list[AnomalyReported]] = {}
        for msg in batch:
            by_device.setdefault((msg.agent, msg.device), []).append(msg)
        fits_left = self.config.max_fits_per_tick
        judged: list[tuple[AnomalyReported, Judgement]] = []
        deferred: list[AnomalyReported] = []
        for key, onsets in by_device.items():
            model = self.models.model(key, now_ms)
            if model is None and self.models.fit_due(key, now_ms):
                if not fits_left:
                    deferred += onsets
                    continue
                fits_left -= 1
                model = self.models.fit(key, now_ms)
            if model is None:
                judged += [(o, Judgement(UNSCORED, 0.0, ())) for o in onsets]
            else:
                judged += zip(onsets, self.models.judge(key, model, onsets), strict=True)
        for key in self.models.stale(now_ms)[:fits_left]:
            self.models.fit(key, now_ms)
        return judged, deferred


def verdict_message(msg: AnomalyReported, j: Judgement) -> AnomalyVerdict:
    return AnomalyVerdict.create(
        agent=msg.agent,
        device=msg.device,
        metric=msg.metric,
        labels=msg.labels,
        ts_ms=msg.ts_ms,
        score=msg.score,
        severity=msg.severity,
        value=msg.value,
        detector=msg.detector,
        verdict=j.verdict,
        confirm_score=j.score,
        top_features=j.top,
    )
