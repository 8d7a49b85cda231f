"""The `Bus` protocol both implementations honour, and the counters they keep.

Delivery semantics (the conformance tests in tests/bus/ check both implementations against these):

- Every (topic, group) subscription gets every message published on the topic once: several handlers
  (or hub processes) subscribed with the same group share the messages, different groups each get all.
- Delivery is at least once: a handler that raises is counted and gets the message again after a
  backoff, up to a bounded number of attempts; then the message is dropped and counted as dead.
  Consumers skip ids they have already handled.
- A handler never affects the publisher: `publish` returns once the message is queued (memory) or
  stored by the broker (nats), whatever the handlers do.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from hub.bus.errors import BusError, UnknownTopic
from hub.bus.messages import MESSAGES, Message

Handler = Callable[[Message], Awaitable[None]]
# Called with a message's global sequence number and the message; must not block (see `Bus.tail`).
TailHandler = Callable[[int, Message], None]

_GROUP = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Bus(Protocol):
    """A typed message bus with a lifecycle; `subscribe` before or after `start`, `publish` after.

    Subscribing after `start` is how a run-once job (the alert engine) joins when its process takes the
    job's lock; `unsubscribe` is how it leaves when it loses the lock or stops.
    """

    stats: BusStats

    async def start(self) -> None:
        """Starts delivering to the handlers subscribed so far."""

    async def publish(self, msg: Message) -> None:
        """Hands `msg` to every group subscribed to its topic (call after `start()`; the memory bus
        also accepts messages before, queued until it starts).

        Raises:
            BusClosed: after `aclose()`.
            BusError: (nats) before `start()`.
            BusUnavailable: (nats) the broker did not confirm the message in time; retrying is safe.
        """

    def subscribe(self, topic: str, group: str, handler: Handler) -> None:
        """Registers `handler` for `topic` in consumer group `group`; after `start()` it is delivered to
        at once (memory) or once connected (nats).

        Raises:
            UnknownTopic: `topic` is not in `hub.bus.messages.MESSAGES`.
            BusError: a bad group name, or the bus is closed.
        """

    async def unsubscribe(self, topic: str, group: str, handler: Handler) -> None:
        """Stops delivering to `handler` (a no-op if it is not subscribed); returns once its calls in
        flight have finished. Messages it had not handled go to the group's other members (nats: after
        `ack_wait_s`, or at once when nak'ed) or, with no member left, wait for the next one (nats) or
        are dropped and counted (memory)."""

    def tail(self, topics: Collection[str], handler: TailHandler, replay_s: float = 0.0) -> None:
        """Hands `handler` every message on `topics` in this process (no group: each caller gets all),
        in order, with a sequence number that increases with publish order and is the same in every
        process: the JetStream stream sequence (nats; gaps where other topics were published), or a
        counter starting at the boot time in microseconds (memory). A live feed for streaming to
        clients, not for work: nothing is retried or acknowledged. nats starts `replay_s` back in the
        stream (what this process missed before it started); memory has nothing from before.

        Raises:
            UnknownTopic: a topic not in `hub.bus.messages.MESSAGES`.
            BusError: the bus is closed.
        """

    async def aclose(self) -> None:
        """Stops delivering; safe without `start()` and safe twice."""


@dataclass(frozen=True, slots=True)
class Subscription:
    topic: str
    group: str
    handler: Handler


def check_subscription(topic: str, group: str, handler: Handler, closed: bool) -> Subscription:
    """The validated subscription, or the error `Bus.subscribe` documents."""
    if topic not in MESSAGES:
        raise UnknownTopic(topic)
    if not _GROUP.match(group):
        raise BusError(f"bus group {group!r}: 1..64 letters, digits, '-' or '_'")
    if closed:
        raise BusError(f"subscribe({topic!r}, {group!r}) after aclose(): the bus is closed")
    return Subscription(topic, group, handler)


def check_tail(topics: Collection[str], closed: bool) -> frozenset[str]:
    """The validated topics of a `Bus.tail` call, or the error it documents."""
    for topic in topics:
        if topic not in MESSAGES:
            raise UnknownTopic(topic)
    if closed:
        raise BusError("tail() after aclose(): the bus is closed")
    return frozenset(topics)


def backoff_s(attempt: int, first_s: float, max_s: float) -> float:
    """Delay before retry number `attempt` (1-based): first_s, 2*first_s, 4*first_s... capped at max_s."""
    return float(min(max_s, first_s * 2 ** max(0, attempt - 1)))


async def stop_tasks(tasks: set[asyncio.Task[None]], rounds: int = 20, wait_s: float = 0.25) -> int:
    """Cancels `tasks` until they end, re-cancelling those that swallowed a cancel (a handler's
    `except BaseException`, nats-py's fetch); returns how many were still running after `rounds`."""
    for _ in range(rounds):
        if not tasks:
            break
        for t in tasks:
            t.cancel()
        tasks = (await asyncio.wait(tasks, timeout=wait_s))[1]
    return len(tasks)


TopicGroup = tuple[str, str]


@dataclass
class BusStats:
    """Per-item counters (never log lines), read at scrape time by `hub.bus.metrics.BusCollector`.

    Mutated on the event loop only; `snapshot()` copies each dict in one step so a scrape in another
    thread never iterates a dict that is changing.
    """

    published: dict[str, int] = field(default_factory=dict)  # by topic: publish() calls that returned
    duplicates: dict[str, int] = field(default_factory=dict)  # of those, ids the broker already had
    publish_failures: dict[str, int] = field(default_factory=dict)  # by topic: BusUnavailable raised
    decode_errors: dict[str, int] = field(default_factory=dict)  # by topic: unreadable, terminated
    delivered: dict[TopicGroup, int] = field(default_factory=dict)  # handler returned
    handler_failures: dict[TopicGroup, int] = field(default_factory=dict)  # handler raised (each time)
    dead: dict[TopicGroup, int] = field(default_factory=dict)  # given up after the last attempt
    dropped: dict[TopicGroup, int] = field(default_factory=dict)  # queue full (memory bus)
    tail_failures: int = 0  # a tail handler raised (the message is skipped for that tail)

    def snapshot(self) -> BusStats:
        return BusStats(
            dict(self.published),
            dict(self.duplicates),
            dict(self.publish_failures),
            dict(self.decode_errors),
            dict(self.delivered),
            dict(self.handler_failures),
            dict(self.dead),
            dict(self.dropped),
            self.tail_failures,
        )


K = TypeVar("K")


def inc(counter: dict[K, int], key: K, n: int = 1) -> None:
    counter[key] = counter.get(key, 0) + n
