"""Incidents: alerts grouped by `alerts.group_by` (default site + device), with a timeline.

An incident opens with its first alert, gathers every alert of its group while any is open, and
resolves when the last one does; operators acknowledge it, assign it and add notes. The timeline
records alerts joining and ending, state changes and notes, so the NOC reads one story per device.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from hub.alerts.engine import Change, ChangeKind, new_id
from hub.alerts.grouping import group_key, group_labels
from hub.alerts.model import Alert, Labels

MAX_NOTE_LEN = 4000


class IncidentStatus(Enum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(slots=True, eq=False)
class Incident:
    id: str
    group_key: str
    labels: Labels
    status: IncidentStatus
    opened_ms: int
    updated_ms: int
    resolved_ms: int | None = None
    assignee: str | None = None
    ack_by: str | None = None
    ack_ms: int | None = None
    alert_ids: set[str] = field(default_factory=set)
    open_alerts: set[str] = field(default_factory=set)

    @property
    def title(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.labels) or "ungrouped"
        n = len(self.alert_ids)
        return f"{n} alert{'s' if n != 1 else ''} on {where}"


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    incident_id: str
    ts_ms: int
    kind: str  # alert_joined, alert_resolved, alert_<change>, state, assigned, note
    text: str
    actor: str = ""
    alert_id: str | None = None


_NOTED = {
    ChangeKind.REOPENED: "reopened",
    ChangeKind.SUPPRESSED: "suppressed",
    ChangeKind.UNSUPPRESSED: "no longer suppressed",
    ChangeKind.ACKNOWLEDGED: "acknowledged",
    ChangeKind.UNACKNOWLEDGED: "unacknowledged",
    ChangeKind.FLAPPING: "flapping",
    ChangeKind.FLAP_ENDED: "stopped flapping",
}


def describe(alert: Alert) -> str:
    name = alert.label("alertname") or "alert"
    where = alert.label("device") or alert.label("agent")
    return f"{name} on {where}" if where else name


class Incidents:
    """Open incidents by group key; changed incidents and new timeline entries come back from each call."""

    def __init__(self, group_by: tuple[str, ...]) -> None:
        self._group_by = group_by
        self.open: dict[str, Incident] = {}
        self.by_id: dict[str, Incident] = {}

    def load(self, incidents: Iterable[Incident]) -> None:
        for inc in incidents:
            self.by_id[inc.id] = inc
            if inc.status is not IncidentStatus.RESOLVED:
                self.open[inc.group_key] = inc

    def observe(self, changes: Iterable[Change], now_ms: int) -> tuple[list[Incident], list[TimelineEntry]]:
        touched: dict[str, Incident] = {}
        entries: list[TimelineEntry] = []
        for c in changes:
            alert = c.alert
            if c.kind is ChangeKind.CREATED:
                if not alert.is_open:
                    continue  # recorded as already over: nothing to gather
                inc = self._join(alert, now_ms, entries)
            elif alert.incident_id is None or alert.incident_id not in self.by_id:
                continue
            else:
                inc = self.by_id[alert.incident_id]
                if c.kind is ChangeKind.RESOLVED:
                    inc.open_alerts.discard(alert.id)
                    text = f"{describe(alert)} resolved" + (f" by {c.actor}" if c.actor else "")
                    entries.append(TimelineEntry(inc.id, now_ms, "alert_resolved", text, c.actor, alert.id))
                    if not inc.open_alerts and inc.status is not IncidentStatus.RESOLVED:
                        self._set_status(inc, IncidentStatus.RESOLVED, now_ms, "", entries)
                elif c.kind is ChangeKind.REOPENED and inc.status is IncidentStatus.RESOLVED:
                    inc = self._join(alert, now_ms, entries)
                elif c.kind in _NOTED:
                    text = f"{describe(alert)} {_NOTED[c.kind]}"
                    kind = f"alert_{c.kind.value}"
                    entries.append(TimelineEntry(inc.id, now_ms, kind, text, c.actor, alert.id))
                else:
                    continue
            inc.updated_ms = now_ms
            touched[inc.id] = inc
        return list(touched.values()), entries

    def _join(self, alert: Alert, now_ms: int, entries: list[TimelineEntry]) -> Incident:
        glabels = group_labels(alert.labels, self._group_by)
        key = group_key("incident", glabels)
        inc = self.open.get(key)
        if inc is None:
            inc = Incident(new_id(now_ms), key, glabels, IncidentStatus.OPEN, now_ms, now_ms)
            self.open[key] = inc
            self.by_id[inc.id] = inc
            entries.append(TimelineEntry(inc.id, now_ms, "state", "incident opened"))
        inc.alert_ids.add(alert.id)
        inc.open_alerts.add(alert.id)
        alert.incident_id = inc.id
        text = f"{describe(alert)} joined"
        entries.append(TimelineEntry(inc.id, now_ms, "alert_joined", text, "", alert.id))
        return inc

    def _set_status(
        self, inc: Incident, status: IncidentStatus, now_ms: int, actor: str, entries: list[TimelineEntry]
    ) -> None:
        inc.status = status
        if status is IncidentStatus.RESOLVED:
            inc.resolved_ms = now_ms
            self.open.pop(inc.group_key, None)
        by = f" by {actor}" if actor else ""
        entries.append(TimelineEntry(inc.id, now_ms, "state", f"incident {status.value}{by}", actor))

    # ---- operator actions (the service persists what they return) --------------------------------------

    def acknowledge(self, incident_id: str, actor: str, now_ms: int) -> list[TimelineEntry]:
        inc = self.by_id[incident_id]
        if inc.status is not IncidentStatus.OPEN:
            return []
        entries: list[TimelineEntry] = []
        inc.ack_by, inc.ack_ms, inc.updated_ms = actor, now_ms, now_ms
        self._set_status(inc, IncidentStatus.ACKNOWLEDGED, now_ms, actor, entries)
        return entries

    def unacknowledge(self, incident_id: str, actor: str, now_ms: int) -> list[TimelineEntry]:
        inc = self.by_id[incident_id]
        if inc.status is not IncidentStatus.ACKNOWLEDGED:
            return []
        entries: list[TimelineEntry] = []
        inc.ack_by = inc.ack_ms = None
        inc.updated_ms = now_ms
        self._set_status(inc, IncidentStatus.OPEN, now_ms, actor, entries)
        return entries

    def assign(self, incident_id: str, assignee: str | None, actor: str, now_ms: int) -> list[TimelineEntry]:
        inc = self.by_id[incident_id]
        inc.assignee, inc.updated_ms = assignee, now_ms
        text = f"assigned to {assignee}" if assignee else "unassigned"
        return [TimelineEntry(inc.id, now_ms, "assigned", text, actor)]

    def note(self, incident_id: str, text: str, actor: str, now_ms: int) -> list[TimelineEntry]:
        inc = self.by_id[incident_id]
        inc.updated_ms = now_ms
        return [TimelineEntry(inc.id, now_ms, "note", text[:MAX_NOTE_LEN], actor)]
