"""The in-process bus (the embedded default): one bounded asyncio queue per (topic, group).

`publish` puts the message on the queue of every group subscribed to its topic and returns; a full queue
drops it for that group only (counted in `stats.dropped`), unless `block: true` makes publish wait for
space. Each queue has `concurrency` consumer tasks; with the default of one, a group sees its topic in
publish order. Nothing here survives the process: the durable facts are in the store, the bus only
says where to look.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from dataclasses import dataclass, field

from hub.bus.base import (
    BusStats,
    Handler,
    TailHandler,
    TopicGroup,
    backoff_s,
    check_subscription,
    check_tail,
    inc,
    stop_tasks,
)
from hub.bus.config import MemoryBusConfig
from hub.bus.errors import BusClosed, UnknownTopic
from hub.bus.messages import MESSAGES, Message
from shared.clock import Clock, SystemClock
from shared.logging import UpDown

log = logging.getLogger(__name__)


@dataclass
class _Group:
    """One (topic, group) queue and the handlers that share it (round robin, like a NATS queue group)."""

    topic: str
    group: str
    queue: asyncio.Queue[Message]
    handlers: list[Handler]
    health: UpDown
    room: UpDown
    turn: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def key(self) -> TopicGroup:
        return (self.topic, self.group)

    def next_handler(self) -> Handler:
        handler = self.handlers[self.turn % len(self.handlers)]
        self.turn += 1
        return handler


class MemoryBus:
    """`Bus` inside one process; see the module docstring for the queueing rules."""

    def __init__(self, config: MemoryBusConfig, clock: Clock | None = None) -> None:
        self._cfg = config
        self._clock = clock or SystemClock()
        self.stats = BusStats()
        self._groups: dict[TopicGroup, _Group] = {}
        self._by_topic: dict[str, list[_Group]] = {}
        self._started = False
        self._closed = False
        self._tails: list[tuple[frozenset[str], TailHandler]] = []
        # Tail sequence numbers: from the boot time in microseconds, so a restarted hub's numbers are
        # higher than the last boot's (unless it published over a million messages a second on average).
        self._seq = self._clock.now_ms() * 1000

    def subscribe(self, topic: str, group: str, handler: Handler) -> None:
        sub = check_subscription(topic, group, handler, self._closed)
        g = self._groups.get((sub.topic, sub.group))
        if g is None:
            what = f"bus {topic}/{group}"
            g = _Group(
                topic,
                group,
                asyncio.Queue(maxsize=self._cfg.queue_size),
                [],
                UpDown(log, f"{what} handler"),
                UpDown(log, f"{what} queue"),
            )
            self._groups[g.key] = g
            self._by_topic.setdefault(topic, []).append(g)
            if self._started:  # a group joining a running bus gets its consumers now
                self._spawn(g)
        g.handlers.append(handler)

    def tail(self, topics: Collection[str], handler: TailHandler, replay_s: float = 0.0) -> None:
        self._tails.append((check_tail(topics, self._closed), handler))

    async def unsubscribe(self, topic: str, group: str, handler: Handler) -> None:
        g = self._groups.get((topic, group))
        if g is None or handler not in g.handlers:
            return
        if len(g.handlers) > 1:
            g.handlers.remove(handler)  # the other members take the queue over
            return
        # The last member: stop its consumers (a call in flight finishes first), drop what is queued.
        del self._groups[g.key]
        self._by_topic[topic].remove(g)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(g.queue.join(), self._cfg.drain_timeout_s)
        await stop_tasks(set(g.tasks))
        while not g.queue.empty():
            g.queue.get_nowait()
            inc(self.stats.dropped, g.key)

    def _spawn(self, g: _Group) -> None:
        g.tasks = [
            asyncio.create_task(self._work(g), name=f"bus-{g.topic}-{g.group}-{i}")
            for i in range(self._cfg.concurrency)
        ]

    async def start(self) -> None:
        if self._started or self._closed:
            return
        self._started = True
        for g in self._groups.values():
            self._spawn(g)

    async def publish(self, msg: Message) -> None:
        if self._closed:
            raise BusClosed(f"bus closed: {msg.TOPIC} {msg.id} not published")
        topic = msg.TOPIC
        if MESSAGES.get(topic) is not type(msg):
            raise UnknownTopic(topic)
        inc(self.stats.published, topic)
        self._seq += 1
        for topics, handler in self._tails:
            if topic in topics:
                try:
                    handler(self._seq, msg)
                except Exception:  # a tail's bug never reaches the publisher
                    self.stats.tail_failures += 1
        for g in self._by_topic.get(topic, ()):
            if self._cfg.block:
                await g.queue.put(msg)
                continue
            try:
                g.queue.put_nowait(msg)
            except asyncio.QueueFull:
                inc(self.stats.dropped, g.key)
                g.room.down(f"full ({self._cfg.queue_size} messages), dropping until it drains")
            else:
                # "back" only once half drained, so a queue hovering at its limit is not a log line each.
                if not g.room.is_up and g.queue.qsize() <= self._cfg.queue_size // 2:
                    g.room.up()

    async def _work(self, g: _Group) -> None:
        while True:
            msg = await g.queue.get()
            try:
                await self._deliver(g, msg)
            finally:
                g.queue.task_done()

    async def _deliver(self, g: _Group, msg: Message) -> None:
        cfg = self._cfg
        for attempt in range(cfg.retries + 1):
            if attempt:
                await self._clock.sleep(backoff_s(attempt, cfg.retry_backoff_s, cfg.retry_backoff_max_s))
            try:
                await g.next_handler()(msg)
            except Exception as exc:  # a handler's bug or outage: counted and retried, the bus lives on
                inc(self.stats.handler_failures, g.key)
                g.health.down(f"{type(exc).__name__}: {exc} (retrying, then counting as dead)")
                continue
            inc(self.stats.delivered, g.key)
            g.health.up()
            return
        inc(self.stats.dead, g.key)

    async def aclose(self) -> None:
        """Lets the consumers finish what is queued (up to `drain_timeout_s`), then stops them; messages
        still queued are counted as dropped."""
        if self._closed:
            return
        self._closed = True
        groups = list(self._groups.values())
        tasks = [t for g in groups for t in g.tasks]
        if tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(g.queue.join() for g in groups)), self._cfg.drain_timeout_s
                )
        if stuck := await stop_tasks(set(tasks)):
            log.warning("bus: %d handler tasks ignored cancellation and were left running", stuck)
        # Twice: emptying a queue wakes publishers blocked on it (block: true), who then put once more.
        for _ in range(2):
            for g in groups:
                while not g.queue.empty():
                    g.queue.get_nowait()
                    g.queue.task_done()
                    inc(self.stats.dropped, g.key)
            await asyncio.sleep(0)
