"""Notification groups with Alertmanager's timers (`dispatch/dispatch.go`, `notify/notify.go` DedupStage).

Each route sends matching alerts to a receiver, grouped by the route's `group_by` labels. A new group
notifies after `group_wait`; from then on it is looked at every `group_interval`, and notifies when an
alert joined its firing set, when a notified alert resolved, or when `repeat_interval` passed with
something still firing and not acknowledged. The last firing set sent per (receiver, group) is the
notification log: it survives restarts, so nothing already paged is paged again and no resolve is lost.

Resolved notifications are always delivered for an alert that was notified, whatever silenced,
inhibited or acknowledged it since (Alertmanager #226, #2754).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from hub.alerts.config import AlertsConfig, Timers
from hub.alerts.model import Alert, Labels
from hub.matchers import Matcher, all_match, parse_matchers
from hub.notify.model import AlertView, Notification

# The confirmation verdict of an onset the hub judged normal for its device: recorded, never paged.
DISMISSED = "dismissed"


@dataclass(frozen=True, slots=True)
class Route:
    matchers: tuple[Matcher, ...]
    receiver: str
    group_by: tuple[str, ...]
    timers: Timers
    continue_: bool


def compile_routes(config: AlertsConfig) -> tuple[Route, ...]:
    return tuple(
        Route(
            parse_matchers(list(r.matchers)),
            r.receiver,
            r.group_by if r.group_by is not None else config.group_by,
            r.timers or config.timers,
            r.continue_,
        )
        for r in config.routes
    )


# Label sets whose routes and groups `Grouper` remembers; beyond this it starts again from none.
_MAX_PLACED = 100_000


def group_labels(labels: Labels, group_by: tuple[str, ...]) -> Labels:
    return tuple((k, v) for k, v in labels if k in group_by)


def group_key(receiver: str, labels: Labels) -> str:
    """`receiver:{site="dc1",device="sw1"}`: readable, and unique per receiver and group."""
    inner = ",".join(f'{k}="{v}"' for k, v in labels)
    return f"{receiver}:{{{inner}}}"


@dataclass(slots=True)
class Group:
    receiver: str
    key: str
    labels: Labels
    timers: Timers
    alerts: dict[str, Alert] = field(default_factory=dict)  # by alert id
    next_flush_ms: int | None = None
    last_notify_ms: int | None = None
    # The notification log entry: fingerprints of the firing set last sent.
    notified_firing: frozenset[str] = frozenset()
    # When the group was made: due groups flush in this order (the order of `Grouper.groups`).
    order: int = 0

    def firing(self) -> list[Alert]:
        return [
            a
            for a in self.alerts.values()
            if a.is_open
            and (a.active or a.flapping)
            and a.silenced_by is None
            and not a.eligible_ms
            and a.verdict != DISMISSED
        ]

    def resolved(self) -> list[Alert]:
        """Alerts this receiver was told are firing whose end it has not heard yet."""
        return [
            a
            for a in self.alerts.values()
            if not a.is_open and self.receiver in a.notified and self.receiver not in a.resolved_notified
        ]


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One row of the notification log, as persisted."""

    receiver: str
    group_key: str
    firing: frozenset[str]
    last_notify_ms: int


@dataclass(frozen=True, slots=True)
class Flushed:
    notifications: list[Notification]
    log: list[LogEntry]
    alerts: list[Alert]
    gone_groups: list[str]


