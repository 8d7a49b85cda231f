"""The bus over NATS JetStream, for a hub split into `api` + N `worker` processes; the seam for nats.

One stream (`OUTPOST_BUS` on `outpost.bus.>`, file storage, limits retention: `max_age` / `max_bytes`)
holds every message for a while whether consumed or not. Each (topic, group) is a durable pull consumer
`outpost-bus-<group>-<topic>`: every process subscribed with that group fetches from it, so they share
the messages (each goes to one of them), and different groups each see all. A message is acked only
after its handler returned; a failing handler's message is nak'ed with a backoff and redelivered, at
most `max_deliver` times, then terminated and counted dead. A process that dies holding messages has
them redelivered after `ack_wait_s`.

`publish` waits for the stream's ack (so a returned publish survives a nats-server restart) and sets
`Nats-Msg-Id` to the message id, so a retried publish, or the same fact published by two processes,
is stored once inside the stream's duplicate window.

The hub's NATS user must be allowed to publish to `<subject_prefix>.>` (besides the JetStream API).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from hub.bus.base import (
    BusStats,
    Handler,
    Subscription,
    TailHandler,
    backoff_s,
    check_subscription,
    check_tail,
    inc,
    stop_tasks,
)
from hub.bus.config import NatsBusConfig
from hub.bus.errors import BusClosed, BusError, BusUnavailable, MessageError, UnknownTopic
from hub.bus.messages import MESSAGES, Message, decode
from hub.ingest.nats_consumer import ClientTls
from shared.logging import UpDown

log = logging.getLogger(__name__)

_RETRY_S = 1.0
_CLOSE_TIMEOUT_S = 5.0
# A tail's ordered consumer restarts itself where it stopped after missing two heartbeats.
_TAIL_HEARTBEAT_S = 2.0
_FETCH_WAIT_S = 1.0
_NATS_ERRORS = (nats.errors.Error, nats.js.errors.Error, OSError, TimeoutError)
# What nats-py hands error_cb when the link itself fails (the outage is logged once, as down).
_LINK_ERRORS = (
    nats.errors.StaleConnectionError,  # includes UnexpectedEOF
    nats.errors.ConnectionClosedError,
    nats.errors.NoServersError,
    OSError,
    TimeoutError,
)


def consumer_name(group: str, topic: str) -> str:
    """The durable consumer of (topic, group); consumer names may not contain dots."""
    return f"outpost-bus-{group}-{topic.replace('.', '-')}"


@dataclass
class _Consumer:
    sub: Subscription
    health: UpDown
    task: asyncio.Task[None] | None = None
    stopped: bool = False  # unsubscribed: fetch no more
    inflight: set[asyncio.Future[list[None]]] = field(default_factory=set)


@dataclass
class _Tail:
    topics: frozenset[str]
    handler: TailHandler
    replay_s: float
    task: asyncio.Task[None] | None = None


class NatsBus:
    """`Bus` over NATS JetStream; `start` returns at once and keeps (re)connecting in the background."""

    def __init__(self, config: NatsBusConfig, tls: ClientTls) -> None:
        self._cfg = config
        self._tls = tls
        self.stats = BusStats()
        self._consumers: list[_Consumer] = []
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._ready = asyncio.Event()
        self._link = UpDown(log, f"NATS bus stream {config.stream}")
        self._reported: set[str] = set()
        self._run_task: asyncio.Task[None] | None = None
        self._started = False
        self._closed = False
        self._tails: list[_Tail] = []

    def subscribe(self, topic: str, group: str, handler: Handler) -> None:
        sub = check_subscription(topic, group, handler, self._closed)
        c = _Consumer(sub, UpDown(log, f"bus {topic}/{group} handler"))
        self._consumers.append(c)
        if self._ready.is_set():  # connected already; otherwise `_run` starts it with the others
            self._spawn(c)

    async def unsubscribe(self, topic: str, group: str, handler: Handler) -> None:
        """Stops fetching for `handler`, lets its fetched batch finish; the durable consumer stays, so
        the group's other members (or the next subscriber) carry on where it stopped."""
        mine = [c for c in self._consumers if c.sub == Subscription(topic, group, handler)]
        for c in mine:
            c.stopped = True
            self._consumers.remove(c)
        tasks = {c.task for c in mine if c.task is not None}
        # The loop notices `stopped` within one fetch wait; a batch being handled finishes first.
        if tasks:
            pending = (await asyncio.wait(tasks, timeout=_FETCH_WAIT_S + 2.0))[1]
            if pending:
                await stop_tasks(pending)

    def tail(self, topics: Collection[str], handler: TailHandler, replay_s: float = 0.0) -> None:
        """An ordered consumer of this process (ephemeral, no acks) over the topics' subjects; the
        sequence is the stream's, so every hub process numbers a message alike."""
        t = _Tail(check_tail(topics, self._closed), handler, replay_s)
        self._tails.append(t)
        if self._ready.is_set():
            self._spawn_tail(t)

    def _spawn_tail(self, t: _Tail) -> None:
        t.task = asyncio.create_task(self._follow(t), name="bus-tail")

    async def _follow(self, t: _Tail) -> None:
        """Creates the tail's consumer, retrying until it can; nats-py keeps it going from there (it
        re-creates it from the last sequence seen after a gap or a server restart)."""
        while not self._closed:
            try:
                await self._subscribe_tail(t)
                return
            except Exception as exc:  # stream missing (server restarting), API timeout: retry
                self._link.down(f"cannot start a tail: {type(exc).__name__} {exc}, retrying")
                await asyncio.sleep(_RETRY_S)

    async def _subscribe_tail(self, t: _Tail) -> None:
        assert self._js is not None
        cfg, prefix = self._cfg, self._cfg.subject_prefix + "."
        subjects = sorted(prefix + topic for topic in t.topics)
        # More than one subject needs nats-server 2.10's filter_subjects; one works on any JetStream.
        many = subjects if len(subjects) > 1 else None
        # nats-py's ordered consumer restarts "by start sequence" after a gap, which JetStream refuses
        # while a start time is also set: resolve the time to a sequence first, with a throwaway consumer.
        probe = await self._js.add_consumer(
            cfg.stream,
            api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.BY_START_TIME,
                opt_start_time=datetime.now(UTC) - timedelta(seconds=t.replay_s),
                filter_subject=None if many else subjects[0],
                filter_subjects=many,
                inactive_threshold=5.0,
            ),
        )
        first = (probe.delivered.stream_seq if probe.delivered else 0) + 1
        with contextlib.suppress(*_NATS_ERRORS):
            await self._js.delete_consumer(cfg.stream, probe.name)

        async def deliver(m: Msg) -> None:
            topic = m.subject.removeprefix(prefix)
            try:
                message = decode(topic, m.data)
            except MessageError:
                inc(self.stats.decode_errors, topic)
                return
            try:
                t.handler(m.metadata.sequence.stream, message)
            except Exception:  # a tail's bug skips that message for it; the feed goes on
                self.stats.tail_failures += 1

        await self._js.subscribe(
            subjects[0],
            cb=deliver,
            stream=cfg.stream,
            ordered_consumer=True,
            idle_heartbeat=_TAIL_HEARTBEAT_S,
            config=api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=first,
                filter_subjects=many,
            ),
        )

    def _spawn(self, c: _Consumer) -> None:
        c.task = asyncio.create_task(self._consume(c), name=f"bus-{c.sub.topic}-{c.sub.group}")

    async def start(self) -> None:
        """Reads the client certificate (raising BusError when it cannot), then connects in the
        background; publishes wait for the connection up to `publish_timeout_s`."""
        if self._started or self._closed:
            return
        try:
            ctx = ssl.create_default_context(cafile=str(self._tls.ca_file))
            ctx.load_cert_chain(str(self._tls.cert_file), str(self._tls.key_file))
        except (OSError, ssl.SSLError) as exc:
            raise BusError(f"NATS bus client certificate {self._tls.cert_file}: {exc}") from exc
        self._started = True
        self._run_task = asyncio.create_task(self._run(ctx), name="bus-nats-connect")

    async def _run(self, ctx: ssl.SSLContext) -> None:
        cfg = self._cfg
        while self._nc is None:
            try:
                # With max_reconnect_attempts=-1 nats-py retries the first connection forever too.
                self._nc = await nats.connect(
                    servers=list(cfg.servers),
                    tls=ctx,
                    tls_hostname=cfg.server_name,
                    name="outpost-hub-bus",
                    connect_timeout=5,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                )
            except Exception as exc:  # never give up after start-up; publishes meanwhile time out
                self._link.down(f"cannot connect: {type(exc).__name__} {exc}, retrying")
                await asyncio.sleep(_RETRY_S)
        self._js = self._nc.jetstream(timeout=5)
        while True:
            try:
                await self._ensure_stream()
                break
            except _NATS_ERRORS as exc:
                self._link.down(f"cannot create stream: {type(exc).__name__} {exc}, retrying")
                await asyncio.sleep(_RETRY_S)
        if not self._link.up():
            log.info("bus on NATS stream %s (%d subscriptions)", cfg.stream, len(self._consumers))
        self._ready.set()
        for c in self._consumers:
            if c.task is None:
                self._spawn(c)
        for t in self._tails:
            if t.task is None:
                self._spawn_tail(t)

    async def _ensure_stream(self) -> None:
        assert self._js is not None
        cfg = self._cfg
        stream = api.StreamConfig(
            name=cfg.stream,
            subjects=[f"{cfg.subject_prefix}.>"],
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE,
            discard=api.DiscardPolicy.OLD,
            max_age=cfg.max_age.total_seconds(),
            max_bytes=cfg.max_bytes,
            duplicate_window=cfg.duplicate_window.total_seconds(),
        )
        try:
            await self._js.add_stream(stream)
        except nats.js.errors.BadRequestError:
            await self._js.update_stream(stream)  # exists with older settings

    async def _bind(self, c: _Consumer) -> JetStreamContext.PullSubscription:
        """Creates (or updates) the group's durable consumer and binds a pull subscription to it."""
        assert self._js is not None
        cfg, sub = self._cfg, c.sub
        name = consumer_name(sub.group, sub.topic)
        start = api.DeliverPolicy.ALL if cfg.new_group_start == "all" else api.DeliverPolicy.NEW
        config = api.ConsumerConfig(
            name=name,
            durable_name=name,
            filter_subject=f"{cfg.subject_prefix}.{sub.topic}",
            deliver_policy=start,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=cfg.ack_wait_s,
            max_deliver=cfg.max_deliver,
            max_ack_pending=max(1000, cfg.concurrency * 4),
        )
        try:
            await self._js.add_consumer(cfg.stream, config)
        except nats.js.errors.BadRequestError:
            # The deliver policy of an existing consumer cannot change; keep it and bind.
            pass
        return await self._js.pull_subscribe_bind(durable=name, stream=cfg.stream)

    async def _consume(self, c: _Consumer) -> None:
        psub: JetStreamContext.PullSubscription | None = None
        try:
            # `_closed` as well as cancellation: nats-py's fetch can swallow a cancel (a wait_for race).
            while not self._closed and not c.stopped:
                if psub is None:
                    try:
                        psub = await self._bind(c)
                    except Exception as exc:  # stream missing (server restarting), API timeout: retry
                        self._link.down(f"cannot bind consumer: {type(exc).__name__} {exc}, retrying")
                        await asyncio.sleep(_RETRY_S)
                        continue
                    self._link.up()
                try:
                    msgs = await psub.fetch(self._cfg.concurrency, timeout=_FETCH_WAIT_S)
                except (nats.errors.TimeoutError, TimeoutError):
                    continue
                except Exception as exc:  # consumer or stream gone, connection closed: bind afresh
                    self._link.down(f"fetch failed: {type(exc).__name__} {exc}, rebinding")
                    with contextlib.suppress(*_NATS_ERRORS):
                        await psub.unsubscribe()
                    psub = None
                    await asyncio.sleep(_RETRY_S)
                    continue
                if self._closed or c.stopped:  # fetched while leaving: hand them straight back
                    for m in msgs:
                        await self._settle(m.nak())
                    return
                batch = asyncio.gather(*(self._handle(c, m) for m in msgs))
                c.inflight.add(batch)
                batch.add_done_callback(c.inflight.discard)
                # Shielded: aclose() cancels this loop but lets the handlers of a fetched batch finish.
                await asyncio.shield(batch)
        finally:
            if c.stopped and psub is not None and not self._closed:
                with contextlib.suppress(*_NATS_ERRORS):
                    await psub.unsubscribe()  # the durable consumer stays for the group's others

    async def _handle(self, c: _Consumer, m: Msg) -> None:
        topic, key = c.sub.topic, (c.sub.topic, c.sub.group)
        try:
            message = decode(topic, m.data)
        except MessageError as exc:
            inc(self.stats.decode_errors, topic)
            self._report_once(f"decode:{topic}", f"dropping undecodable bus messages on {topic}: {exc}")
            await self._settle(m.term())
            return
        try:
            await c.sub.handler(message)
        except Exception as exc:  # a handler's bug or outage: counted and redelivered, the bus lives on
            inc(self.stats.handler_failures, key)
            c.health.down(f"{type(exc).__name__}: {exc} (redelivering, then counting as dead)")
            try:
                delivered = m.metadata.num_delivered
            except (nats.errors.Error, ValueError, IndexError):
                delivered = self._cfg.max_deliver  # not a JetStream delivery: nothing to redeliver
            if delivered >= self._cfg.max_deliver:
                inc(self.stats.dead, key)
                await self._settle(m.term())
            else:
                cfg = self._cfg
                delay = backoff_s(delivered, cfg.retry_backoff_s, cfg.retry_backoff_max_s)
                await self._settle(m.nak(delay=delay))
            return
        await self._settle(m.ack())
        inc(self.stats.delivered, key)
        c.health.up()

    async def _settle(self, reply: Awaitable[None]) -> None:
        """Acks, naks and terms are best effort: with the connection gone JetStream redelivers anyway."""
        with contextlib.suppress(*_NATS_ERRORS):
            await reply

    async def publish(self, msg: Message) -> None:
        if self._closed:
            raise BusClosed(f"bus closed: {msg.TOPIC} {msg.id} not published")
        topic = msg.TOPIC
        if MESSAGES.get(topic) is not type(msg):
            raise UnknownTopic(topic)
        if not self._started:
            raise BusError(f"publish({topic}) before start()")
        data, cfg = msg.to_bytes(), self._cfg
        subject = f"{cfg.subject_prefix}.{topic}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cfg.publish_timeout_s
        reason = "not connected"
        # Retrying is safe: the same Nats-Msg-Id inside the duplicate window is stored once.
        while (remaining := deadline - loop.time()) > 0:
            if self._js is None or not self._ready.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ready.wait(), remaining)
                continue
            try:
                ack = await self._js.publish(
                    subject,
                    data,
                    timeout=min(remaining, 2.0),
                    stream=cfg.stream,
                    headers={api.Header.MSG_ID: msg.id},
                )
            except nats.js.errors.NoStreamResponseError:
                reason = "no stream answered"  # server restarting, or the stream was deleted
                with contextlib.suppress(*_NATS_ERRORS):
                    await self._ensure_stream()
            except _NATS_ERRORS as exc:
                reason = f"{type(exc).__name__} {exc}".strip()
            else:
                inc(self.stats.published, topic)
                if ack.duplicate:  # stored already (a retry of ours, or another process's publish)
                    inc(self.stats.duplicates, topic)
                return
            await asyncio.sleep(min(0.2, max(0.0, deadline - loop.time())))
        inc(self.stats.publish_failures, topic)
        raise BusUnavailable(topic, reason)

    async def _on_error(self, exc: Exception) -> None:
        """nats-py reports every failed (re)connect attempt here; log the outage and other errors once."""
        if self._closed:
            return
        if isinstance(exc, _LINK_ERRORS) or self._nc is None or not self._nc.is_connected:
            self._link.down(f"{type(exc).__name__} {exc}".strip())
        else:
            self._report_once(f"error:{type(exc).__name__}", f"NATS bus: {type(exc).__name__} {exc}")

    async def _on_disconnected(self) -> None:
        if not self._closed:
            self._link.down("disconnected, reconnecting")

    async def _on_reconnected(self) -> None:
        self._link.up()

    def _report_once(self, key: str, line: str) -> None:
        if key not in self._reported:
            self._reported.add(key)
            log.warning("%s", line[:500])

    async def aclose(self) -> None:
        """Stops fetching, lets fetched batches finish (up to `ack_wait_s`, at most 5 s), then closes the
        connection; messages fetched but not acked are redelivered to another process."""
        if self._closed:
            return
        self._closed = True
        tasks = (self._run_task, *(c.task for c in self._consumers), *(t.task for t in self._tails))
        loops = {t for t in tasks if t is not None}
        # Cancelled again until done: a cancel nats-py swallowed must not hang shutdown.
        if stuck := await stop_tasks(loops):
            log.warning("NATS bus: %d tasks did not stop; closing the connection under them", stuck)
        inflight = [f for c in self._consumers for f in c.inflight]
        if inflight:
            pending = (await asyncio.wait(inflight, timeout=min(5.0, self._cfg.ack_wait_s)))[1]
            for f in pending:
                f.cancel()  # unacked: JetStream redelivers them to another process after ack_wait
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        nc, self._nc, self._js = self._nc, None, None
        self._ready.clear()
        if nc is not None:
            with contextlib.suppress(*_NATS_ERRORS):
                await nc.flush(timeout=1)
            # Bounded: a client mid-reconnect (or talking to something that took the server's port)
            # can wait on the close forever, and a hub that cannot stop is worse than a dropped socket.
            with contextlib.suppress(*_NATS_ERRORS):  # TimeoutError is among them
                await asyncio.wait_for(nc.close(), _CLOSE_TIMEOUT_S)
