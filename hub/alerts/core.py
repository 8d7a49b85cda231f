"""One step of the alert path, pure: engine → incidents → grouping, and what the step must persist.

`service.py` feeds it signals, operator actions and clock ticks, writes each `Step` to the database in
one transaction and hands its notifications to the dispatcher. Tests drive it with plain integers for
time, so every timer (group_wait, flap windows, silences) is tested without sleeping.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hub.alerts.config import AlertsConfig
from hub.alerts.engine import AlertEngine, Change
from hub.alerts.grouping import Grouper, LogEntry
from hub.alerts.incidents import Incident, Incidents, TimelineEntry
from hub.alerts.model import Alert, Signal
from hub.alerts.windows import Window
from hub.notify.model import Notification


@dataclass(slots=True)
class Step:
    """Everything one call changed."""

    changes: list[Change] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    log: list[LogEntry] = field(default_factory=list)
    gone_groups: list[str] = field(default_factory=list)
    # Alerts whose notification bookkeeping changed without an engine change (notified sets).
    notified: list[Alert] = field(default_factory=list)

    @property
    def alerts(self) -> list[Alert]:
        """Every alert to write: changed ones and those whose notified sets moved, once each."""
        seen: dict[str, Alert] = {c.alert.id: c.alert for c in self.changes}
        for a in self.notified:
            seen.setdefault(a.id, a)
        return list(seen.values())

    def __bool__(self) -> bool:
        return bool(self.changes or self.incidents or self.timeline or self.notifications or self.gone_groups)


class AlertCore:
    """The engine, incidents and grouper wired in the one order that is right."""

    def __init__(self, config: AlertsConfig, external_url: str = "") -> None:
        self.config = config
        self.engine = AlertEngine(config)
        self.incidents = Incidents(config.group_by)
        self.grouper = Grouper(config, external_url)

    def load(
        self,
        alerts: Iterable[Alert],
        windows: Iterable[Window],
        incidents: Iterable[Incident],
        log: Iterable[LogEntry],
        now_ms: int,
    ) -> None:
        """Restores everything after a restart; open and notified-but-unresolved alerts rejoin groups."""
        alerts = list(alerts)
        self.engine.load(alerts, windows, now_ms)
        self.incidents.load(incidents)
        self.grouper.restore(log)
        pending = [a for a in alerts if a.is_open or (a.notified - a.resolved_notified)]
        self.grouper.observe(pending, now_ms)

    def signals(self, signals: Sequence[Signal], now_ms: int) -> Step:
        return self._after(self.engine.apply(signals, now_ms), now_ms)

    def tick(self, now_ms: int) -> Step:
        return self._after(self.engine.tick(now_ms), now_ms)

    def changed(self, changes: list[Change], now_ms: int) -> Step:
        """For operator actions and window updates the caller made on the engine directly."""
        return self._after(changes, now_ms)

    def _after(self, changes: list[Change], now_ms: int) -> Step:
        step = Step(changes=changes)
        step.incidents, step.timeline = self.incidents.observe(changes, now_ms)
        if changes:
            self.grouper.observe([c.alert for c in changes], now_ms)
        due = self.grouper.next_due_ms()
        if due is not None and due <= now_ms:
            flushed = self.grouper.flush_due(now_ms)
            step.notifications, step.log = flushed.notifications, flushed.log
            step.notified, step.gone_groups = flushed.alerts, flushed.gone_groups
        return step

    def next_due_ms(self) -> int | None:
        return self.grouper.next_due_ms()
