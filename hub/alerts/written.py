"""What a step writes: its rows, with only the columns that moved since this writer last wrote them.

Most of a busy step is repeats: a dedup hit moves `count` and `last_seen_ms` and nothing else. Writing
the whole row anyway cost SQLite three times as much (a column in SET is rewritten in every index on it,
even when its value is the same) and most of the step's JSON encoding. So the writer remembers, per row,
an immutable copy of what it last handed to the database (`ALERT_STATE`, `INCIDENT_STATE`); a row it does
not know (after a start, a failed write, an eviction) is written whole, so a wrong guess can only cost a
wider UPDATE, never a lost column.

Only the one writer of alert state uses it, on the event loop, in the order its steps are written; it is
cleared whenever the database may hold something else: a failed write, a reload, another process that
held the alerts job before this one.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from hub.alerts import models
from hub.alerts.core import Step
from hub.alerts.engine import ChangeKind
from hub.alerts.incidents import Incident
from hub.alerts.model import Alert
from hub.alerts.repository import (
    ALERT_STATE,
    ALERT_VOLATILE,
    INCIDENT_STATE,
    INCIDENT_VOLATILE,
    alert_columns,
    alert_row,
    entry_row,
    incident_row,
    timeline_insert,
    update_moved,
    upsert,
)
from hub.db.sql import executemany

# Rows remembered per table; beyond it the least recently written is forgotten (its next write is whole).
MAX_ROWS = 200_000


class Written:
    """Per row key, the state tuple last written, least recently written first.

    A state's first `volatile` fields are those that usually move (an alert's count and last seen): the
    rest is compared in one tuple comparison, field by field only when it differs.
    """

    def __init__(self, fields: int, volatile: int, limit: int = MAX_ROWS) -> None:
        self._fields = fields
        self._volatile = volatile
        # Insertion-ordered: a key written again is popped and put back at the end.
        self._rows: dict[Hashable, tuple[Any, ...]] = {}
        self._limit = limit

    def moved(self, key: Hashable, state: tuple[Any, ...]) -> list[int]:
        """The positions where `state` differs from what was written for `key` (all of them when nothing
        is known of it); records `state` as written."""
        before = self._rows.pop(key, None)
        self._rows[key] = state
        if len(self._rows) > self._limit:
            del self._rows[next(iter(self._rows))]
        if before is None:
            return list(range(self._fields))
        v = self._volatile
        if before[v:] == state[v:]:
            return [i for i in range(v) if before[i] != state[i]]
        return [i for i in range(self._fields) if before[i] != state[i]]

    def remember(self, key: Hashable, state: tuple[Any, ...]) -> None:
        """`state` was written whole for `key`."""
        self.moved(key, state)

    def known(self, key: Hashable) -> bool:
        return key in self._rows

    def forget(self, key: Hashable) -> None:
        self._rows.pop(key, None)

    def clear(self) -> None:
        self._rows.clear()


@dataclass(frozen=True, slots=True)
class StepRows:
    """A step's rows, taken on the event loop when the step is made.

    The service writes a step in a worker thread while the next step is already being made from the same
    alert, incident and group objects, so the values are copied out first; the thread only runs SQL.
    Rows written before are updates of `b_id` and the columns that moved.
    """

    created: list[dict[str, Any]]
    updated: list[dict[str, Any]]
    changed: list[Alert]  # behind `updated`: the whole-row fallback reads them
    incidents: list[dict[str, Any]]  # whole: incidents this writer has not written before
    incidents_updated: list[dict[str, Any]]
    incidents_changed: list[Incident]  # behind `incidents_updated`
    timeline: list[dict[str, Any]]
    log: list[dict[str, Any]]
    gone_groups: list[str]

    def write(self, conn: sa.Connection) -> None:
        """Writes these rows inside the caller's transaction."""
        upsert(conn, models.alerts, self.created, "id")
        update_moved(conn, models.alerts, self.updated, lambda: [alert_row(a) for a in self.changed])
        upsert(conn, models.incidents, self.incidents, "id")
        update_moved(
            conn,
            models.incidents,
            self.incidents_updated,
            lambda: [incident_row(i) for i in self.incidents_changed],
        )
        if self.timeline:
            executemany(conn, timeline_insert(), self.timeline)
        upsert(conn, models.notify_log, self.log, "group_key")
        if self.gone_groups:
            conn.execute(
                sa.delete(models.notify_log).where(models.notify_log.c.group_key.in_(self.gone_groups))
            )


class StepWriter:
    """Turns steps into rows, remembering what it wrote so a repeat updates two columns, not twenty."""

    def __init__(self) -> None:
        self._alerts = Written(len(ALERT_STATE), ALERT_VOLATILE)
        self._incidents = Written(len(INCIDENT_STATE), INCIDENT_VOLATILE)

    def rows(self, step: Step) -> StepRows:
        """Alerts created in `step` are inserted whole, the others updated with the columns that moved
        (an alert none of whose columns moved is not written at all)."""
        created_ids = {c.alert.id for c in step.changes if c.kind is ChangeKind.CREATED}
        created: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        changed: list[Alert] = []
        for a in step.alerts:
            state = ALERT_STATE.state(a)
            if a.id in created_ids:
                self._alerts.remember(a.id, state)
                created.append(alert_row(a, state))
            elif moved := self._alerts.moved(a.id, state):
                updated.append({"b_id": a.id, **alert_columns(state, moved)})
                changed.append(a)
        whole: list[dict[str, Any]] = []
        inc_updated: list[dict[str, Any]] = []
        inc_changed: list[Incident] = []
        for i in step.incidents:
            state = INCIDENT_STATE.state(i)
            if not self._incidents.known(i.id):
                self._incidents.remember(i.id, state)
                whole.append(incident_row(i, state))
            elif moved := self._incidents.moved(i.id, state):
                inc_updated.append({"b_id": i.id, **INCIDENT_STATE.columns(state, moved)})
                inc_changed.append(i)
        log = [
            {
                "group_key": e.group_key,
                "receiver": e.receiver,
                "firing": sorted(e.firing),
                "last_notify_ms": e.last_notify_ms,
            }
            for e in step.log
        ]
        return StepRows(
            created,
            updated,
            changed,
            whole,
            inc_updated,
            inc_changed,
            [entry_row(e) for e in step.timeline],
            log,
            list(step.gone_groups),
        )

    def forget_incident(self, incident_id: str) -> None:
        """Its row was written outside a step (an operator action): the next step writes it whole."""
        self._incidents.forget(incident_id)

    def forget_all(self) -> None:
        self._alerts.clear()
        self._incidents.clear()
