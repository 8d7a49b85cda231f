"""The dispatcher: a durable outbox per receiver, retried with backoff, so the alert path never waits.

    submit(n) ──► intake (bounded) ──► writer ──► notify_outbox (SQL) ◄── submit_in(conn, n)
                                                      │ claim (lease)
                                  per receiver: loader ──► workers ──► Receiver.send
                                                      ▲ sent / retry at / dead
The outbox is the source of truth: a restarted hub resumes every pending row (its own leases at once,
a dead hub's when they expire), a row is marked sent right after the peer's 2xx, and receivers get the
notification id as `Idempotency-Key` for the narrow window where a crash falls between the two.
A receiver is sent one notification per alert group at a time, oldest first, so a resolve never
overtakes the firing notification before it (Alertmanager's per-group pipeline).

Retries: exponential backoff with full jitter (AWS "Exponential Backoff And Jitter"; Alertmanager's
RetryStage), at least the peer's Retry-After, until `max_attempts` or `deadline_s` after the row was
queued. Then, or at once on a permanent error, the row is dead-lettered: state `dead`, the reason and the
scrubbed last error kept in the table, counted by receiver and reason. Outcomes are counters
(`NotifyStats`); a receiver going down and coming back is logged once each.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
import sqlalchemy.exc

from hub.http_client import scrub
from hub.notify.base import Receiver
from hub.notify.config import NotifyConfig, ReceiverConfig
from hub.notify.errors import NotifyError, RetryableNotifyError
from hub.notify.metrics import NotifyStats
from hub.notify.model import Notification
from hub.notify.outbox import Claimed, DeadLetter, Lease, Outbox, Outcome
from hub.notify.registry import build_receiver
from shared.clock import Clock, SystemClock
from shared.logging import UpDown

log = logging.getLogger(__name__)
_T = TypeVar("_T")

_WRITE_BATCH = 500
_DB_RETRY_MAX_S = 5.0
_CLOSE_FLUSH_S = 5.0
_MIN_LEASE_S = 60.0
# Outcomes arriving this close together are recorded in one transaction: at 1,000 sends/s a commit per
# send or two was the outbox's busiest writer, each one a turn at SQLite's write lock that the alert
# path's commits waited for. Real time, not the injected clock: it paces SQL, it schedules nothing.
_RECORD_GATHER_S = 0.02


@dataclass(frozen=True, slots=True)
class Submitted:
    """What `submit_all_in` wrote: per notification whether it was new, the rows leased to this hub, and
    the receivers it wrote rows for without leasing them (their loaders look for them in `committed`)."""

    added: list[bool]
    leased: list[Claimed]
    unleased: frozenset[str] = frozenset()


class _Refused(Exception):
    """The outbox refused a row for its content: retrying the same row cannot help."""


@dataclass
class _Lane:
    """One receiver: its config, the rows it holds the lease of, and the tasks sending them.

    `unleased`: the outbox may hold pending rows of this receiver that nobody leased (written without a
    lease, behind their group's earlier row, or waiting for a retry). Only then can a freed slot or a
    sent row make a row claimable, so only then does a send wake the loader: at 1,000 notifications/s,
    all leased as written, a claim per send was most of the outbox's transactions.
    """

    cfg: ReceiverConfig
    receiver: Receiver
    updown: UpDown
    secrets: list[str]
    queue: asyncio.Queue[Claimed] = field(default_factory=asyncio.Queue)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    held: dict[int, Claimed] = field(default_factory=dict)
    unleased: bool = True  # until a claim has looked

    @property
    def capacity(self) -> int:
        return self.cfg.concurrency * 4

    @property
    def can_claim(self) -> bool:
        """Whether the loader claims now: half its slots free (a claim per freed slot would be a query per
        send), or its workers idle."""
        free = self.capacity - len(self.held)
        return free > 0 and (free >= self.capacity // 2 or self.queue.empty())

    @property
    def lease_ms(self) -> int:
        return int(max(_MIN_LEASE_S, 6 * self.cfg.timeout_s) * 1000)


class Dispatcher:
    """Owns the receivers of a `NotifyConfig` (built from the registry unless given) and their retries.

    Call `submit` from the event loop; `submit_in` from wherever the caller's transaction is.
    """

    def __init__(
        self,
        engine: sa.Engine,
        config: NotifyConfig,
        *,
        receivers: Mapping[str, Receiver] | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        owner: str | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._config = config
        # Which hub holds a lease; a restarted hub with the same owner takes its leases back at once.
        self.owner = owner or socket.gethostname()
        self.outbox = Outbox(engine)
        self.stats = NotifyStats()
        given = dict(receivers or {})
        self._lanes: dict[str, _Lane] = {}
        for cfg in config.receivers:
            rcv = given.pop(cfg.name, None) or build_receiver(
                cfg, clock=self._clock, external_url=config.external_url
            )
            updown = UpDown(log, f"notify receiver {cfg.name!r}", self._clock)
            self._lanes[cfg.name] = _Lane(cfg, rcv, updown, cfg.inline_secrets())
        if given:
            raise ValueError(f"receivers without a config entry: {sorted(given)}")
        self._intake: asyncio.Queue[Notification] = asyncio.Queue(maxsize=config.queue_size)
        self._outbox_updown = UpDown(log, "notification outbox", self._clock)
        self._guard = UpDown(log, "notify worker", self._clock)
        self._tasks: list[asyncio.Task[None]] = []
        # Unbounded, yet bounded in practice: at most one outcome per row a lane holds.
        self._outcomes: asyncio.Queue[tuple[Outcome, _Lane, Callable[[], None]]] = asyncio.Queue()
        self._outcomes_task: asyncio.Task[None] | None = None
        self._db_calls: set[asyncio.Future[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self._closed = False

    # -- the engine's side ------------------------------------------------------------------------

    def submit(self, n: Notification) -> bool:
        """Queues `n` without waiting; it is in the outbox within milliseconds.

        Returns False (and counts it in `dropped`) when the intake is full, the receiver is unknown or
        the dispatcher is closed. For "committed with the alert state or not at all", use `submit_in`.
        """
        reason = self._refusal(n)
        if reason is None:
            try:
                self._intake.put_nowait(n)
                return True
            except asyncio.QueueFull:
                reason = "queue_full"
        self.stats.dropped(n.receiver, reason)
        return False

    def submit_in(self, conn: sa.Connection, n: Notification) -> bool:
        """Writes `n` to the outbox in the caller's transaction (blocking: call it off the event loop).

        Workers see the row once the caller commits, within `poll_interval_s` (at once when a lane is
        woken after the commit). Returns False when (receiver, id) is already queued.

        Raises:
            ValueError: the receiver is unknown or the dispatcher is closed.
            sqlalchemy.exc.SQLAlchemyError: the write failed; the caller's transaction decides.
        """
        return self._write_in(conn, [n], None).added[0]

    def submit_all_in(self, conn: sa.Connection, ns: Sequence[Notification]) -> Submitted:
        """`submit_in` for many notifications in one statement. Rows its receivers have room for are
        leased to this hub as they are written: hand the result to `committed` once the caller's
        transaction has committed, and they are sent from memory at once (otherwise their lease has to
        run out before they are sent).

        Raises:
            ValueError: a receiver is unknown or the dispatcher is closed (nothing is written).
            sqlalchemy.exc.SQLAlchemyError: the write failed; the caller's transaction decides.
        """
        return self._write_in(conn, ns, self._lease(self._clock.now_ms()))

    def _write_in(self, conn: sa.Connection, ns: Sequence[Notification], lease: Lease | None) -> Submitted:
        for n in ns:
            reason = self._refusal(n)
            if reason is not None:
                self.stats.dropped(n.receiver, reason)
                raise ValueError(f"notification {n.id!r} refused: {reason}")
        added, leased = self.outbox.insert_leasing(conn, ns, self._clock.now_ms(), lease)
        mine = {(c.receiver, c.id) for c in leased}
        unleased: set[str] = set()
        for n, new in zip(ns, added, strict=True):
            if not new:
                self.stats.duplicate(n.receiver)
            elif (n.receiver, n.id) not in mine:
                unleased.add(n.receiver)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            for receiver in unleased:
                loop.call_soon_threadsafe(self._wake_loader, self._lanes[receiver])
        return Submitted(added, leased, frozenset(unleased))

    def _lease(self, now_ms: int) -> Lease | None:
        """What this hub can take on at once: each running lane's free slots (read from the caller's
        thread: a slot taken meanwhile by the loader lets a lane hold a few rows over its capacity)."""
        if not self._started or self._closed:
            return None
        room = {name: lane.capacity - len(lane.held) for name, lane in self._lanes.items()}
        until = {name: now_ms + lane.lease_ms for name, lane in self._lanes.items()}
        return Lease(self.owner, uuid.uuid4().hex, room, until)

    def committed(self, submitted: Submitted) -> None:
        """Call from the event loop right after the transaction `submit_all_in` wrote in has committed:
        the rows it leased go to their lanes' workers now, and the lanes look for the others at once,
        not at the next poll (a wake from `submit_all_in` itself can come before the commit, when the
        rows are not visible yet)."""
        for c in submitted.leased:
            lane = self._lanes.get(c.receiver)
            if lane is not None and not self._closed:
                lane.held[c.seq] = c
                lane.queue.put_nowait(c)
        for receiver in submitted.unleased:
            lane = self._lanes.get(receiver)
            if lane is not None:
                self._wake_loader(lane)

    @staticmethod
    def _wake_loader(lane: _Lane) -> None:
        """The lane's outbox may hold a row nobody leased: its loader claims now, not at the next poll."""
        lane.unleased = True
        lane.wake.set()

    def _refusal(self, n: Notification) -> str | None:
        if self._closed:
            return "closed"
        if n.receiver not in self._lanes:
            return "unknown_receiver"
        return None

    @property
    def queued(self) -> int:
        """Notifications submitted and not yet written to the outbox."""
        return self._intake.qsize()

    async def dead_letters(self, receiver: str | None = None, limit: int = 100) -> list[DeadLetter]:
        return await asyncio.to_thread(self.outbox.dead_letters, receiver, limit)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Starts the receivers, takes back this owner's leases and resumes every pending row.

        Raises:
            ConfigError: a receiver's secret file cannot be read.
        """
        if self._started or self._closed:
            return
        self._loop = asyncio.get_running_loop()
        for lane in self._lanes.values():
            await lane.receiver.start()
        try:
            await asyncio.to_thread(self.outbox.release_owner, self.owner, self._clock.now_ms())
        except sa.exc.SQLAlchemyError as exc:  # the loaders retry; start-up must not fail on it
            self.stats.outbox_error()
            self._outbox_updown.down(f"{type(exc).__name__}: {exc}")
        self._started = True
        self._tasks.append(asyncio.create_task(self._write_loop(), name="notify-writer"))
        self._outcomes_task = asyncio.create_task(self._record_loop(), name="notify-outcomes")
        for name, lane in self._lanes.items():
            self._tasks.append(asyncio.create_task(self._load_loop(lane), name=f"notify-load-{name}"))
            for i in range(lane.cfg.concurrency):
                self._tasks.append(asyncio.create_task(self._work_loop(lane), name=f"notify-{name}-{i}"))

    async def aclose(self) -> None:
        """Flushes the intake to the outbox, stops sending, hands leased rows back, closes receivers.

        A send cut short here is re-sent after restart with the same Idempotency-Key. Safe twice and
        without start.
        """
        if self._closed:
            return
        self._closed = True
        if self._started:
            try:
                await asyncio.wait_for(self._intake.join(), _CLOSE_FLUSH_S)
            except TimeoutError:
                log.warning(
                    "notify: %d submitted notifications not written at shutdown", self._intake.qsize()
                )
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._outcomes_task is not None:  # outcomes of finished attempts: let them land (bounded)
            try:
                await asyncio.wait_for(self._outcomes.join(), _CLOSE_FLUSH_S)
            except TimeoutError:
                log.warning("notify: %d send outcomes not recorded at shutdown", self._outcomes.qsize())
            self._outcomes_task.cancel()
            await asyncio.gather(self._outcomes_task, return_exceptions=True)
        if self._db_calls:
            await asyncio.wait(set(self._db_calls), timeout=_CLOSE_FLUSH_S)
        if self._started:
            # Every lease this owner holds: rows queued or cut off mid-send, and claims that landed
            # after their loader was cancelled.
            try:
                await asyncio.to_thread(self.outbox.release_owner, self.owner, self._clock.now_ms())
            except sa.exc.SQLAlchemyError as exc:  # the leases expire by themselves
                log.warning("notify: could not hand back leased rows: %s", type(exc).__name__)
        for lane in self._lanes.values():
            lane.held.clear()
            await lane.receiver.aclose()

    # -- writing the intake ------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._intake.get()]
            while len(batch) < _WRITE_BATCH and not self._intake.empty():
                batch.append(self._intake.get_nowait())
            try:
                new = await self._write(batch)
            finally:
                for _ in batch:
                    self._intake.task_done()
            for n, is_new in zip(batch, new, strict=True):
                if is_new is False:
                    self.stats.duplicate(n.receiver)
                self._lanes[n.receiver].wake.set()

    async def _write(self, batch: list[Notification]) -> list[bool | None]:
        """Inserts a batch; if the database refuses it for its content, row by row, dropping (and
        counting) only the rows it refuses, so one bad notification never blocks the intake."""
        try:
            return list(await self._db(self.outbox.insert_many, batch, self._clock.now_ms(), refused=True))
        except _Refused:
            pass
        out: list[bool | None] = []
        for n in batch:
            try:
                (is_new,) = await self._db(self.outbox.insert_many, [n], self._clock.now_ms(), refused=True)
                out.append(is_new)
            except _Refused as exc:
                self.stats.dropped(n.receiver, "invalid")
                self._guard.down(f"notification {n.id[:80]!r} refused by the outbox: {exc}")
                out.append(None)
        return out

    async def _db(self, fn: Callable[..., _T], *args: object, refused: bool = False) -> _T:
        """Runs a blocking outbox call in a thread until it succeeds (the outbox is the source of truth).

        With `refused`, an error about the data rather than the database (a value out of range, a
        violated constraint) raises `_Refused` instead of being retried for ever.
        """
        delay = 0.05
        while True:
            # Shielded and tracked: cancelling the caller does not stop the thread, so aclose waits for
            # it (a claim committing after shutdown would otherwise hold its rows until the lease ends).
            call = asyncio.ensure_future(asyncio.to_thread(fn, *args))
            self._db_calls.add(call)
            call.add_done_callback(self._db_calls.discard)
            try:
                result = await asyncio.shield(call)
            except (sa.exc.DataError, sa.exc.IntegrityError, OverflowError) as exc:
                if refused:
                    raise _Refused(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
                error: Exception = exc
            except sa.exc.SQLAlchemyError as exc:
                error = exc
            else:
                self._outbox_updown.up()
                return result
            self.stats.outbox_error()
            self._outbox_updown.down(f"{type(error).__name__}: {error}")
            await self._clock.sleep(delay)
            delay = min(_DB_RETRY_MAX_S, delay * 2)

    async def _record_loop(self) -> None:
        """Writes attempt outcomes in batches (one commit for many sends), then counts them.

        Outcomes live in a queue of their own, so cancelling a worker never loses one; a counter moves
        once the row says so (stats and table agree). A retry or a dead letter wakes the lane's loader
        (the retry falls due later; the group's next notification may be sendable now), and so does a
        row sent while the lane's outbox holds rows nobody leased, before the next poll.
        """
        while True:
            batch = [await self._outcomes.get()]
            await asyncio.sleep(_RECORD_GATHER_S)
            while len(batch) < _WRITE_BATCH and not self._outcomes.empty():
                batch.append(self._outcomes.get_nowait())
            await self._db(self.outbox.record, [o for o, _, _ in batch])
            for outcome, lane, count in batch:
                count()
                if outcome.state != "sent":
                    self._wake_loader(lane)
                elif lane.unleased and lane.can_claim:
                    lane.wake.set()
                self._outcomes.task_done()

    def _outcome(self, lane: _Lane, outcome: Outcome, count: Callable[[], None]) -> None:
        self._outcomes.put_nowait((outcome, lane, count))

    # -- per receiver ------------------------------------------------------------------------------

    async def _load_loop(self, lane: _Lane) -> None:
        while True:
            try:
                await self._load(lane)
            except Exception as exc:  # a bug must not stop the receiver for good: log once, poll again
                self._guard.down(f"{type(exc).__name__}: {exc}", logging.ERROR, exc_info=True)
                await self._clock.sleep(self._config.poll_interval_s)

    async def _load(self, lane: _Lane) -> None:
        poll_s = self._config.poll_interval_s
        while True:
            lane.wake.clear()
            free = lane.capacity - len(lane.held)
            wait_s = poll_s
            if lane.can_claim:
                now, token = self._clock.now_ms(), uuid.uuid4().hex
                claims = await self._db(
                    self.outbox.claim, lane.cfg.name, now, free, lane.lease_ms, self.owner, token
                )
                lane.unleased = claims.unleased
                for c in claims.rows:
                    lane.held[c.seq] = c
                    lane.queue.put_nowait(c)
                due = claims.next_due_ms
                if due is not None and due <= now:
                    continue  # more may be due; the workers wake us when they free a slot
                now = self._clock.now_ms()
                if due is not None:
                    wait_s = min(poll_s, max(0, due - now) / 1000)
            await self._wait(lane.wake, wait_s)

    async def _wait(self, event: asyncio.Event, seconds: float) -> None:
        waiter = asyncio.create_task(event.wait())
        sleeper = asyncio.create_task(self._clock.sleep(seconds))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()

    async def _work_loop(self, lane: _Lane) -> None:
        while True:
            c = await lane.queue.get()
            try:
                await self._attempt(lane, c)
                self._guard.up()
            except Exception as exc:  # a bug must not end the worker; the row's lease expires, it is retried
                self._guard.down(f"{type(exc).__name__}: {exc}", logging.ERROR, exc_info=True)
            finally:
                lane.held.pop(c.seq, None)
                if lane.unleased and lane.can_claim:  # the freed slots can take rows nobody leased
                    lane.wake.set()

    async def _attempt(self, lane: _Lane, c: Claimed) -> None:
        name = lane.cfg.name
        attempts = c.attempts + 1
        n = c.notification
        if n is None:
            try:
                n = Notification.from_json(c.payload)
            except ValueError as exc:
                return self._dead(lane, c, attempts, "bad_payload", str(exc))
        deadline_ms = c.enqueued_ms + int(lane.cfg.deadline_s * 1000)
        # The deadline stops scheduling retries; an attempt once due always runs, so a hub back from a
        # long outage still sends what is pending (a resolve above all) once before giving up on it.
        # The guard only bounds a receiver that ignores its own timeout.
        guard_s = max((deadline_ms - self._clock.now_ms()) / 1000, 2 * lane.cfg.timeout_s + 1)
        err: NotifyError | None = None
        try:
            async with asyncio.timeout(guard_s):
                await lane.receiver.send(n)
        except TimeoutError:
            err = RetryableNotifyError(name, f"{name}: attempt still running after {guard_s:.0f}s")
        except NotifyError as exc:
            err = exc
        except Exception as exc:  # a receiver bug: retried like an outage, never a crashed worker
            err = RetryableNotifyError(name, f"{name}: unexpected {type(exc).__name__}: {exc}")
        now = self._clock.now_ms()
        if err is None:
            lane.updown.up()
            latency_s = (now - n.created_ms) / 1000
            self._outcome(lane, Outcome(c, "sent", attempts, now), lambda: self.stats.sent(name, latency_s))
            return None
        text = scrub(str(err), lane.secrets)
        lane.updown.down(text)
        if err.permanent:
            return self._dead(lane, c, attempts, "permanent", text)
        if lane.cfg.max_attempts is not None and attempts >= lane.cfg.max_attempts:
            return self._dead(lane, c, attempts, "max_attempts", text)
        cap = min(lane.cfg.backoff_cap_s, lane.cfg.backoff_base_s * 2 ** min(attempts - 1, 60))
        delay_s = self._rng.uniform(0, cap)
        retry_after = getattr(err, "retry_after_s", None)
        if retry_after is not None:
            delay_s = max(delay_s, retry_after)
        next_ms = now + int(delay_s * 1000)
        if next_ms > deadline_ms:
            return self._dead(lane, c, attempts, "deadline", text)
        retry = Outcome(c, "pending", attempts, now, next_ms=next_ms, error=text)
        self._outcome(lane, retry, lambda: self.stats.retried(name))
        return None

    def _dead(self, lane: _Lane, c: Claimed, attempts: int, reason: str, text: str) -> None:
        dead = Outcome(
            c, "dead", attempts, self._clock.now_ms(), reason=reason, error=scrub(text, lane.secrets)
        )
        self._outcome(lane, dead, lambda: self.stats.dead_lettered(lane.cfg.name, reason))
