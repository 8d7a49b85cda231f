"""The transport-independent ingest step: decode, store durably, count, then acknowledge.

gRPC and NATS both call `Ingestor.ingest`; an `IngestOutcome` tells them what to answer. The store
write happens before the outcome is returned, so an acknowledgement always means "durable".
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from hub.bus.base import Bus
from hub.bus.errors import BusError
from hub.enrich.logs.intake import LogIntake, LogsRefused
from hub.fleet.agents import Fleet
from hub.ingest.publish import messages
from hub.store.base import SeriesColumns, Store
from hub.store.errors import StoreError
from hub.telemetry import HubMetrics
from shared import codec
from shared.clock import Clock, SystemClock
from shared.errors import CodecError, TransientError
from shared.logging import UpDown
from shared.model import Batch, SeriesPoints

log = logging.getLogger(__name__)
T = TypeVar("T")
# Ingest's own threads (decode, store write, state bookkeeping): never the default pool that other
# work shares. Writers mostly wait on the journal's group-commit fdatasync, so a few more than cores.
MAX_INGEST_THREADS = 16


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What to tell the sender. `error` set means the envelope was rejected permanently."""

    accepted_points: int = 0
    rejected_points: int = 0
    duplicate: bool = False
    retry_after_ms: int = 0
    error: str = ""


