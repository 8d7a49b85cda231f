"""The alerts component: bus messages → rules → the alert core → one transaction (state + notify outbox).

One instance owns alert state at a time (with several hub processes it runs in the worker that holds the
alerts job lock). Every mutation (a message, a tick, an operator action) runs under one asyncio lock,
is written with its notifications in one transaction, and is then announced on the bus as
`AlertChanged` / `IncidentChanged`. If a write fails the in-memory state is reloaded from the database
and the error goes back to the bus, which redelivers the message: nothing is half-applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
from hub.bus.base import Bus
from hub.bus.messages import AgentSeen, AlertChanged, IncidentChanged, Message
from hub.notify.dispatcher import Dispatcher
from shared.clock import Clock, SystemClock
from shared.logging import UpDown

log = logging.getLogger(__name__)

GROUP = "alerts"
# Longest the loop sleeps with nothing due: bounds how late a window boundary or resolve timeout is seen.
MAX_IDLE_S = 1.0
_SEEN_IDS = 100_000


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
        self._db = db
        self._bus = bus
        self._dispatcher = dispatcher
        self._external_url = external_url
        self.core = AlertCore(config, external_url)
        self.offline = OfflineTracker(config.offline)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._pending: list[tuple[list[Signal], asyncio.Future[Step]]] = []
        self._task: asyncio.Task[None] | None = None
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._db_health = UpDown(log, "alert state database", self.clock)
        self.failed_writes = 0
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

    async def _reload(self) -> None:
        now = self.clock.now_ms()
        recent_ms = int(self.config.flap.window_s * 1000)
        loaded = await asyncio.to_thread(self.repo.load, now, recent_ms)
        core = AlertCore(self.config, self._external_url)
        core.load(loaded.alerts, loaded.windows, loaded.incidents, loaded.log, now)
        for agent, devices in self.offline.offline().items():
            core.engine.set_offline(agent, devices)
        self.core = core

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
        async with self._lock:
            step = fn(self.core, self.clock.now_ms())
            await self._commit(step)
        return step

    async def _commit(self, step: Step) -> None:
        if not step and not step.notified:
            return
        try:
            await asyncio.to_thread(self._write, step)
        except Exception as exc:
            self.failed_writes += 1
            self._db_health.down(f"{type(exc).__name__}: {exc}; state reloaded, the input will be retried")
            with contextlib.suppress(Exception):
                await self._reload()
            raise
        self._db_health.up()
        if self._dispatcher is not None and step.notifications:
            self._dispatcher.committed({n.receiver for n in step.notifications})
        await self._announce(step)

    def _write(self, step: Step) -> None:
        with self._db.begin() as conn:
            self.repo.write(conn, step)
            if self._dispatcher is not None and step.notifications:
                self._dispatcher.submit_all_in(conn, step.notifications)

    async def _announce(self, step: Step) -> None:
        """One AlertChanged per alert per step (its last change): a storm of repeats is one message."""
        now = self.clock.now_ms()
        last = {c.alert.id: c for c in step.changes}
        for c in last.values():
            await self._bus.publish(
                AlertChanged.create(
                    alert_id=c.alert.id,
                    fingerprint=c.alert.fingerprint,
                    status=c.alert.status.value,
                    severity=c.alert.severity,
                    change=c.kind.value,
                    ts_ms=now,
                )
            )
        for inc in step.incidents:
            await self._bus.publish(
                IncidentChanged.create(
                    incident_id=inc.id, status=inc.status.value, change="updated", ts_ms=now
                )
            )

    # ---- time -----------------------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            if not self._pending:
                now = self.clock.now_ms()
                dues = [d for d in (self.core.next_due_ms(), self.offline.next_check_ms()) if d is not None]
                wait_s = min([MAX_IDLE_S] + [max(0.0, (d - now) / 1000) for d in dues])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait_s)
            self._wake.clear()
            try:
                await self.tick()
            except Exception:  # counted and logged in _commit; the inputs were told, the loop goes on
                await self.clock.sleep(MAX_IDLE_S)

    async def tick(self) -> Step:
        """Pending signals, offline checks, then the engine's timers and due group flushes: one step."""
        batch, self._pending = self._pending, []
        signals = [s for sigs, _ in batch for s in sigs]

        def step(core: AlertCore, now: int) -> Step:
            offline = self.offline.check(now)
            for agent, devices in self.offline.offline().items():
                core.engine.set_offline(agent, devices)
            first = core.signals(signals + offline, now) if signals or offline else Step()
            return _merge(first, core.tick(now))

        try:
            done = await self._mutate(step)
        except Exception as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            raise
        for _, fut in batch:
            if not fut.done():
                fut.set_result(done)
        return done

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
            inc = self.core.incidents.by_id.get(incident_id)
            if inc is None:
                found = await asyncio.to_thread(self.repo.incident, incident_id)
                if found is None:
                    raise NotFound(incident_id)
                inc = found[0]
                self.core.incidents.by_id[inc.id] = inc
            entries = act(inc, self.clock.now_ms())
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
