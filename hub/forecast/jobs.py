"""The forecast job: refits every series with a known threshold, oldest fit first, within a CPU budget,
and publishes `ForecastCrossing` for the predictive alerts.

A round runs every `interval_s`; its fits run one at a time on the job's own thread (never the API's
query pool or ingest's), and the round stops once they have used `cpu_share` of one core over the
interval: the rest are deferred (counted) and come first next round, as the oldest. It runs as a
run-once job (one hub process at a time), so one process owns the raise/resolve state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from hub.bus.base import Bus
from hub.bus.job import JobTasks
from hub.bus.messages import ForecastCrossing, LimitCrossed
from hub.forecast.crossing import CrossingTracker, Phase
from hub.forecast.metrics import ForecastMetrics
from hub.forecast.service import ForecastService, SeriesForecast
from hub.store.base import AGENT_LABEL
from shared.clock import Clock
from shared.model import SeriesKey

log = logging.getLogger(__name__)
T = TypeVar("T")
GROUP = "forecast"


@dataclass(frozen=True, slots=True)
class Round:
    """What one round did."""

    eligible: int
    fitted: int
    deferred: int
    cpu_s: float
    published: int
    series: tuple[SeriesKey, ...]  # those fitted, in order


class ForecastJob:
    name = "forecast"

    def __init__(self, service: ForecastService, bus: Bus, clock: Clock, metrics: ForecastMetrics) -> None:
        self._service = service
        self._bus = bus
        self._clock = clock
        self._metrics = metrics
        self._cfg = service.config
        self._fitted: dict[SeriesKey, int] = {}  # series -> when it was last fitted (ms)
        self._tracker = CrossingTracker()
        self._pool: ThreadPoolExecutor | None = None
        self._running = JobTasks()

    async def start(self) -> None:
        # Device limits are learnt while leading, so the one process that forecasts sees every state.
        self._running.subscribe(self._bus, LimitCrossed.TOPIC, GROUP, self._service.limits.handle)
        self._running.spawn("forecast", self._loop())
        log.info(
            "forecast job: refitting series with a threshold every %.0f s within %.0f %% of a core",
            self._cfg.interval_s,
            self._cfg.cpu_share * 100,
        )

    async def aclose(self) -> None:
        await self._running.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_round()
            except Exception:  # a failed round is retried next interval; the hub keeps serving
                log.exception("forecast round failed")
            await self._clock.sleep(self._cfg.interval_s)

    async def run_round(self) -> Round:
        """Lists the eligible series and refits them, oldest first, until the CPU budget is spent.

        `start` runs it every `interval_s`; called alone (tests, a one-off pass) it needs no `start`,
        only `aclose` afterwards to stop the job's thread.
        """
        now = self._clock.now_ms()
        keys = await self._run(self._eligible)
        self._metrics.eligible.set(len(keys))
        for gone in set(self._fitted) - set(keys):
            del self._fitted[gone]
            self._tracker.forget(str(gone))
        keys.sort(key=lambda k: self._fitted.get(k, -1))
        budget = self._cfg.cpu_share * self._cfg.interval_s
        spent, published = 0.0, 0
        fitted: list[SeriesKey] = []
        for key in keys:
            if spent >= budget:
                break
            try:
                result, cpu = await self._run(_timed, self._service.series, key, now)
            except Exception:
                self._metrics.failed.inc()
                log.exception("forecast of %s failed", key)
                result, cpu = None, 0.0
            spent += cpu
            fitted.append(key)
            self._fitted[key] = now
            self._metrics.fit_seconds.observe(cpu)
            self._metrics.fits.labels("ok" if result and result.prediction else "no_history").inc()
            msg = self._judge(key, result, now)
            if msg is not None:
                await self._bus.publish(msg)
                self._metrics.crossings.labels(msg.phase).inc()
                published += 1
        deferred = len(keys) - len(fitted)
        self._metrics.deferred.inc(deferred)
        return Round(len(keys), len(fitted), deferred, spent, published, tuple(fitted))

    def _eligible(self) -> list[SeriesKey]:
        """Series of the configured families and those with a device limit, at most `max_series`."""
        keys = set(self._service.limits.keys())
        for metric in self._service.metrics():
            keys.update(self._service.store.series(metric))
        return sorted(keys, key=str)[: self._cfg.max_series]

    def _judge(self, key: SeriesKey, f: SeriesForecast | None, now_ms: int) -> ForecastCrossing | None:
        """The message this refit publishes: an onset while the pessimistic band crosses within the
        horizon, an end once it stayed clear, else nothing.

        Only a history covering `min_history_days` may raise one, and a crossing counts only as far
        ahead as the history reaches back: two days of points say little about the month after them.
        """
        crossing = (
            f is not None
            and f.crossing is not None
            and f.crossing.p10 is not None
            and f.history_points >= self._service.min_history_steps
            and f.crossing.p10 <= f.history_points
        )
        phase = self._tracker.update(str(key), crossing)
        if phase is None or f is None or f.threshold is None:
            return None
        pred, ttt = f.prediction, f.crossing
        labels = tuple((k, v) for k, v in key.labels if k != AGENT_LABEL)
        return ForecastCrossing.create(
            agent=key.label(AGENT_LABEL),
            device=key.label("device"),
            metric=key.metric,
            labels=labels,
            ts_ms=now_ms,
            value=f.last_value,
            threshold=f.threshold.value,
            threshold_source=f.threshold.source,
            direction=f.threshold.direction.value,
            p10_ms=f.crossing_ms(ttt.p10) if ttt else 0,
            p50_ms=f.crossing_ms(ttt.p50) if ttt else 0,
            p90_ms=f.crossing_ms(ttt.p90) if ttt else 0,
            horizon_ms=self._service.horizon_steps * self._service.step_ms,
            method=pred.method if pred else "",
            backtest_mase=pred.backtest_mase if pred else 0.0,
            phase=Phase.ONSET.value if phase is Phase.ONSET else Phase.END.value,
        )

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forecast")
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)


def _timed(fn: Callable[..., T], *args: object) -> tuple[T, float]:
    """`fn(*args)` and the CPU time this thread spent on it."""
    t = time.thread_time()
    result = fn(*args)
    return result, time.thread_time() - t
