"""Consumes agent envelopes from NATS JetStream; the only hub module that imports nats.

Agents publish to `<prefix>.<site>.<agent>`. nats-server maps each agent's client certificate to a user
that may publish to its own subject only (hub/identity/nats_auth.py), so the subject *is* the certificate
identity; the payload is never asked who sent it. The stream is a work queue read through one durable
pull consumer: several hub workers may share it, each message goes to one of them, and a message is
acknowledged only after `Ingestor.ingest` returned, i.e. after the durable store write. A worker that dies
before acking has its messages redelivered after `ack_wait_s`; the store drops any it had already written.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import api

from hub.config import NatsIngestConfig
from hub.ingest.service import Ingestor
from hub.telemetry import HubMetrics
from shared.logging import UpDown

log = logging.getLogger(__name__)

_RETRY_CONNECT_S = 1.0
_CLOSE_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class ClientTls:
    """The hub's NATS client certificate (a server certificate cannot log in as a client) and the CA."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def identity_of_subject(prefix: str, subject: str) -> str | None:
    """`site/agent` for `<prefix>.<site>.<agent>`, or None when the subject has another shape."""
    head = prefix + "."
    if not subject.startswith(head):
        return None
    parts = subject[len(head) :].split(".")
    if len(parts) != 2 or not all(parts):
        return None
    return f"{parts[0]}/{parts[1]}"


class NatsConsumer:
    """A pull-consumer worker: `start` returns at once and keeps (re)connecting in the background."""

    def __init__(
        self,
        ingestor: Ingestor,
        settings: NatsIngestConfig,
        tls: ClientTls,
        metrics: HubMetrics,
        is_revoked: Callable[[str], bool] = lambda _agent: False,
    ) -> None:
        self._ingestor = ingestor
        self._cfg = settings
        self._tls = tls
        self._metrics = metrics
        self._is_revoked = is_revoked
        self._nc: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._refused_once: set[str] = set()
        self.consumed = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="nats-consumer")

    async def _run(self) -> None:
        nats_up = UpDown(log, f"NATS stream {self._cfg.stream}")
        while True:
            try:
                sub = await self._subscribe()
            except (OSError, nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
                nats_up.down(f"{type(exc).__name__}, retrying")
                await asyncio.sleep(_RETRY_CONNECT_S)
                continue
            if not nats_up.up():  # the first subscription; later ones log "back after ..."
                log.info("consuming %s.> from NATS stream %s", self._cfg.subject_prefix, self._cfg.stream)
            await self._consume(sub)
            nats_up.down("connection lost, resubscribing")

    async def _subscribe(self) -> nats.js.JetStreamContext.PullSubscription:
        cfg = self._cfg
        ctx = ssl.create_default_context(cafile=str(self._tls.ca_file))
        ctx.load_cert_chain(str(self._tls.cert_file), str(self._tls.key_file))
        await self._close_connection()
        self._nc = await nats.connect(
            servers=list(cfg.servers),
            tls=ctx,
            tls_hostname=cfg.server_name,
            connect_timeout=5,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            error_cb=_quiet,
        )
        js = self._nc.jetstream()
        stream = api.StreamConfig(
            name=cfg.stream,
            subjects=[f"{cfg.subject_prefix}.>"],
            retention=api.RetentionPolicy.WORK_QUEUE,
            storage=api.StorageType.FILE,
            duplicate_window=cfg.duplicate_window_s,
        )
        try:
            await js.add_stream(stream)
        except nats.js.errors.BadRequestError:
            await js.update_stream(stream)  # exists with older settings
        return await js.pull_subscribe(
            f"{cfg.subject_prefix}.>",
            durable=cfg.durable,
            stream=cfg.stream,
            config=api.ConsumerConfig(ack_wait=cfg.ack_wait_s, max_ack_pending=cfg.fetch_batch * 4),
        )

    async def _consume(self, sub: nats.js.JetStreamContext.PullSubscription) -> None:
        """Keeps up to `fetch_batch` messages being ingested at once, fetching more as soon as half of them
        are done: waiting for a whole fetch to finish before the next one left the store idle for a fetch
        round trip per batch of messages (NATS ran at about half the gRPC rate)."""
        limit = self._cfg.fetch_batch
        inflight: set[asyncio.Task[None]] = set()
        try:
            while True:
                if len(inflight) > limit // 2:
                    await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                try:
                    msgs = await sub.fetch(limit - len(inflight), timeout=1.0)
                except (nats.errors.TimeoutError, TimeoutError):
                    continue
                except (nats.errors.ConnectionClosedError, nats.errors.Error, nats.js.errors.Error):
                    return  # resubscribe on a fresh connection
                # Ingested concurrently, like concurrent gRPC pushes; order never mattered.
                for m in msgs:
                    task = asyncio.create_task(self._handle(m))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
        except asyncio.CancelledError:
            for task in inflight:  # shutting down: what is not acked yet is redelivered after ack_wait
                task.cancel()
            raise
        finally:
            # Before resubscribing, what was fetched finishes (acked, or nak'd for redelivery).
            await asyncio.gather(*inflight, return_exceptions=True)

    async def _handle(self, msg: Msg) -> None:
        try:
            await self._ingest(msg)
        except Exception as exc:  # a store failure: the message is redelivered later, the worker lives on
            if "store" not in self._refused_once:
                self._refused_once.add("store")
                log.error("ingest from NATS failed, message will be redelivered: %s", exc)
            try:
                await msg.nak(delay=1.0)
            except (nats.errors.Error, nats.js.errors.Error, OSError):
                pass  # connection gone: JetStream redelivers after ack_wait anyway

    async def _ingest(self, msg: Msg) -> None:
        agent = identity_of_subject(self._cfg.subject_prefix, msg.subject)
        if agent is None or self._is_revoked(agent):
            reason = "bad_subject" if agent is None else "revoked"
            self._metrics.rejected.labels("nats", reason).inc()
            key = f"{agent or msg.subject}:{reason}"
            if key not in self._refused_once:
                self._refused_once.add(key)
                log.warning("discarding NATS messages on %s: %s", msg.subject, reason)
            await msg.term()
            return
        outcome = await self._ingestor.ingest(agent, msg.data, "nats")
        if outcome.retry_after_ms:
            await msg.nak(delay=outcome.retry_after_ms / 1000)
        elif outcome.error:
            await msg.term()  # permanently unreadable: redelivery cannot help
        else:
            await msg.ack()
            self.consumed += 1

    async def _close_connection(self) -> None:
        if self._nc is not None:
            nc, self._nc = self._nc, None
            try:  # bounded: a client mid-reconnect can wait on close forever
                await asyncio.wait_for(nc.close(), _CLOSE_TIMEOUT_S)
            except (nats.errors.Error, OSError, TimeoutError):
                pass

    async def aclose(self) -> None:
        """Stops fetching; messages fetched but not acked are redelivered to another worker."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._close_connection()


async def _quiet(_exc: Exception) -> None:
    """nats-py reports every reconnect attempt; the consumer logs its own state changes once."""
