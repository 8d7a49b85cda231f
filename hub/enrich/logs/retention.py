"""The log store's retention: lines past `retention_days`, then the oldest beyond `max_rows`, pruned in
the background (run once across hub processes), each pass counted and logged once."""

from __future__ import annotations

import asyncio
import logging
import time

from hub.enrich.logs.config import LogsConfig
from hub.enrich.logs.metrics import LogMetrics
from hub.enrich.logs.store import LogStore, Pruned
from shared.clock import Clock, SystemClock
from shared.delivery import DEDUP_WINDOW_MS

log = logging.getLogger(__name__)


class LogRetention:
    """Prunes every `prune_interval_s`; a failed pass is logged and retried at the next."""

    name = "log retention"

    def __init__(
        self, store: LogStore, config: LogsConfig, metrics: LogMetrics, clock: Clock | None = None
    ) -> None:
        self._store = store
        self._config = config
        self._metrics = metrics
        self._clock = clock or SystemClock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="log-retention")

    async def _loop(self) -> None:
        while True:
            await self._clock.sleep(self._config.prune_interval_s)
            try:
                await self.prune()
            except Exception:  # the database may be away for a while; the hub keeps serving
                log.exception("log retention pass failed")

    async def prune(self) -> Pruned:
        """One pass now; returns what it deleted."""
        cfg, now = self._config, self._clock.now_ms()
        began = time.monotonic()
        done = await asyncio.to_thread(
            self._store.prune,
            now - int(cfg.retention_days * 86_400_000),
            cfg.max_rows,
            cfg.prune_chunk,
            now - DEDUP_WINDOW_MS,  # re-sent batches never come from further back
        )
        self._metrics.pruned.labels("age").inc(done.by_age)
        self._metrics.pruned.labels("rows").inc(done.by_rows)
        if done.by_age or done.by_rows:
            log.info(
                "log retention removed %d lines (%d older than %g days, %d beyond %d rows) in %.1f s",
                done.by_age + done.by_rows,
                done.by_age,
                cfg.retention_days,
                done.by_rows,
                cfg.max_rows,
                time.monotonic() - began,
            )
        return done

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
