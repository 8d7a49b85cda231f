"""The alerts component: bus messages → rules → the alert core → one transaction (state + notify outbox).

One instance owns alert state at a time (with several hub processes it runs in the worker that holds the
alerts job lock). Every mutation (a message, a tick, an operator action) is made under one asyncio lock
into a step, written with its notifications in one transaction, and then announced on the bus as
`AlertsChanged` / `IncidentChanged`. Making and writing overlap: the next step is made on the loop while
the SQL of the one before runs in a thread (one step written at a time, in order). If a write fails the
in-memory state is reloaded from the database, the step made on top of it is dropped too, and the error
goes back to the inputs (the bus redelivers the message): nothing is half-applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

import sqlalchemy as sa

from hub.alerts.config import AlertsConfig
from hub.alerts.core import AlertCore, Step
from hub.alerts.engine import Change
from hub.alerts.incidents import Incident, TimelineEntry
from hub.alerts.model import Alert, Signal
from hub.alerts.repository import AlertRepository
from hub.alerts.rules import RULES, Rule
from hub.alerts.rules.agent_offline import OfflineTracker
from hub.alerts.windows import Window, WindowKind
from hub.alerts.written import StepRows, StepWriter
from hub.bus.base import Bus
from hub.bus.errors import BusError, BusUnavailable
from hub.bus.messages import AgentSeen, AlertsChanged, IncidentChanged, Message
from hub.notify.dispatcher import Dispatcher, Submitted
from hub.notify.model import Notification
from shared.clock import Clock, SystemClock
from shared.logging import UpDown

log = logging.getLogger(__name__)

GROUP = "alerts"
# Longest the loop sleeps with nothing due: bounds how late a window boundary or resolve timeout is seen.
MAX_IDLE_S = 1.0
# While a step is being written, the next one is made no sooner than this after the one before started:
# each step costs ~1 ms of CPU whatever its size (a transaction of several statements, a thread hop, its
# announcements), and at 1,000 events/s steps of three events each spent more CPU than the events did.
# A step after an idle spell (nothing being written) starts at once.
STEP_INTERVAL_S = 0.01
_SEEN_IDS = 100_000
_PUBLISH_TRIES = 3


class StepDiscarded(RuntimeError):
    """Raised to the inputs of a step made while the step before it was being written, when that write
    failed: the state it was made on was reloaded from the database, so it is dropped and retried."""


class NotFound(LookupError):
    """Raised by operator actions on an alert, incident or window id that does not exist (or is closed)."""


class AlertService:
    """The hub's alerting; `start` loads state and subscribes, `aclose` stops the loop."""

    def __init__(
        self,
        config: AlertsConfig,
        db: sa.Engine,
        bus: Bus,
        dispatcher: Dispatcher | None,
        clock: Clock | None = None,
        external_url: str = "",
        rules: dict[str, Rule] = RULES,
    ) -> None:
        """`rules` maps topics to rules: `RULES`, or `CONFIRMED_RULES` when edge onsets are confirmed."""
        self.config = config
        self._rules = rules
        self._topics = (*rules, AgentSeen.TOPIC)
        self.clock = clock or SystemClock()
        self.repo = AlertRepository(db)
        self._rows = StepWriter()
        self._db = db
        self._bus = bus
        self._dispatcher = dispatcher
        self._external_url = external_url
        self.core = AlertCore(config, external_url)
        self.offline = OfflineTracker(config.offline)
        self._lock = asyncio.Lock()
        # The step being written: the next one is made meanwhile, and started once this one is durable.
        self._writing: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._pending: list[tuple[list[Signal], asyncio.Future[Step]]] = []
        self._task: asyncio.Task[None] | None = None
        self._step_started = 0.0  # time.monotonic(): real time, it paces CPU work and schedules nothing
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._db_health = UpDown(log, "alert state database", self.clock)
        self._bus_health = UpDown(log, "alert announcements", self.clock)
        self.failed_writes = 0
        self.unannounced = 0  # changes written but not announced on the bus
        self.duplicate_messages = 0
        self._subscribed = False

    async def start(self, subscribe: bool = True) -> None:
        """Loads state from the database and subscribes; also after `aclose` (a standby taking over)."""
        await self._reload()
        if subscribe:
            for topic in self._topics:
                self._bus.subscribe(topic, GROUP, self.handle)
            self._subscribed = True
        self._task = asyncio.create_task(self._loop(), name="alerts")

    async def aclose(self) -> None:
        """Unsubscribes (the bus hands what this process did not handle to the next leader), stops the
        loop; safe without start and safe twice."""
        if self._subscribed:
            self._subscribed = False
            for topic in self._topics:
                await self._bus.unsubscribe(topic, GROUP, self.handle)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._settled()  # a step made is written and announced before the bus goes

    async def _reload(self) -> None:
        now = self.clock.now_ms()
        recent_ms = int(self.config.flap.window_s * 1000)
        loaded = await asyncio.to_thread(self.repo.load, now, recent_ms)
        core = AlertCore(self.config, self._external_url)
        core.load(loaded.alerts, loaded.windows, loaded.incidents, loaded.log, now)
        for agent, devices in self.offline.offline().items():
            core.engine.set_offline(agent, devices)
        self.core = core
        self._rows.forget_all()  # the rows may hold what another process (the previous leader) wrote

    # ---- inputs ---------------------------------------------------------------------------------------

    async def handle(self, msg: Message) -> None:
        """A bus message; a redelivered id is skipped (the bus delivers at least once)."""
        if msg.id in self._seen:
            self.duplicate_messages += 1
            return
        if isinstance(msg, AgentSeen):
            signals = self.offline.seen(msg, self.clock.now_ms())
            if not self.offline.agents[msg.agent].offline:
                self.core.engine.set_online(msg.agent)
        else:
            signals = self._rules[msg.TOPIC](msg)
        if signals:
            await self.apply(signals)
        self._seen[msg.id] = None
        while len(self._seen) > _SEEN_IDS:
            self._seen.popitem(last=False)

    async def apply(self, signals: Sequence[Signal]) -> Step:
        """Signals from a rule or the external-alert API; returns once they are durably applied.

        Signals arriving together are applied as one step in one transaction (a storm of 1,000 traps is
        one write, not 1,000), in arrival order; the step is shared by every caller in the batch.
        """
        fut: asyncio.Future[Step] = asyncio.get_running_loop().create_future()
        self._pending.append((list(signals), fut))
        self._wake.set()
        return await fut

    async def _mutate(self, fn: Callable[[AlertCore, int], Step]) -> Step:
        """Makes a step and returns once it is durable (or raises what its write raised)."""
        step, write = await self._begin(fn)
        if write is not None:
            await asyncio.shield(write)  # a cancelled caller does not cut the step's announcement short
        return step

    async def _begin(self, fn: Callable[[AlertCore, int], Step]) -> tuple[Step, asyncio.Task[None] | None]:
        """Makes a step under the lock and starts writing it; returns once the write has started.

        Steps are made while the one before is written (its SQL runs in a thread, this on the loop), so
        making and writing overlap, and one step at a time is written, in order: this waits, holding the
        lock, until the previous write is done. If that write failed, the state was reloaded and this step,
        made on top of the lost one, is dropped: its inputs get `StepDiscarded` and are retried.

        Raises:
            StepDiscarded: the previous step's write failed.
        """
        async with self._lock:
            previous = self._writing
            if previous is not None and previous.done():
                previous = None  # whatever it ended in (a failure reloads), this step is made on top of it
            step = fn(self.core, self.clock.now_ms())
            if not step and not step.notified:
                return step, None  # an empty step writes nothing, so it can be made on any state
            rows = self._rows.rows(step)  # copied now: the next step changes the same objects
            announce = self._announcements(step)
            if previous is not None:
                await asyncio.wait([previous])
                if not previous.cancelled() and previous.exception() is not None:
                    raise StepDiscarded(
                        "the step before this one could not be written"
                    ) from previous.exception()
            self._writing = write = asyncio.create_task(
                self._commit(step, rows, announce), name="alerts-write"
            )
        return step, write

    async def _commit(self, step: Step, rows: StepRows, announce: list[Message]) -> None:
        try:
            submitted = await asyncio.to_thread(self._write, rows, step.notifications)
        except Exception as exc:
            self.failed_writes += 1
            self._db_health.down(f"{type(exc).__name__}: {exc}; state reloaded, the input will be retried")
            with contextlib.suppress(Exception):
                await self._reload()
            # Also what the steps made meanwhile on the lost state (they are dropped) took as written.
            self._rows.forget_all()
            raise
        self._db_health.up()
        if self._dispatcher is not None and submitted is not None:
            self._dispatcher.committed(submitted)  # its notifications go out now, from memory
        await self._publish(announce)

    async def _publish(self, announce: list[Message]) -> None:
        """Announces a durable step. A bus that is down or closed costs the announcement, never the step
        (its inputs are done: failing them would apply them twice); counted and logged once."""
        for msg in announce:
            for attempt in range(_PUBLISH_TRIES):
                try:
                    await self._bus.publish(msg)
                except BusUnavailable as exc:  # the broker dedups by id: trying again is safe
                    if attempt + 1 < _PUBLISH_TRIES:
                        await self.clock.sleep(0.2 * 2**attempt)
                        continue
                    error: BusError = exc
                except BusError as exc:
                    error = exc
                else:
                    self._bus_health.up()
                    break
                self.unannounced += 1
                self._bus_health.down(f"{type(error).__name__}: {error}; alert changes not announced")
                break

    def _write(self, rows: StepRows, notifications: list[Notification]) -> Submitted | None:
        with self._db.begin() as conn:
            rows.write(conn)
            if self._dispatcher is not None and notifications:
                return self._dispatcher.submit_all_in(conn, notifications)
        return None

    async def _settled(self) -> None:
        """Waits for the step being written, whatever its outcome."""
        if self._writing is not None:
            await asyncio.wait([self._writing])

    def _announcements(self, step: Step) -> list[Message]:
        """Each changed alert's last change in the step (a storm of repeats is one entry), in
        `AlertsChanged` messages, and one IncidentChanged per incident, as they are when the step is
        made: published once it is durable."""
        now = self.clock.now_ms()
        last = {c.alert.id: c for c in step.changes}
        alerts = [
            (c.alert.id, c.alert.fingerprint, c.alert.status.value, c.alert.severity, c.kind.value)
            for c in last.values()
        ]
        out: list[Message] = list(AlertsChanged.of(alerts, now))
        out += [
            IncidentChanged.create(incident_id=inc.id, status=inc.status.value, change="updated", ts_ms=now)
            for inc in step.incidents
        ]
        return out

    # ---- time -----------------------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            if not self._pending:
                now = self.clock.now_ms()
                dues = [d for d in (self.core.next_due_ms(), self.offline.next_check_ms()) if d is not None]
                wait_s = min([MAX_IDLE_S] + [max(0.0, (d - now) / 1000) for d in dues])
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait_s):  # no task per wait, as wait_for makes
                        await self._wake.wait()
            self._wake.clear()
            await self._pace()
            try:
                await self._start_tick()  # returns once written is under way: the next step is made meanwhile
            except Exception:  # counted and logged in _commit; the inputs were told, the loop goes on
                await self.clock.sleep(MAX_IDLE_S)

    async def _pace(self) -> None:
        """Lets signals gather into the next step while the one before is still being written."""
        writing = self._writing
        wait_s = self._step_started + STEP_INTERVAL_S - time.monotonic()
        if writing is not None and not writing.done() and wait_s > 0:
            await asyncio.sleep(wait_s)
        self._step_started = time.monotonic()

    async def tick(self) -> Step:
        """Pending signals, offline checks, then the engine's timers and due group flushes: one step;
        returns once it is durable."""
        step, write = await self._start_tick()
        if write is not None:
            await asyncio.shield(write)
        return step

    async def _start_tick(self) -> tuple[Step, asyncio.Task[None] | None]:
        batch, self._pending = self._pending, []
        signals = [s for sigs, _ in batch for s in sigs]

        def step(core: AlertCore, now: int) -> Step:
            offline = self.offline.check(now)
            for agent, devices in self.offline.offline().items():
                core.engine.set_offline(agent, devices)
            first = core.signals(signals + offline, now) if signals or offline else Step()
            return _merge(first, core.tick(now))

        try:
            done, write = await self._begin(step)
        except Exception as exc:
            _settle(batch, exc)
            raise
        if write is None:
            _settle(batch, done)
        else:
            write.add_done_callback(lambda w: _settle_written(batch, done, w))
        return done, write

    # ---- operator actions -----------------------------------------------------------------------------

    async def acknowledge(self, alert_id: str, actor: str) -> Alert:
        return await self._alert_action(
            alert_id, lambda core, now: core.engine.acknowledge(alert_id, actor, now)
        )

    async def unacknowledge(self, alert_id: str, actor: str) -> Alert:
        return await self._alert_action(
            alert_id, lambda core, now: core.engine.unacknowledge(alert_id, actor, now)
        )

    async def resolve(self, alert_id: str, actor: str) -> Alert:
        return await self._alert_action(alert_id, lambda core, now: core.engine.resolve(alert_id, actor, now))

    async def _alert_action(self, alert_id: str, act: Callable[[AlertCore, int], Change | None]) -> Alert:
        if self.core.engine.open_by_id(alert_id) is None:
            raise NotFound(alert_id)

        def step(core: AlertCore, now: int) -> Step:
            change = act(core, now)
            return core.changed([change] if change else [], now)

        await self._mutate(step)
        self._wake.set()  # an action can make a group due sooner
        alert = self.core.engine.by_id.get(alert_id)
        if alert is None:
            raise NotFound(alert_id)
        return alert

    async def add_window(self, window: Window) -> Window:
        await asyncio.to_thread(self.repo.add_window, window)
        await self._refresh_windows()
        return window

    async def delete_window(self, window_id: str, kind: WindowKind) -> None:
        if not await asyncio.to_thread(self.repo.delete_window, window_id, kind, self.clock.now_ms()):
            raise NotFound(window_id)
        await self._refresh_windows()

    async def reload_windows(self) -> None:
        """Re-reads silences and maintenance windows another process wrote (an `api` process)."""
        await self._refresh_windows()

    async def _refresh_windows(self) -> None:
        loaded = await asyncio.to_thread(self.repo.load, self.clock.now_ms(), 0)
        await self._mutate(lambda core, now: core.changed(core.engine.set_windows(loaded.windows, now), now))
        self._wake.set()

    async def incident_action(
        self, incident_id: str, act: Callable[[Incident, int], list[TimelineEntry]]
    ) -> Incident:
        """Runs `act` (ack, assign, note...) on an incident and writes it with its timeline entries."""
        async with self._lock:
            await self._settled()  # the step that opened or last changed it is written first
            inc = self.core.incidents.by_id.get(incident_id)
            if inc is None:
                found = await asyncio.to_thread(self.repo.incident, incident_id)
                if found is None:
                    raise NotFound(incident_id)
                inc = found[0]
                self.core.incidents.by_id[inc.id] = inc
            entries = act(inc, self.clock.now_ms())
            self._rows.forget_incident(inc.id)
            await asyncio.to_thread(self._write_incident, inc, entries)
        await self._bus.publish(
            IncidentChanged.create(
                incident_id=inc.id, status=inc.status.value, change="operator", ts_ms=self.clock.now_ms()
            )
        )
        return inc

    def _write_incident(self, inc: Incident, entries: list[TimelineEntry]) -> None:
        with self._db.begin() as conn:
            self.repo.write_incident(conn, inc, entries)


def _settle(batch: list[tuple[list[Signal], asyncio.Future[Step]]], outcome: Step | BaseException) -> None:
    for _, fut in batch:
        if fut.done():
            continue
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)


def _settle_written(
    batch: list[tuple[list[Signal], asyncio.Future[Step]]], step: Step, write: asyncio.Task[None]
) -> None:
    error = None if write.cancelled() else write.exception()
    _settle(batch, step if error is None else error)


def _merge(a: Step, b: Step) -> Step:
    return Step(
        changes=a.changes + b.changes,
        incidents=a.incidents + b.incidents,
        timeline=a.timeline + b.timeline,
        notifications=a.notifications + b.notifications,
        log=a.log + b.log,
        gone_groups=a.gone_groups + b.gone_groups,
        notified=a.notified + b.notified,
    )
