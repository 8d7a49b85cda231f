"""Template counts as series: `log_template_count{agent, device?, template_id}`, one point per minute.

A point's value is the number of lines of that agent, device and template whose time falls in the
minute, counted from the log store itself rather than summed in memory: the series store keeps the
newer of two points at one time, so a minute written again when later lines arrive (a spooled
backlog, the next batch of the same minute) carries its whole count, and counts are exact however
many batches or workers stored its lines. Stored lines mark their minutes here; every
`counts_interval_s` the marked minutes are counted and written. Minutes marked by a process that dies
before that are not written until another line of theirs arrives (their lines are stored all the same).

The points are the hub's own writes to the series store, under each agent's name: their batch ids use
a negative boot epoch (minus this process's start time), which no agent's id has, so the store's
dedup never mistakes one for an agent's batch and the fleet's per-agent bookkeeping never sees them.
Distinct series are capped (`max_template_series`); a new one past the cap is counted, not written.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections.abc import Iterable

import numpy as np
import sqlalchemy as sa

from hub.enrich.logs.config import LogsConfig
from hub.enrich.logs.metrics import LogMetrics
from hub.enrich.logs.store import LogStore
from hub.store.base import AGENT_LABEL, Store
from hub.store.errors import StoreError
from shared.clock import Clock, SystemClock
from shared.errors import TransientError
from shared.logging import UpDown
from shared.model import Batch, SeriesKey, SeriesPoints

log = logging.getLogger(__name__)

METRIC = "log_template_count"
# Minutes counted per query: a backlog spanning days is written over a few passes, not in one scan.
MAX_MINUTES_PER_PASS = 1440
# (agent, minute) pairs waiting to be counted, over all agents: with the series store away for long,
# newer minutes past this are not marked (counted), so memory stays bounded.
MAX_MARKED = 200_000

SeriesId = tuple[str, str, str]  # agent, device, template id


class TemplateCounts:
    """Marks minutes that received lines and writes their counts into the series store."""

    name = "log template counts"

    def __init__(
        self,
        logs: LogStore,
        store: Store,
        config: LogsConfig,
        metrics: LogMetrics,
        clock: Clock | None = None,
    ) -> None:
        self._logs = logs
        self._store = store
        self._config = config
        self._metrics = metrics
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()  # `mark` runs on ingest threads
        self._dirty: dict[str, set[int]] = {}
        self._marked = 0
        # The series already written (the cap holds across restarts); learned with the first write, since
        # the series store may be away when the hub starts (InfluxDB down must not stop the hub).
        self._known: set[SeriesId] | None = None
        self._epoch = -self._clock.now_ms()
        self._seq = itertools.count(1)
        self._health = UpDown(log, "log template counts", self._clock)
        self._task: asyncio.Task[None] | None = None

    def mark(self, agent: str, minutes: Iterable[int]) -> None:
        """Minutes (start ms) that got new lines of `agent`; thread-safe."""
        with self._lock:
            marked = self._dirty.setdefault(agent, set())
            for m in minutes:
                if m in marked:
                    continue
                if self._marked >= MAX_MARKED:
                    self._metrics.template_minutes_dropped.inc()
                    continue
                marked.add(m)
                self._marked += 1

    async def start(self) -> None:
        """Writes the marked minutes every interval."""
        self._task = asyncio.create_task(self._loop(), name="log-template-counts")

    async def _loop(self) -> None:
        while True:
            await self._clock.sleep(self._config.counts_interval_s)
            await self.flush()

    async def flush(self) -> int:
        """Counts the marked minutes and writes them; returns points written. Failures are retried."""
        with self._lock:
            dirty, self._dirty, self._marked = self._dirty, {}, 0
        written = 0
        for agent, minutes in dirty.items():
            ordered = sorted(minutes)
            now, later = ordered[:MAX_MINUTES_PER_PASS], ordered[MAX_MINUTES_PER_PASS:]
            if later:
                self.mark(agent, later)
            try:
                written += await asyncio.to_thread(self._write_agent, agent, now)
            except StoreError as exc:  # refused for good: these points are dropped
                self._health.down(f"{type(exc).__name__}: {exc}")
                continue
            except (TransientError, OSError, sa.exc.SQLAlchemyError) as exc:  # marked again, next pass
                self._health.down(f"{type(exc).__name__}: {exc}")
                self.mark(agent, now)
                continue
            self._health.up()
        return written

    def _write_agent(self, agent: str, minutes: list[int]) -> int:
        if self._known is None:  # raises like a write while the store is away: marked again, next pass
            keys = self._store.series(METRIC)
            self._known = {(k.label(AGENT_LABEL), k.label("device"), k.label("template_id")) for k in keys}
        known = self._known
        per_series: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for device, template_id, minute, n in self._logs.minute_counts(agent, minutes):
            per_series.setdefault((device, template_id), []).append((minute, n))
        series = []
        capped = 0
        for (device, template_id), points in sorted(per_series.items()):
            sid = (agent, device, template_id)
            if sid not in known:
                if len(known) >= self._config.max_template_series:
                    capped += len(points)
                    continue
                known.add(sid)
            points.sort()
            labels = {"template_id": template_id, **({"device": device} if device else {})}
            series.append(
                SeriesPoints(
                    SeriesKey.of(METRIC, labels),
                    np.array([m for m, _ in points], dtype=np.int64),
                    np.array([n for _, n in points], dtype=np.float64),
                )
            )
        self._metrics.template_series_capped.inc(capped)
        if not series:
            return 0
        result = self._store.write(agent, Batch(self._epoch, next(self._seq), tuple(series)))
        self._metrics.template_points.inc(result.accepted_points)
        return result.accepted_points

    async def aclose(self) -> None:
        """Stops the loop and writes what is marked; safe without start and twice."""
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        await self.flush()
