"""Alerts in SQL: rows both ways, loading the engine's state at start, the statements a step is written
with (`written.py` decides which rows and columns), and the reads the API serves.

SQLAlchemy Core on the hub's state database (SQLite by default, PostgreSQL at scale). A step is written
in one transaction together with the notifications it produced (the notify outbox joins it), so a crash
can neither lose a resolve nor send a page whose alert state was never saved.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hub.alerts import models
from hub.alerts.grouping import LogEntry
from hub.alerts.incidents import Incident, IncidentStatus, TimelineEntry
from hub.alerts.model import Alert, AlertStatus, Labels
from hub.alerts.windows import Window, WindowKind
from hub.db.sql import executemany
from hub.matchers import Matcher, all_match, parse_matchers

# A listing never scans more rows than this to apply label matchers (a bound on every query).
MAX_SCAN = 20_000


def _pairs(value: Any) -> Labels:
    return tuple(sorted((str(k), str(v)) for k, v in dict(value).items()))


def _same(value: Any) -> Any:
    return value


def _pair_lists(pairs: Labels) -> list[list[str]]:
    """Pairs as JSON arrays, in their order (a verdict's features: largest share first)."""
    return [list(p) for p in pairs]


def _status_value(status: AlertStatus | IncidentStatus) -> str:
    return status.value


Convert = Callable[[Any], Any]


class StateColumns:
    """The columns a step can change of a row, named as the attributes of the object behind it.

    `state` reads them into an immutable tuple (mutable values frozen: lists to tuples, sets to
    frozensets), cheap to keep and compare; `columns` encodes chosen positions of one for the table.
    """

    def __init__(self, columns: Sequence[tuple[str, Convert | None, Convert]]) -> None:
        """`columns`: (name, how to freeze its value or None when it is immutable, how to encode it)."""
        self.names = tuple(name for name, _, _ in columns)
        self.index = {name: i for i, name in enumerate(self.names)}
        self._read = operator.attrgetter(*self.names)
        self._freeze = tuple((i, freeze) for i, (_, freeze, _) in enumerate(columns) if freeze is not None)
        self._encode = tuple(encode for _, _, encode in columns)

    def __len__(self) -> int:
        return len(self.names)

    def state(self, obj: object) -> tuple[Any, ...]:
        values = list(self._read(obj))
        for i, freeze in self._freeze:
            values[i] = freeze(values[i])
        return tuple(values)

    def columns(self, state: tuple[Any, ...], moved: Iterable[int]) -> dict[str, Any]:
        return {self.names[i]: self._encode[i](state[i]) for i in moved}


# What a step can change of an alert; the two a repeat moves come first (`Written` compares the rest in
# one go).
ALERT_STATE = StateColumns(
    (
        ("count", None, _same),
        ("last_seen_ms", None, _same),
        ("status", None, _status_value),
        ("severity", None, _same),
        ("annotations", None, dict),
        ("ends_ms", None, _same),
        ("active", None, _same),
        ("flapping", None, _same),
        ("transitions", tuple, list),
        ("eligible_ms", None, _same),
        ("notified", frozenset, sorted),
        ("resolved_notified", frozenset, sorted),
        ("silenced_by", None, _same),
        ("ack_by", None, _same),
        ("ack_ms", None, _same),
        ("resolved_by", None, _same),
        ("incident_id", None, _same),
        ("verdict", None, _same),
        ("verdict_features", None, _pair_lists),
    )
)
ALERT_VOLATILE = 2  # count, last_seen_ms
# `resolve_owed` is derived from status and the notified sets: written whenever one of them is.
_STATUS, _NOTIFIED, _TOLD_RESOLVED = (
    ALERT_STATE.index[n] for n in ("status", "notified", "resolved_notified")
)
_OWED_FROM = frozenset({_STATUS, _NOTIFIED, _TOLD_RESOLVED})


def alert_columns(state: tuple[Any, ...], moved: Iterable[int]) -> dict[str, Any]:
    """The columns of an alert's `state` at the `moved` positions, encoded for the table."""
    moved = tuple(moved)
    out = ALERT_STATE.columns(state, moved)
    if _OWED_FROM.intersection(moved):
        owed = state[_NOTIFIED] - state[_TOLD_RESOLVED]
        out["resolve_owed"] = state[_STATUS] is AlertStatus.RESOLVED and bool(owed)
    return out


def alert_row(a: Alert, state: tuple[Any, ...] | None = None) -> dict[str, Any]:
    """Every column of `a`; `state` is `ALERT_STATE.state(a)` when the caller has taken it already."""
    return {
        "id": a.id,
        "fingerprint": a.fingerprint,
        "labels": dict(a.labels),
        "source": a.source,
        "links": [list(p) for p in a.links],
        "first_seen_ms": a.first_seen_ms,
        "starts_ms": a.starts_ms,
        "resolve_after_ms": a.resolve_after_ms,
        **alert_columns(ALERT_STATE.state(a) if state is None else state, range(len(ALERT_STATE))),
    }


def alert_of(r: Any) -> Alert:
    return Alert(
        id=r.id,
        fingerprint=r.fingerprint,
        labels=_pairs(r.labels),
        annotations=_pairs(r.annotations),
        severity=r.severity,
        source=r.source,
        status=AlertStatus(r.status),
        starts_ms=r.starts_ms,
        first_seen_ms=r.first_seen_ms,
        last_seen_ms=r.last_seen_ms,
        count=r.count,
        ends_ms=r.ends_ms,
        active=r.active,
        flapping=r.flapping,
        transitions=list(r.transitions),
        links=tuple((str(k), str(v)) for k, v in r.links),
        resolve_after_ms=r.resolve_after_ms,
        eligible_ms=r.eligible_ms,
        notified=set(r.notified),
        resolved_notified=set(r.resolved_notified),
        silenced_by=r.silenced_by,
        ack_by=r.ack_by,
        ack_ms=r.ack_ms,
        resolved_by=r.resolved_by,
        incident_id=r.incident_id,
        verdict=r.verdict,
        verdict_features=tuple((str(k), str(v)) for k, v in r.verdict_features or ()),
    )


# What a step can change of an incident; updated_ms moves most.
INCIDENT_STATE = StateColumns(
    (
        ("updated_ms", None, _same),
        ("status", None, _status_value),
        ("resolved_ms", None, _same),
        ("assignee", None, _same),
        ("ack_by", None, _same),
        ("ack_ms", None, _same),
        ("alert_ids", frozenset, sorted),
        ("open_alerts", frozenset, sorted),
    )
)
INCIDENT_VOLATILE = 1


def incident_row(i: Incident, state: tuple[Any, ...] | None = None) -> dict[str, Any]:
    return {
        "id": i.id,
        "group_key": i.group_key,
        "labels": dict(i.labels),
        "opened_ms": i.opened_ms,
        **INCIDENT_STATE.columns(
            INCIDENT_STATE.state(i) if state is None else state, range(len(INCIDENT_STATE))
        ),
    }


def incident_of(r: Any) -> Incident:
    return Incident(
        id=r.id,
        group_key=r.group_key,
        labels=_pairs(r.labels),
        status=IncidentStatus(r.status),
        opened_ms=r.opened_ms,
        updated_ms=r.updated_ms,
        resolved_ms=r.resolved_ms,
        assignee=r.assignee,
        ack_by=r.ack_by,
        ack_ms=r.ack_ms,
        alert_ids=set(r.alert_ids),
        open_alerts=set(r.open_alerts),
    )


def window_row(w: Window) -> dict[str, Any]:
    return {
        "id": w.id,
        "kind": w.kind.value,
        "matchers": [str(m) for m in w.matchers],
        "starts_ms": w.starts_ms,
        "ends_ms": w.ends_ms,
        "rrule": w.rrule,
        "duration_ms": w.duration_ms,
        "timezone": w.timezone,
        "created_by": w.created_by,
        "created_ms": w.created_ms,
        "comment": w.comment,
        "deleted_ms": None,
    }


def window_of(r: Any) -> Window:
    return Window(
        id=r.id,
        kind=WindowKind(r.kind),
        matchers=parse_matchers(list(r.matchers)),
        starts_ms=r.starts_ms,
        ends_ms=r.ends_ms,
        created_by=r.created_by,
        created_ms=r.created_ms,
        comment=r.comment,
        rrule=r.rrule,
        duration_ms=r.duration_ms,
        timezone=r.timezone,
    )


@functools.cache
def _update_by_id(table: sa.Table) -> sa.Update:
    # SET comes from the parameter keys (every one but b_id): executemany, one statement per key set.
    return table.update().where(table.c.id == sa.bindparam("b_id"))


@functools.cache
def _upsert_stmt(table: sa.Table, key: str, dialect_name: str) -> sa.Insert:
    """Built once per table and dialect: building it (its `excluded` columns, its cache key) cost more
    than running it for a step of 100 rows."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    cols = {c.name: stmt.excluded[c.name] for c in table.columns if c.name != key}
    return stmt.on_conflict_do_update(index_elements=[key], set_=cols)


@functools.cache
def timeline_insert() -> sa.Insert:
    return sa.insert(models.timeline)


def upsert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], key: str) -> None:
    if not rows:
        return
    executemany(conn, _upsert_stmt(table, key, conn.dialect.name), rows)


def update_moved(
    conn: sa.Connection,
    table: sa.Table,
    rows: list[dict[str, Any]],
    whole: Callable[[], list[dict[str, Any]]],
) -> None:
    """Updates `rows` (`b_id` and the columns that moved), one statement per set of columns.

    When a row is missing (its database was replaced under the hub), or the driver cannot count the rows
    an executemany touched, `whole()` is upserted instead: the live objects, every column. A step being
    made meanwhile may already have moved some of their values; its own write follows and sets them again.
    """
    if not rows:
        return
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in rows:
        by_columns.setdefault(tuple(r), []).append(r)
    updated = sum(executemany(conn, _update_by_id(table), same) for same in by_columns.values())
    if not conn.dialect.supports_sane_multi_rowcount or updated != len(rows):
        upsert(conn, table, whole(), "id")


@dataclass(frozen=True, slots=True)
class Loaded:
    alerts: list[Alert]
    windows: list[Window]
    incidents: list[Incident]
    log: list[LogEntry]


class AlertRepository:
    """All SQL of the alerts package. Methods are blocking: call them off the event loop."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def load(self, now_ms: int, recent_ms: int) -> Loaded:
        """Open alerts, those resolved within `recent_ms` or still owed a resolved notification, live
        windows, open incidents and the notification log."""
        a, w, i = models.alerts, models.windows, models.incidents
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(a).where(
                    sa.or_(
                        a.c.status != AlertStatus.RESOLVED.value,
                        a.c.ends_ms >= now_ms - recent_ms,
                        a.c.resolve_owed.is_(True),
                    )
                )
            ).all()
            alerts = [alert_of(r) for r in rows]
            windows = [window_of(r) for r in conn.execute(sa.select(w).where(w.c.deleted_ms.is_(None)))]
            incidents = [
                incident_of(r)
                for r in conn.execute(sa.select(i).where(i.c.status != IncidentStatus.RESOLVED.value))
            ]
            log = [
                LogEntry(r.receiver, r.group_key, frozenset(r.firing), r.last_notify_ms)
                for r in conn.execute(sa.select(models.notify_log))
            ]
        return Loaded(alerts, windows, incidents, log)

    def write_incident(self, conn: sa.Connection, inc: Incident, entries: Sequence[TimelineEntry]) -> None:
        upsert(conn, models.incidents, [incident_row(inc)], "id")
        if entries:
            executemany(conn, timeline_insert(), [entry_row(e) for e in entries])

    def add_window(self, w: Window) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.insert(models.windows), [window_row(w)])

    def delete_window(self, window_id: str, kind: WindowKind, now_ms: int) -> bool:
        w = models.windows
        with self.engine.begin() as conn:
            res = conn.execute(
                sa.update(w)
                .where(w.c.id == window_id, w.c.kind == kind.value, w.c.deleted_ms.is_(None))
                .values(deleted_ms=now_ms)
            )
            return bool(res.rowcount)

    # ---- reads for the API ---------------------------------------------------------------------------

    def alerts(
        self,
        *,
        status: Sequence[str] = (),
        severity: Sequence[str] = (),
        matchers: tuple[Matcher, ...] = (),
        before_id: str | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        """Newest first; `before_id` pages backwards (ids sort by creation time)."""
        a = models.alerts
        q = sa.select(a).order_by(a.c.id.desc())
        if status:
            q = q.where(a.c.status.in_(list(status)))
        if severity:
            q = q.where(a.c.severity.in_(list(severity)))
        if before_id:
            q = q.where(a.c.id < before_id)
        out: list[Alert] = []
        with self.engine.connect() as conn:
            for r in conn.execute(q.limit(limit if not matchers else MAX_SCAN)):
                alert = alert_of(r)
                if all_match(matchers, alert.labels):
                    out.append(alert)
                    if len(out) >= limit:
                        break
        return out

    def alert(self, alert_id: str) -> Alert | None:
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(models.alerts).where(models.alerts.c.id == alert_id)).first()
        return alert_of(r) if r is not None else None

    def windows(self, kind: WindowKind, include_expired: bool, now_ms: int, limit: int) -> list[Window]:
        w = models.windows
        q = sa.select(w).where(w.c.kind == kind.value, w.c.deleted_ms.is_(None)).order_by(w.c.id.desc())
        with self.engine.connect() as conn:
            found = [window_of(r) for r in conn.execute(q.limit(MAX_SCAN))]
        if not include_expired:
            found = [x for x in found if not x.expired(now_ms)]
        return found[:limit]

    def incidents(self, status: Sequence[str], before_id: str | None, limit: int) -> list[Incident]:
        i = models.incidents
        q = sa.select(i).order_by(i.c.id.desc())
        if status:
            q = q.where(i.c.status.in_(list(status)))
        if before_id:
            q = q.where(i.c.id < before_id)
        with self.engine.connect() as conn:
            return [incident_of(r) for r in conn.execute(q.limit(limit))]

    def incident(self, incident_id: str) -> tuple[Incident, list[TimelineEntry]] | None:
        t = models.timeline
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(models.incidents).where(models.incidents.c.id == incident_id)).first()
            if r is None:
                return None
            entries = [
                TimelineEntry(e.incident_id, e.ts_ms, e.kind, e.text, e.actor, e.alert_id)
                for e in conn.execute(sa.select(t).where(t.c.incident_id == incident_id).order_by(t.c.seq))
            ]
        return incident_of(r), entries

    def alerts_by_ids(self, ids: Iterable[str]) -> list[Alert]:
        ids = list(ids)
        if not ids:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(models.alerts).where(models.alerts.c.id.in_(ids))).all()
        return [alert_of(r) for r in rows]


def entry_row(e: TimelineEntry) -> dict[str, Any]:
    return {
        "incident_id": e.incident_id,
        "ts_ms": e.ts_ms,
        "kind": e.kind,
        "text": e.text,
        "actor": e.actor,
        "alert_id": e.alert_id,
    }
