"""The only module that wires the agent's stages: collect → detect → batch → spool → transport.

Collection never waits on delivery: results are scored and go into the batcher synchronously, full
batches are encoded into the disk spool (store-and-forward), and the deliverer drains it at the hub's
pace. An anomaly onset does not wait for its batch: it is spooled at once in its own small envelope,
on the urgent lane, so the hub hears of it within a second; so does its end. Every `heartbeat_s` a
heartbeat goes out in its own envelope (class HEARTBEAT, no series); the spool keeps at most one waiting.
Syslog records wait in the receiver's bounded queue and are batched apart from metrics (class LOGS,
bounded in records and bytes), with ids from the same sequence, into the same spool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from agent.collect.base import Resumable
from agent.collect.registry import build_collector
from agent.collect.scheduler import Scheduler
from agent.collect.syslog.records import device_addresses
from agent.collect.syslog.server import SyslogReceiver
from agent.collect.traps import TrapReceiver, trap_sources
from agent.config import AgentConfig
from agent.detect.scoring import EdgeScorer
from agent.enroll.enroll import TlsFiles, finish_install
from agent.enroll.renew import CertRenewer
from agent.heartbeat import CertExpiry, build_heartbeat
from agent.outbox.batch import Batcher, Sequencer
from agent.outbox.deliver import Deliverer
from agent.outbox.log_batch import LogBatcher
from agent.outbox.outbox import OutboxItem
from agent.outbox.spool import Spool
from agent.supervise import Supervisor
from agent.telemetry import AgentMetrics, LiveCollector, LiveSources, TelemetryServer
from agent.transport.base import Transport
from agent.transport.grpc import GrpcTransport, renew_certificate
from agent.transport.nats import NatsTransport
from shared import codec
from shared.clock import Clock, SystemClock
from shared.codec import PushResult
from shared.logging import UpDown
from shared.model import Batch, CollectResult

log = logging.getLogger(__name__)

FLUSH_TICK_S = 0.25
SHUTDOWN_DRAIN_S = 10.0


class Agent:
    """A running agent; `start` then `aclose` (which flushes and drains before returning)."""

    def __init__(self, config: AgentConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.metrics = AgentMetrics()
        self.sequencer = Sequencer(boot_epoch=self.clock.now_ms())
        self.batcher = Batcher(self.sequencer, self.clock, config.batch.max_points, config.batch.max_age_s)
        self.outbox = Spool(config.data_dir / "spool", config.spool, self.clock)
        tls = config.hub.tls
        self.tls_files = TlsFiles(tls.ca_file, tls.cert_file, tls.key_file)
        finish_install(self.tls_files)  # a renewal interrupted by a crash is completed before first use
        self.transport = build_transport(config)
        self.deliverer = Deliverer(
            self.outbox, self.transport, self.clock, on_result=self._on_delivery, guard=self._guard
        )
        self.supervisor = Supervisor()  # a stage task that ends while running shows in /healthz
        self.collectors = [build_collector(d, self.clock) for d in config.devices]
        self.scheduler = Scheduler(self.collectors, self._on_collect, self.clock, config.max_concurrency)
        self.scorer = EdgeScorer(config.detect, config.data_dir / "detect")
        self.traps = TrapReceiver(config.traps, self._on_collect, self.clock, trap_sources(config.devices))
        sl = config.syslog
        self.syslog = SyslogReceiver(sl, self.clock, device_addresses(config.devices))
        self.log_batcher = LogBatcher(
            self.sequencer, self.clock, sl.batch_max_records, sl.batch_max_bytes, sl.batch_max_age_s
        )
        self._reported_drops: dict[tuple[str, str], int] = {}
        self._stages: dict[str, UpDown] = {}
        self.renewer = (
            CertRenewer(
                self.tls_files,
                config.hub.renew_at,
                self._renew_call,
                self._use_renewed_certificate,
                self.clock,
            )
            if config.hub.renew_at > 0
            else None
        )
        # Counters the stages already keep are read when Prometheus scrapes, never copied per event.
        self.metrics.registry.register(
            LiveCollector(
                LiveSources(
                    targets=self.scheduler.stats,
                    traps=self.traps.stats,
                    scorer=self.scorer,
                    spool_quarantined_segments=lambda: len(self.outbox.quarantined),
                    spool_skipped_records=lambda: self.outbox.skipped_records,
                    collectors=self.scheduler.collectors,
                    syslog=self.syslog.stats if sl.enabled else None,
                )
            )
        )
        self.telemetry = (
            TelemetryServer(config.telemetry.listen, self.metrics, self.health)
            if config.telemetry.listen
            else None
        )
        self._flusher: asyncio.Task[None] | None = None
        self._heartbeats: asyncio.Task[None] | None = None
        self._logs: asyncio.Task[None] | None = None
        self._cert_expiry = CertExpiry(tls.cert_file)

    async def start(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self.outbox.open()
        for c in self.collectors:
            if isinstance(c, Resumable):  # a replayable source continues exactly where the disk ends
                c.resume_after(self.outbox.watermark_ms)
        await self.transport.start()
        self.deliverer.start()
        self.supervisor.watch("deliver", *self.deliverer.tasks)
        if self.renewer is not None:
            self.renewer.start()
            if self.renewer.task is not None:
                self.supervisor.watch("renew", self.renewer.task)
        if self.telemetry is not None:
            await self.telemetry.start()
        await self.traps.start()
        await self.syslog.start()
        if self.config.syslog.enabled:
            self._logs = asyncio.create_task(self._log_loop(), name="logs")
            self.supervisor.watch("logs", self._logs)
        await self.scheduler.start()
        self.supervisor.watch("collect", *self.scheduler.tasks)
        self._flusher = asyncio.create_task(self._flush_loop(), name="flush")
        self.supervisor.watch("flush", self._flusher)
        self._heartbeats = asyncio.create_task(self._heartbeat_loop(), name="heartbeat")
        self.supervisor.watch("heartbeat", self._heartbeats)
        log.info(
            "agent started: %d targets, delivering to %s over %s",
            len(self.config.devices),
            self.config.hub.address,
            self.config.hub.transport,
        )

    async def _renew_call(self, csr_der: bytes) -> bytes:
        """Renewal goes to the hub's mTLS gRPC port with the current certificate, whatever the transport."""
        f, hub = self.tls_files, self.config.hub
        return await renew_certificate(
            hub.address,
            csr_der,
            ca_pem=f.ca_file.read_bytes(),
            cert_pem=f.cert_file.read_bytes(),
            key_pem=f.key_file.read_bytes(),
            server_name=hub.server_name,
            timeout_s=hub.timeout_s,
        )

    async def _use_renewed_certificate(self) -> None:
        fresh = build_transport(self.config)
        await fresh.start()
        old = self.deliverer.swap_transport(fresh)
        self.transport = fresh
        await old.aclose()

    @contextlib.contextmanager
    def _guard(self, stage: str) -> Iterator[None]:
        """Keeps a failure (disk full, a bug) from killing a stage's loop: counted, and logged when the stage
        starts failing and when it works again."""
        health = self._stages.get(stage)
        if health is None:
            health = self._stages[stage] = UpDown(log, f"stage {stage}", self.clock)
        try:
            yield
        except Exception as exc:
            self.metrics.internal_errors.labels(stage).inc()
            health.down(f"{type(exc).__name__}: {exc}; the agent keeps running", logging.ERROR, exc_info=True)
        else:
            health.up()

    def _on_collect(self, result: CollectResult) -> None:
        with self._guard("collect"):
            self.metrics.samples.labels(result.target).inc(len(result.samples))
            if result.errors:
                self.metrics.collect_errors.labels(result.target).inc()
            obs = self.scorer.score(result, self.clock.monotonic()) if result.samples else None
            self.batcher.add(result.samples, obs.scores if obs else None, result.events, result.limits)
            if obs is not None and obs.events:
                self.metrics.anomaly_events.inc(len(obs.events))
                self._enqueue(self.batcher.event_batch(obs.events))
            if self.batcher.due():
                self._flush()

    async def _log_loop(self) -> None:
        """Moves syslog records from the receiver's queue into LOGS batches as they arrive."""
        limit = self.config.syslog.batch_max_records
        while True:
            records = await self.syslog.take(limit)
            with self._guard("logs"):
                for batch in self.log_batcher.add(records):
                    self._enqueue(batch)

    async def _flush_loop(self) -> None:
        while True:
            await self.clock.sleep(FLUSH_TICK_S)
            with self._guard("flush"):
                if self.batcher.due():
                    self._flush()
                if self.log_batcher.due():
                    self._flush_logs()
                self.outbox.maintain()
                self._export_spool_stats()

    async def _heartbeat_loop(self) -> None:
        """One heartbeat at start (the hub learns of the agent at once), then every `heartbeat_s`."""
        while True:
            with self._guard("heartbeat"):
                self._beat()
            await self.clock.sleep(self.config.heartbeat_s)

    def _beat(self) -> None:
        """Spools a fresh heartbeat, under the id of this boot's unsent one if there is one (it replaces
        it, so the hub sees no seq gap); none while one is out for delivery (the next tick sends it)."""
        held = self.outbox.heartbeat(self.sequencer.boot_epoch)
        if held is not None and held[1]:
            return
        stats = self.outbox.stats()
        hb = build_heartbeat(
            self.clock.now_ms(),
            self.config.heartbeat_s,
            stats.records,
            stats.bytes,
            self._cert_expiry.not_after_ms(),
            self.scheduler.stats,
        )
        self._enqueue(self.batcher.heartbeat_batch(hb, held[0] if held is not None else None))

    def _export_spool_stats(self) -> None:
        stats = self.outbox.stats()
        m = self.metrics
        m.spool_bytes.set(stats.bytes)
        m.spool_oldest_age.set(stats.oldest_age_s)
        m.backfill_bytes.set(stats.backfill_bytes)
        m.backfill_progress.set(stats.backfill_progress)
        for (cls, reason), n in self.outbox.dropped.items():
            seen = self._reported_drops.get((cls, reason), 0)
            if n > seen:
                m.dropped.labels(cls, reason).inc(n - seen)
                self._reported_drops[(cls, reason)] = n

    def _flush(self) -> None:
        batch = self.batcher.flush()
        if batch is not None:
            self._enqueue(batch)

    def _flush_logs(self) -> None:
        batch = self.log_batcher.flush()
        if batch is not None:
            self._enqueue(batch)

    def _enqueue(self, batch: Batch) -> None:
        self.outbox.put(OutboxItem.of(batch, codec.encode(batch)))
        self.metrics.outbox_pending.set(self.outbox.pending())

    def _on_delivery(self, item: OutboxItem, result: PushResult | None, outcome: str) -> None:
        self.metrics.batches.labels(outcome).inc()
        if result is not None:
            self.metrics.points_sent.inc(result.accepted_points)
        if outcome == "rejected":
            self.metrics.dropped.labels(item.batch_class.name.lower(), "rejected").inc()
        self.metrics.hub_connected.set(1 if self.deliverer.connected else 0)
        self.metrics.outbox_pending.set(self.outbox.pending())

    def health(self) -> dict[str, Any]:
        """What /healthz reports: hub reachability, pending envelopes, targets down, stages that died.

        The telemetry server answers 503 while `dead_stages` is non-empty.
        """
        down = sorted(t for t, s in self.scheduler.stats.items() if not s.up)
        dead = self.supervisor.dead_stages
        return {
            "status": "ok" if self.deliverer.connected and not down and not dead else "degraded",
            "dead_stages": dead,
            "hub_connected": self.deliverer.connected,
            "outbox_pending": self.outbox.pending(),
            "targets": len(self.scheduler.stats),
            "targets_down": down,
            "series_by_state": self.scorer.states(),
            "boot_epoch": self.sequencer.boot_epoch,
            "next_seq": self.sequencer.next_seq,
        }

    async def aclose(self) -> None:
        """Stops polling, flushes the open batch and gives delivery a bounded time to drain."""
        self.supervisor.stopping()
        await self.traps.aclose()
        await self.syslog.aclose()
        await self.scheduler.aclose()
        self.scorer.save_all()
        if self.renewer is not None:
            await self.renewer.aclose()
        for task in (self._flusher, self._heartbeats, self._logs):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._flush()
        # Records received before the listeners closed are spooled too (sent now or after the next start).
        for batch in self.log_batcher.add(self.syslog.take_nowait(self.config.syslog.queue_size)):
            self._enqueue(batch)
        self._flush_logs()
        if not await self.deliverer.drain(SHUTDOWN_DRAIN_S):
            log.warning("shutdown with %d batches still spooled for the next start", self.outbox.pending())
        await self.deliverer.aclose()
        await self.transport.aclose()
        self.outbox.close()
        if self.telemetry is not None:
            await self.telemetry.aclose()


def build_transport(config: AgentConfig) -> Transport:
    """The transport `hub.transport` names; both carry the same envelopes out of the same spool."""
    hub, tls = config.hub, config.hub.tls
    if hub.transport == "nats":
        return NatsTransport(
            hub.nats.servers,
            hub.nats.subject_prefix,
            ca_file=tls.ca_file,
            cert_file=tls.cert_file,
            key_file=tls.key_file,
            server_name=hub.server_name,
            timeout_s=hub.timeout_s,
        )
    return GrpcTransport(
        hub.address,
        ca_pem=tls.ca_file.read_bytes(),
        cert_pem=tls.cert_file.read_bytes(),
        key_pem=tls.key_file.read_bytes(),
        server_name=hub.server_name,
        timeout_s=hub.timeout_s,
    )