class Grouper:
    """Places changed alerts into groups and produces the notifications that are due."""

    def __init__(self, config: AlertsConfig, external_url: str = "") -> None:
        self.routes = compile_routes(config)
        self.groups: dict[str, Group] = {}
        self._external_url = external_url
        self._log: dict[str, LogEntry] = {}
        # (next_flush_ms, group order, key) of every group's flush time, so finding the due groups does
        # not look at every group; an entry no longer matching its group is dropped when it comes up.
        self._due: list[tuple[int, int, str]] = []
        self._order = itertools.count(1)
        self._placed: dict[Labels, list[tuple[Route, Labels, str]]] = {}

    def restore(self, entries: Iterable[LogEntry]) -> None:
        """Loads the notification log before the first `observe` after a restart."""
        self._log = {e.group_key: e for e in entries}

    def routes_for(self, labels: Labels) -> list[Route]:
        out = []
        for r in self.routes:
            if all_match(r.matchers, labels):
                out.append(r)
                if not r.continue_:
                    break
        return out

    def _placements(self, labels: Labels) -> list[tuple[Route, Labels, str]]:
        """The routes of an alert with these labels, each with its group labels and key (remembered:
        a busy step places the same few thousand label sets again and again)."""
        found = self._placed.get(labels)
        if found is None:
            if len(self._placed) >= _MAX_PLACED:
                self._placed.clear()
            found = []
            for route in self.routes_for(labels):
                glabels = group_labels(labels, route.group_by)
                found.append((route, glabels, group_key(route.receiver, glabels)))
            self._placed[labels] = found
        return found

    def observe(self, alerts: Iterable[Alert], now_ms: int) -> None:
        """Puts each alert into the groups of its routes; a new group flushes after its group_wait."""
        for alert in alerts:
            for route, glabels, key in self._placements(alert.labels):
                group = self.groups.get(key)
                if group is None:
                    group = Group(route.receiver, key, glabels, route.timers, order=next(self._order))
                    self.groups[key] = group
                    logged = self._log.pop(key, None)
                    if logged is not None:  # restarted: carry on where the log says we were
                        group.notified_firing, group.last_notify_ms = logged.firing, logged.last_notify_ms
                        interval_ms = int(route.timers.group_interval_s * 1000)
                        self._flush_at(group, max(now_ms, logged.last_notify_ms + interval_ms))
                    else:
                        self._flush_at(group, now_ms + int(route.timers.group_wait_s * 1000))
                group.alerts[alert.id] = alert
                if group.last_notify_ms is None:  # nothing sent yet: the first page waits group_wait only
                    wait_until = now_ms + int(route.timers.group_wait_s * 1000)
                    flush_ms = min(group.next_flush_ms or wait_until, wait_until)
                    if flush_ms != group.next_flush_ms:
                        self._flush_at(group, flush_ms)

    def _flush_at(self, group: Group, flush_ms: int) -> None:
        group.next_flush_ms = flush_ms
        heapq.heappush(self._due, (flush_ms, group.order, group.key))

    def _live(self, entry: tuple[int, int, str]) -> Group | None:
        group = self.groups.get(entry[2])
        if group is None or group.order != entry[1] or group.next_flush_ms != entry[0]:
            return None
        return group

    def next_due_ms(self) -> int | None:
        heap = self._due
        while heap and self._live(heap[0]) is None:
            heapq.heappop(heap)
        if len(heap) > 2 * len(self.groups) + 1024:  # mostly stale entries of regrouped or gone groups
            groups = self.groups.items()
            heap = [(g.next_flush_ms, g.order, k) for k, g in groups if g.next_flush_ms is not None]
            heapq.heapify(heap)
            self._due = heap
        return heap[0][0] if heap else None

    def flush_due(self, now_ms: int) -> Flushed:
        """Notifications due at `now_ms`, the log entries they make, the alerts whose notified sets
        changed, and the group keys now gone."""
        notes: list[Notification] = []
        entries: list[LogEntry] = []
        gone: list[str] = []
        touched: list[Alert] = []
        due: dict[str, Group] = {}
        heap = self._due
        while heap and heap[0][0] <= now_ms:
            group = self._live(heapq.heappop(heap))
            if group is not None:
                due[group.key] = group
        for group in sorted(due.values(), key=lambda g: g.order):
            key = group.key
            note = self._flush(group, now_ms, touched)
            if note is not None:
                notes.append(note)
                entries.append(LogEntry(group.receiver, key, group.notified_firing, now_ms))
            for alert_id, alert in list(group.alerts.items()):
                if not alert.is_open and (
                    group.receiver in alert.resolved_notified or group.receiver not in alert.notified
                ):
                    del group.alerts[alert_id]
            if group.alerts:
                self._flush_at(group, now_ms + int(group.timers.group_interval_s * 1000))
            else:
                del self.groups[key]
                gone.append(key)
        return Flushed(notes, entries, touched, gone)

    def _flush(self, group: Group, now_ms: int, touched: list[Alert]) -> Notification | None:
        firing = group.firing()
        resolved = group.resolved()
        fps = frozenset(a.fingerprint for a in firing)
        repeat = (
            bool(firing)
            and group.last_notify_ms is not None
            and now_ms - group.last_notify_ms >= group.timers.repeat_interval_s * 1000
            and any(a.ack_by is None for a in firing)
        )
        if not (fps - group.notified_firing or resolved or repeat):
            if fps != group.notified_firing:
                group.notified_firing = fps & group.notified_firing  # silenced ones leave the set quietly
            return None
        for a in firing:
            a.notified.add(group.receiver)
        for a in resolved:
            a.resolved_notified.add(group.receiver)
        touched += firing + resolved
        group.notified_firing, group.last_notify_ms = fps, now_ms
        members = sorted(firing, key=lambda a: a.id) + sorted(resolved, key=lambda a: a.id)
        digest = hashlib.sha256(group.key.encode()).hexdigest()[:12]
        return Notification(
            id=f"{digest}-{now_ms}",
            receiver=group.receiver,
            group_key=group.key,
            group_labels=group.labels,
            status="firing" if firing else "resolved",
            alerts=tuple(self.view(a) for a in members),
            created_ms=now_ms,
        )

    def view(self, alert: Alert) -> AlertView:
        annotations = alert.annotations
        if alert.flapping:
            annotations = tuple(sorted({**dict(annotations), "flapping": "true"}.items()))
        return AlertView(
            id=alert.id,
            fingerprint=alert.fingerprint,
            status="firing" if alert.is_open else "resolved",
            severity=alert.severity,
            labels=alert.labels,
            annotations=annotations,
            starts_at_ms=alert.starts_ms,
            ends_at_ms=alert.ends_ms,
            generator_url=f"{self._external_url}/api/v1/alerts/{alert.id}" if self._external_url else "",
        )
