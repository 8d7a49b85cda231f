"""WebSocket streams' fan-out: the bus tail in, one bounded queue of frames per client out.

Every hub process serving the API tails the bus itself (`Bus.tail`), so a client on any replica sees
every alert, and numbers each event with the tail's sequence: on NATS the JetStream stream sequence,
the same in every process, so a client can resume on another replica with `last_event_id`.

Events are flushed at most once per `tick_s`: all events of a tick are encoded once and spliced into
one frame per distinct subscription, so a storm costs a frame per client per tick, not one per event.
A flush appends the frame to each client's queue and never waits on a socket; a client whose queue is
full is disconnected with a reason (close 4008), so one slow reader never holds back the others.
Flushed events stay in a bounded history (`history` events, `history_s` seconds) for resumes; a
client asking for more than the history holds gets a `reset` telling it to reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hub.bus.base import Bus
from hub.bus.messages import AlertsChanged, Message
from hub.notify.ws_config import WsConfig
from hub.notify.ws_protocol import (
    STREAM_TOPIC,
    CloseCode,
    Event,
    StreamRequestError,
    Subscription,
    events_frame,
    events_of,
    reply,
)
from shared.clock import Clock, SystemClock
from shared.logging import UpDown

log = logging.getLogger(__name__)

# Replayed history goes out in frames of at most this many events.
REPLAY_CHUNK = 1000
# Seconds, for the tick's wait and its flush (both observed once per tick, never per client).
TICK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

# Reads the current JSON of alerts by id (blocking; run in a thread once or twice per tick).
DescribeAlerts = Callable[[Sequence[str]], dict[str, dict[str, Any]]]
# A read of alert details started during a tick's wait, and how many of the pending events it covers.
_Prefetch = tuple["asyncio.Task[dict[str, dict[str, Any]]]", int]


class Client:
    """One subscribed stream: its subscription and its bounded queue of frames.

    The hub appends (`offer`), the connection's sender takes (`next`); closing is a value the sender
    reads, so the hub never touches the socket.
    """

    def __init__(self, sub: Subscription, limit: int) -> None:
        self.sub = sub
        # Events up to this id were seen already (a resume on a replica that is behind the last one).
        self.after = sub.last_event_id or 0
        self.closed: tuple[CloseCode, str] | None = None
        self._limit = limit
        self._frames: deque[str] = deque()
        self._wake = asyncio.Event()

    def offer(self, frame: str) -> bool:
        """Queues a frame; a client `limit` frames behind is closed instead (returns False)."""
        if self.closed is not None:
            return False
        if len(self._frames) >= self._limit:
            self.close(CloseCode.TOO_SLOW, f"too slow: {self._limit} frames queued and not taken")
            return False
        self._frames.append(frame)
        self._wake.set()
        return True

    def push(self, frame: str) -> None:
        """Queues a frame past the limit: the subscribe answer and the replayed history."""
        self._frames.append(frame)
        self._wake.set()

    def close(self, code: CloseCode, reason: str) -> None:
        """Ends the stream (the first reason wins); the sender stops and closes the socket with it."""
        if self.closed is None:
            self.closed = (code, reason)
        self._wake.set()

    async def next(self) -> str | None:
        """The next frame to send, or None once the client is closed (what is queued is dropped)."""
        while self.closed is None:
            if self._frames:
                return self._frames.popleft()
            self._wake.clear()
            await self._wake.wait()
        return None

    @property
    def queued(self) -> int:
        return len(self._frames)


class WsHub:
    """The streams of one hub process: tails the bus, keeps the history, fans out to clients."""

    name = "websockets"

    def __init__(
        self,
        config: WsConfig,
        bus: Bus,
        registry: CollectorRegistry,
        clock: Clock | None = None,
        describe_alerts: DescribeAlerts | None = None,
    ) -> None:
        self.config = config
        self._bus = bus
        self._clock = clock or SystemClock()
        self._describe = describe_alerts
        # The alert reads' own thread: on the default pool they queued behind the alert engine's and the
        # dispatcher's database work, which grows with the very onsets the streams are waiting to show.
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ws-alerts")
        self._clients: set[Client] = set()
        self._pending: list[tuple[int, Message]] = []
        self._oldest_pending = 0.0  # when the first event of `_pending` arrived (monotonic)
        self._arrived = asyncio.Event()
        self._history: deque[tuple[float, Event]] = deque()
        # Every event with an id above `_floor` is in the history (None: nothing flushed yet).
        self._floor: int | None = None
        self._last_id: int | None = None
        self._last_flush = float("-inf")
        self._dropped_to: int | None = None  # the newest event dropped since the last flush
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._alerts_db = UpDown(log, "websocket alert details (state database)")
        self._fell_behind = UpDown(log, "websocket fan-out")
        # Failures serving a connection (the routes report them): logged when they start and end.
        self.trouble = UpDown(log, "websocket streams")
        self.events = Counter(
            "outpost_hub_ws_events",
            "Events that reached this process's streams",
            ["topic"],
            registry=registry,
        )
        self.frames = Counter("outpost_hub_ws_frames", "Frames queued to stream clients", registry=registry)
        self.deliveries = Counter(
            "outpost_hub_ws_deliveries", "Events queued to stream clients (one per client)", registry=registry
        )
        self.resumes = Counter(
            "outpost_hub_ws_resumes",
            "Subscriptions with last_event_id, by outcome",
            ["outcome"],
            registry=registry,
        )
        self.disconnects = Counter(
            "outpost_hub_ws_disconnects", "Streams closed, by reason", ["reason"], registry=registry
        )
        self.dropped = Counter(
            "outpost_hub_ws_dropped",
            "Events dropped while a tick was late (clients got a reset)",
            registry=registry,
        )
        self.flush_failures = Counter(
            "outpost_hub_ws_flush_failures", "Ticks whose events could not be streamed", registry=registry
        )
        # The two hub-side parts of an event's way to the clients (bench/ws.py reads them): how long a
        # tick's oldest event waited for its flush, and what reading, building and queuing its frames took.
        self.tick_wait = Histogram(
            "outpost_hub_ws_tick_wait_seconds",
            "Time the oldest event of a tick waited between reaching the streams and its flush",
            buckets=TICK_BUCKETS,
            registry=registry,
        )
        self.flush_seconds = Histogram(
            "outpost_hub_ws_flush_seconds",
            "Time one tick took to read its alerts' details, build its frames and queue them to every client",
            buckets=TICK_BUCKETS,
            registry=registry,
        )
        clients = Gauge("outpost_hub_ws_clients", "Stream clients connected now", registry=registry)
        clients.set_function(lambda: len(self._clients))

    async def start(self) -> None:
        # A process starting late replays the stream back to the history's age, like its older peers hold.
        self._bus.tail(STREAM_TOPIC.keys(), self._arrive, replay_s=self.config.history_s)
        self._task = asyncio.create_task(self._loop(), name="ws-fan-out")

    def join(self, sub: Subscription) -> Client:
        """Registers a client: queues the `subscribed` answer, then what it missed since
        `sub.last_event_id` (or a `reset`), then every flush from now on. Runs without yielding, so
        nothing flushed meanwhile is missed or sent twice.

        Raises:
            StreamRequestError: (1013) this process serves `max_clients` already, or is stopping.
        """
        if self._closed or len(self._clients) >= self.config.max_clients:
            raise StreamRequestError("this hub process serves all the streams it can", CloseCode.TRY_LATER)
        client = Client(sub, self.config.client_queue)
        client.push(reply("subscribed", topics=sorted(sub.topics), last_event_id=self._last_id))
        last = sub.last_event_id
        if last is not None:
            if self._floor is not None and last >= self._floor:
                missed = self._since(last, sub)
                for i in range(0, len(missed), REPLAY_CHUNK):
                    client.push(events_frame(missed[i : i + REPLAY_CHUNK]))
                self.deliveries.inc(len(missed))
                self.resumes.labels("replayed").inc()
            else:
                why = (
                    f"history here starts after event {self._floor}"
                    if self._floor is not None
                    else "no history"
                )
                client.push(reply("reset", reason=f"{why}: reload", last_event_id=self._last_id))
                self.resumes.labels("reset").inc()
        self._clients.add(client)
        return client

    def leave(self, client: Client, reason: str) -> None:
        """Unregisters a client and counts why its stream ended."""
        self._clients.discard(client)
        self.disconnects.labels(reason).inc()

    def _since(self, last: int, sub: Subscription) -> list[Event]:
        """History events after `last` that `sub` wants, walking back from the newest."""
        out: list[Event] = []
        for _, e in reversed(self._history):
            if e.id <= last:
                break
            if sub.wants(e):
                out.append(e)
        out.reverse()
        return out

    def _arrive(self, seq: int, msg: Message) -> None:
        if self._closed:
            return
        if len(self._pending) >= self.config.history:  # the fan-out is stalled: drop, then reset everyone
            self._dropped_to = seq
            self.dropped.inc()
            return
        if not self._pending:
            self._oldest_pending = self._clock.monotonic()
        self._pending.append((seq, msg))
        self._arrived.set()

    async def _loop(self) -> None:
        while True:
            await self._arrived.wait()
            # The first event after a quiet spell goes out at once; a burst waits for the tick.
            wait_s = self._last_flush + self.config.tick_s - self._clock.monotonic()
            early: _Prefetch | None = None
            if wait_s > 0:
                early = self._prefetch()
                try:
                    await self._clock.sleep(wait_s)
                except asyncio.CancelledError:
                    if early is not None:
                        early[0].cancel()
                    raise
            self._arrived.clear()
            batch, self._pending = self._pending, []
            self._last_flush = self._clock.monotonic()
            if batch:
                self.tick_wait.observe(self._last_flush - self._oldest_pending)
            try:
                await self._flush(batch, early)
            except Exception:  # a bug in one tick must not end the streams
                self.flush_failures.inc()
                log.exception("websocket streams: flushing %d events failed", len(batch))
            if batch:
                self.flush_seconds.observe(self._clock.monotonic() - self._last_flush)
            if self._dropped_to is not None:
                self._lost(self._dropped_to)
                self._dropped_to = None
            else:
                self._fell_behind.up()

    def _prefetch(self) -> _Prefetch | None:
        """Starts reading the details of the alerts waiting for the tick now, so that read overlaps
        the tick's wait instead of following it (under ingest load the read took up to 0.5 s,
        bench/ws.py); returns the read and how many pending events it covers."""
        ids = _alert_ids(self._pending)
        if not ids or self._describe is None:
            return None
        return asyncio.create_task(self._alert_details(ids)), len(self._pending)

    async def _flush(self, batch: list[tuple[int, Message]], early: _Prefetch | None = None) -> None:
        read, covered = early if early is not None else (None, 0)
        # An alert changed again after the early read started is read again: its details are newer.
        late = _alert_ids(batch[covered:])
        if self._last_id is not None:  # a tail restarted from an older position: skip what went out
            batch = [(seq, m) for seq, m in batch if seq > self._last_id]
        if not batch:
            if read is not None:
                read.cancel()
            return
        alerts = await read if read is not None else {}
        alerts.update(await self._alert_details(late))
        events = [e for seq, m in batch for e in events_of(seq, m, alerts)]
        for e in events:
            self.events.labels(e.topic).inc()
        self._remember(events)
        self._fan_out(events)

    async def _alert_details(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The alerts' current JSON; without the database, the events go out without it."""
        if not ids or self._describe is None:
            return {}
        try:
            found = await asyncio.get_running_loop().run_in_executor(self._reader, self._describe, ids)
        except Exception as exc:  # the database away: stream what the bus said rather than nothing
            self._alerts_db.down(f"{type(exc).__name__}: {exc}; streaming alerts without their labels")
            return {}
        self._alerts_db.up()
        return found

    def _remember(self, events: list[Event]) -> None:
        now = self._clock.monotonic()
        if self._floor is None:
            self._floor = events[0].id - 1
        self._history.extend((now, e) for e in events)
        self._last_id = events[-1].id
        oldest = now - self.config.history_s
        while self._history and (len(self._history) > self.config.history or self._history[0][0] < oldest):
            self._floor = self._history.popleft()[1].id

    def _lost(self, upto: int) -> None:
        """Events up to `upto` were dropped: no resume may cross them, and every client is told to reload."""
        self._history.clear()
        self._floor = self._last_id = max(upto, self._last_id or upto)
        frame = reply("reset", reason="the hub fell behind and dropped events: reload", last_event_id=upto)
        for client in list(self._clients):
            client.offer(frame)
        self._fell_behind.down(f"more than {self.config.history} events waited for one tick; dropped some")

    def _fan_out(self, events: list[Event]) -> None:
        """One frame per distinct subscription, shared by its clients; per client only for a resume
        that is ahead of this process."""
        shared: dict[tuple[frozenset[str], object], tuple[str, int] | None] = {}
        first, last = events[0].id, events[-1].id
        frames = deliveries = 0
        for client in list(self._clients):
            sub = client.sub
            if client.after >= last:
                continue
            if client.after >= first:
                mine = [e for e in events if e.id > client.after and sub.wants(e)]
                out = (events_frame(mine), len(mine)) if mine else None
            else:
                key = (sub.topics, sub.filter)
                if key not in shared:
                    sel = [e for e in events if sub.wants(e)]
                    shared[key] = (events_frame(sel), len(sel)) if sel else None
                out = shared[key]
            if out is not None and client.offer(out[0]):
                frames += 1
                deliveries += out[1]
        self.frames.inc(frames)
        self.deliveries.inc(deliveries)

    async def aclose(self) -> None:
        """Ends every stream with 1001 (clients reconnect elsewhere with their last_event_id)."""
        self._closed = True
        for client in list(self._clients):
            client.close(CloseCode.GOING_AWAY, "hub stopping: reconnect with last_event_id")
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._reader.shutdown(wait=False, cancel_futures=True)


def _alert_ids(batch: Sequence[tuple[int, Message]]) -> list[str]:
    """The alerts whose current JSON the events of `batch` carry."""
    return [a for _, m in batch if isinstance(m, AlertsChanged) for a in m.alert_ids]