class Ingestor:
    """Admission control plus the durable write, then the per-agent delivery bookkeeping."""

    def __init__(
        self,
        store: Store,
        state: Fleet,
        metrics: HubMetrics,
        *,
        max_inflight: int,
        retry_after_ms: int,
        max_uncompressed: int = codec.MAX_UNCOMPRESSED_BYTES,
        clock: Clock | None = None,
        bus: Bus | None = None,
        score_pushed: bool = False,
        logs: LogIntake | None = None,
    ) -> None:
        self._store = store
        # Where the log lines of batches go before the ack (None: a hub that stores no logs).
        self._logs = logs
        self._bus = bus
        # Publish the points of pushed batches (`PointsPushed`) for the hub's detector bank (hub.detect).
        self._score_pushed = score_pushed
        self._state = state
        self._metrics = metrics
        self._max_inflight = max_inflight
        self._retry_after_ms = retry_after_ms
        self._max_uncompressed = max_uncompressed
        self._clock = clock or SystemClock()
        # Owned by ingest so API queries (their own pool, hub/api/deps.py) can never queue ahead of writes.
        self._pool = ThreadPoolExecutor(
            max_workers=min(max_inflight, MAX_INGEST_THREADS), thread_name_prefix="ingest"
        )
        self._inflight = 0
        self._last_active = float("-inf")
        self._rejected_once: set[str] = set()
        self._store_health = UpDown(log, "store", self._clock)
        self._push_epoch = self._clock.now_ms()
        # Per pushing source, so its sequence has no holes (the fleet counts holes as lost batches).
        self._push_seq: dict[str, itertools.count[int]] = {}

    async def ingest(self, agent: str, data: bytes, transport: str) -> IngestOutcome:
        """Stores one envelope for `agent` (its certificate identity) and says what to answer."""
        return await self._admitted(transport, functools.partial(self._ingest, agent, data, transport))

    async def ingest_series(
        self, agent: str, series: tuple[SeriesPoints, ...] | SeriesColumns, transport: str
    ) -> IngestOutcome:
        """Stores series a receiver decoded itself (pushed line protocol, remote write) for `agent`,
        through the same admission, durable write, fleet bookkeeping and bus announcements as envelopes.

        The batch id is this ingestor's start time and a counter per source: no restart or other hub
        reuses it."""
        columns = series if isinstance(series, SeriesColumns) else SeriesColumns.of_series(series)
        return await self._admitted(
            transport, functools.partial(self._write_pushed, agent, columns, transport)
        )

    async def _write_pushed(self, agent: str, columns: SeriesColumns, transport: str) -> IngestOutcome:
        # Numbered once admitted, so a throttled push leaves no hole in the source's sequence.
        seq = next(self._push_seq.setdefault(agent, itertools.count(1)))
        batch = Batch(boot_epoch=self._push_epoch, seq=seq)  # its id; the points travel as columns
        return await self._write(agent, len(columns), batch, transport, pushed=columns)

    async def _admitted(self, transport: str, work: Callable[[], Awaitable[IngestOutcome]]) -> IngestOutcome:
        if self._inflight >= self._max_inflight:
            self._metrics.throttled.labels(transport).inc()
            return IngestOutcome(retry_after_ms=self._retry_after_ms)
        self._inflight += 1
        try:
            return await work()
        finally:
            self._inflight -= 1
            self._last_active = self._clock.monotonic()

    def busy(self, within_s: float = 1.0) -> bool:
        """True while a batch is being stored or one was within `within_s`: queries then yield."""
        return self._inflight > 0 or self._clock.monotonic() - self._last_active < within_s

    async def _ingest(self, agent: str, data: bytes, transport: str) -> IngestOutcome:
        try:
            # Decompressing and parsing up to 64 MB must not stall the event loop serving other agents.
            header, batch = await self.in_pool(codec.decode, data, self._max_uncompressed)
        except CodecError as exc:
            points = 0
            try:
                points = codec.peek(data).point_count
            except CodecError:
                pass
            return self.reject(agent, transport, exc, points)
        return await self._write(agent, header.point_count, batch, transport)

    async def _write(
        self, agent: str, point_count: int, batch: Batch, transport: str, pushed: SeriesColumns | None = None
    ) -> IngestOutcome:
        """Stores `batch` (its points in `pushed` when a source pushed them), then counts and announces it."""
        try:
            with self._metrics.write_seconds.time():
                if pushed is None:
                    result = await self.in_pool(self._store.write, agent, batch)
                else:
                    result = await self.in_pool(
                        self._store.write_columns, agent, batch.boot_epoch, batch.seq, pushed
                    )
        except StoreError as exc:  # the backend refuses this batch for good: count it, never retry it
            self._metrics.store_errors.labels("permanent").inc()
            log.error("store refused batch %s of %s for good: %s", batch.batch_id, agent, exc)
            return IngestOutcome(rejected_points=point_count, error=f"store refused the batch: {exc}")
        except (TransientError, OSError) as exc:  # not stored, so not acknowledged: the agent retries
            self._metrics.store_errors.labels("transient").inc()
            self._set_store_ok(False, str(exc))
            return IngestOutcome(retry_after_ms=self._retry_after_ms)
        if batch.logs and self._logs is not None:
            refused = await self._write_logs(agent, batch)
            if refused is not None:
                return refused
        now = self._clock.now_ms()
        # A batch the store already had may still be uncounted (hub killed between the two writes):
        # the state decides by batch id, and then counts the envelope's points.
        points = point_count if result.duplicate else result.accepted_points
        try:
            new = await self.in_pool(
                self._state.record_batch, agent, batch.boot_epoch, batch.seq, points, now
            )
        except TransientError as exc:  # stored but not counted: not acknowledged, so the retry counts it
            self._metrics.store_errors.labels("state").inc()
            self._set_store_ok(False, f"hub state: {exc}")
            return IngestOutcome(retry_after_ms=self._retry_after_ms)
        self._set_store_ok(True, "")
        if self._bus is not None:
            # Published before the ack, also for a duplicate (the first copy's messages may not have gone
            # out before a crash): ids are per batch, so consumers skip what they have seen. Pushed points
            # go out too, for the hub's detector bank (hub.detect): every pushed metric passes here.
            if pushed is not None and self._score_pushed:  # every point becomes message data: off the loop
                published = await self.in_pool(messages, agent, batch.batch_id, batch, True, pushed)
            else:
                published = messages(agent, batch.batch_id, batch, columns=pushed)
            if published.refused:
                self._metrics.rejected.labels(transport, "bus_message").inc(published.refused)
            try:
                for msg in published.messages:
                    await self._bus.publish(msg)
            except BusError as exc:  # not announced, so not acknowledged: the agent retries
                self._metrics.store_errors.labels("bus").inc()
                self._set_store_ok(False, f"hub bus: {exc}")
                return IngestOutcome(retry_after_ms=self._retry_after_ms)
        # The state's batch-id decision is the one source of truth: /metrics counts what /api/v1/agents
        # counts (the store's own duplicate flag differs for a batch stored but not yet counted).
        if not new:
            self._metrics.batches.labels(transport, "duplicate").inc()
            return IngestOutcome(duplicate=True)
        self._metrics.batches.labels(transport, "stored").inc()
        self._metrics.points.labels(transport).inc(points)
        for e in batch.events:
            self._metrics.events.labels(e.kind).inc()
        return IngestOutcome(accepted_points=points)

    async def _write_logs(self, agent: str, batch: Batch) -> IngestOutcome | None:
        """Stores the batch's log lines (also when the store calls the batch a duplicate: its lines may
        not have committed before a crash; the log store's own ledger stores them once). None: stored."""
        assert self._logs is not None
        try:
            await self.in_pool(self._logs.store_batch, agent, batch)
        except LogsRefused as exc:
            self._metrics.store_errors.labels("logs_permanent").inc()
            log.error("log store refused batch %s of %s for good: %s", batch.batch_id, agent, exc)
            return IngestOutcome(rejected_points=batch.point_count, error=str(exc))
        except TransientError as exc:  # lines not durable, so not acknowledged: the agent retries
            self._metrics.store_errors.labels("logs").inc()
            self._set_store_ok(False, str(exc))
            return IngestOutcome(retry_after_ms=self._retry_after_ms)
        return None

    async def in_pool(self, fn: Callable[..., T], *args: object) -> T:
        """Runs `fn` on ingest's own threads (receivers parse pushed payloads there, off the loop)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args))

    def close(self) -> None:
        """Stops the ingest threads once the work they hold is done; call after intake stopped."""
        self._pool.shutdown(wait=True)

    def _set_store_ok(self, ok: bool, reason: str) -> None:
        """Logs the store going unavailable and coming back, once each."""
        if ok:
            self._store_health.up()
        else:
            self._store_health.down(f"agents told to retry: {reason}")

    def reject(self, agent: str, transport: str, exc: CodecError, points: int = 0) -> IngestOutcome:
        """Counts a permanently refused envelope (by reason) and logs the first one per agent and reason."""
        self._metrics.rejected.labels(transport, exc.reason).inc()
        self._metrics.rejected_points.labels(transport).inc(points)
        key = f"{agent}:{exc.reason}"
        if key not in self._rejected_once:  # a state change worth one line; repeats are counted only
            self._rejected_once.add(key)
            log.warning("rejecting envelopes from %s: %s", agent, exc)
        return IngestOutcome(rejected_points=points, error=str(exc))
