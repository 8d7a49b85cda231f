"""Moves envelopes from the outbox to the hub: retries with backoff + jitter, honours retry_after.

An envelope leaves the outbox only when the hub acknowledged it (stored, or already stored). A
permanent rejection drops it and counts it; it never blocks the envelopes behind it. A worker never
ends on its own: an unexpected failure anywhere in its loop (a bug, the outbox's disk) is handed to the
caller's `guard` (counted, logged once), the envelope it held goes back to the outbox, and the loop
goes on after a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

from agent.outbox.outbox import Outbox, OutboxItem
from agent.transport.base import DeliveryRejected, Transport
from shared.clock import Clock
from shared.codec import PushResult
from shared.errors import TransientError
from shared.logging import UpDown

log = logging.getLogger(__name__)

Guard = Callable[[str], AbstractContextManager[None]]


@contextlib.contextmanager
def _log_failure(stage: str) -> Iterator[None]:
    """The guard when the caller brings none: log the traceback and carry on."""
    try:
        yield
    except Exception:
        log.exception("%s: unexpected failure, retrying", stage)


class Backoff:
    """Exponential backoff with full jitter (AWS's variant), so reconnecting agents do not stampede."""

    def __init__(self, base_s: float = 0.2, cap_s: float = 30.0, rng: random.Random | None = None) -> None:
        self._base, self._cap = base_s, cap_s
        self._attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self, retry_after_s: float = 0.0) -> float:
        """The wait before the next try; a server hint sets the floor, with up to 50 % jitter on top."""
        self._attempt += 1
        if retry_after_s > 0:
            return retry_after_s * self._rng.uniform(1.0, 1.5)
        return self._rng.uniform(0, min(self._cap, self._base * 2**self._attempt))

    def reset(self) -> None:
        self._attempt = 0


class Deliverer:
    """`workers` concurrent senders draining one outbox."""

    def __init__(
        self,
        outbox: Outbox,
        transport: Transport,
        clock: Clock,
        *,
        workers: int = 2,
        on_result: Callable[[OutboxItem, PushResult | None, str], None] | None = None,
        guard: Guard | None = None,
    ) -> None:
        """
        Args:
            guard: wraps each turn of a worker's loop as `with guard("deliver")`; it must swallow (count,
                log) an Exception. The agent passes its stage guard.
        """
        self._outbox = outbox
        self._transport = transport
        self._clock = clock
        self._workers = workers
        self._on_result = on_result or (lambda _i, _r, _o: None)
        self._guard = guard or _log_failure
        self._tasks: list[asyncio.Task[None]] = []
        self._hub = UpDown(log, "hub", clock)
        self.inflight = 0

    @property
    def connected(self) -> bool:
        """False from the first failed send until the next successful one."""
        return self._hub.is_up

    def swap_transport(self, transport: Transport) -> Transport:
        """Sends from now on go through `transport` (e.g. with a renewed certificate); returns the old one.

        Sends still in flight on the old transport fail when it is closed and are retried from the spool.
        """
        old, self._transport = self._transport, transport
        return old

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The worker tasks (for the agent's supervision of stages that end)."""
        return list(self._tasks)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name=f"deliver-{i}") for i in range(self._workers)]

    async def _run(self) -> None:
        backoff = Backoff()
        while True:
            failed = True
            with self._guard("deliver"):
                await self._deliver_one(backoff)
                failed = False
            if failed:
                await self._clock.sleep(backoff.next_delay())

    async def _deliver_one(self, backoff: Backoff) -> None:
        """Takes one envelope and settles it (ack or nack); on an unexpected failure it goes back."""
        item = await self._outbox.get()
        settled = False
        try:
            self.inflight += 1
            try:
                result = await self._transport.send(item.envelope)
            except TransientError as exc:
                settled = True
                self._outbox.nack(item)
                self._set_connected(False, str(exc))
                self._on_result(item, None, "retry")
                await self._clock.sleep(backoff.next_delay(exc.retry_after_s))
                return
            except DeliveryRejected as exc:
                settled = True
                self._outbox.ack(item)
                self._on_result(item, None, "rejected")
                log.error("hub rejected batch %s for good, dropped: %s", item.batch_id, exc)
                return
            except Exception as exc:  # an unexpected failure (bad TLS files, a garbled answer): keep, retry
                settled = True
                self._outbox.nack(item)
                self._set_connected(False, f"{type(exc).__name__}: {exc}")
                self._on_result(item, None, "retry")
                await self._clock.sleep(backoff.next_delay())
                return
            finally:
                self.inflight -= 1
            backoff.reset()
            settled = True
            self._outbox.ack(item)
            self._set_connected(True, "")
            self._on_result(item, result, "duplicate" if result.duplicate else "sent")
        except Exception:
            if not settled:
                self._outbox.nack(item)  # re-sent later: the hub ignores a duplicate, nothing is lost
            raise

    def _set_connected(self, up: bool, reason: str) -> None:
        if up:
            self._hub.up()
        else:
            self._hub.down(f"keeping batches for retry: {reason}")

    async def drain(self, timeout_s: float) -> bool:
        """Waits until the outbox is empty and nothing is in flight; True when it got there in time."""
        deadline = self._clock.monotonic() + timeout_s
        while self._outbox.pending() or self.inflight:
            if self._clock.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def aclose(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
