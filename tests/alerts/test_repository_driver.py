"""A step's rows go to the driver directly (compiled once, JSON encoded by us): the rows must read back
exactly as SQLAlchemy's own `execute` writes them, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hub.alerts import models
from hub.alerts.core import Step
from hub.alerts.engine import Change, ChangeKind
from hub.alerts.grouping import LogEntry
from hub.alerts.incidents import Incident, IncidentStatus, TimelineEntry
from hub.alerts.model import Alert, AlertStatus
from hub.alerts.repository import AlertRepository, _upsert_stmt, alert_row
from hub.alerts.written import StepWriter
from hub.db.sql import _driver_plan

pytestmark = pytest.mark.integration


def _alert(i: int, **kw: object) -> Alert:
    fields: dict[str, object] = {
        "id": f"{i:024x}",
        "fingerprint": f"fp{i:014d}",
        "labels": (("alertname", "LinkDown"), ("device", f"sw{i}"), ("note", 'quote " and ü')),
        "annotations": (("summary", "down"),),
        "severity": "warning",
        "source": "snmp-trap",
        "status": AlertStatus.FIRING,
        "starts_ms": 1000,
        "first_seen_ms": 1000,
        "last_seen_ms": 2**40,
        "links": (("event", f"e{i}"),),
    }
    fields.update(kw)
    return Alert(**fields)  # type: ignore[arg-type]


def _incident(incident_id: str, **kw: object) -> Incident:
    return Incident(
        id=incident_id,
        group_key="noc:{}",
        labels=(("site", "dc1"),),
        status=IncidentStatus.OPEN,
        opened_ms=1,
        **kw,  # type: ignore[arg-type]
    )


def _rows(db: sa.Engine, ids: list[str]) -> list[tuple[object, ...]]:
    a = models.alerts
    with db.connect() as conn:
        rows = conn.execute(sa.select(a).where(a.c.id.in_(ids)).order_by(a.c.id)).all()
    return [tuple(r)[1:] for r in rows]  # without the id


def _write(db: sa.Engine, writer: StepWriter, step: Step) -> None:
    with db.begin() as conn:
        writer.rows(step).write(conn)


def test_the_driver_path_is_taken_on_this_database(db: sa.Engine) -> None:
    plan = _driver_plan(
        _upsert_stmt(models.alerts, "id", db.dialect.name), tuple(alert_row(_alert(1))), db.dialect
    )
    assert plan is not None
    sql, binds, positional = plan
    assert positional == (db.dialect.paramstyle == "qmark")
    # labels, annotations, links, transitions, notified, resolved_notified, verdict_features
    assert sum(is_json for _, is_json in binds) == 7
    assert sql.startswith("INSERT INTO alerts")


def test_rows_written_through_the_driver_read_back_as_sqlalchemy_writes_them(db: sa.Engine) -> None:
    plain = [
        _alert(1),
        _alert(2, ends_ms=None, resolve_after_ms=None, silenced_by="w1", active=False, flapping=True),
        _alert(3, transitions=[5, 6], notified={"noc", "pager"}, resolved_notified={"noc"}, ack_by="op"),
    ]
    fast = [
        _alert(
            i + 10,
            **{
                k: getattr(a, k)
                for k in (
                    "ends_ms",
                    "silenced_by",
                    "active",
                    "flapping",
                    "transitions",
                    "notified",
                    "resolved_notified",
                    "ack_by",
                    "resolve_after_ms",
                )
            },
        )
        for i, a in enumerate(plain, start=1)
    ]
    for a, b in zip(plain, fast, strict=True):
        b.labels = tuple((k, v.replace(f"sw{int(a.id, 16)}", f"sw{int(b.id, 16)}")) for k, v in a.labels)
    with db.begin() as conn:
        conn.execute(sa.insert(models.alerts), [alert_row(a) for a in plain])  # SQLAlchemy's own path
    with db.begin() as conn:
        StepWriter().rows(Step(changes=[Change(a, ChangeKind.CREATED) for a in fast])).write(conn)

    def strip(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
        return [tuple(v for i, v in enumerate(r) if i not in (0, 3, 6)) for r in rows]  # fp, labels, links

    got_plain, got_fast = _rows(db, [a.id for a in plain]), _rows(db, [a.id for a in fast])
    assert strip(got_fast) == strip(got_plain)
    assert [r[3] for r in got_fast] == [dict(b.labels) for b in fast]
    assert got_fast[0][3]["note"] == 'quote " and ü'  # type: ignore[index]

    # Updates of known alerts (the other statement) read back too, and the step's other tables.
    b = fast[0]
    b.count, b.status, b.ends_ms, b.notified = 9, AlertStatus.RESOLVED, 7000, {"noc"}
    inc = _incident("i" * 24, updated_ms=2, alert_ids={b.id}, open_alerts=set())
    log = [LogEntry("noc", 'noc:{device="sw11"}', frozenset({b.fingerprint}), 7000)]
    timeline = [
        TimelineEntry(inc.id, 7000, "alert_resolved", "sw11 résolu", "", b.id),
        TimelineEntry(inc.id, 7001, "note", "n", "op"),
    ]
    _write(
        db,
        StepWriter(),
        Step(changes=[Change(b, ChangeKind.RESOLVED)], incidents=[inc], timeline=timeline, log=log),
    )
    (row,) = AlertRepository(db).alerts_by_ids([b.id])
    assert (row.count, row.status, row.ends_ms, row.notified, row.labels) == (
        9,
        AlertStatus.RESOLVED,
        7000,
        {"noc"},
        b.labels,
    )
    with db.connect() as conn:
        resolve_owed = conn.execute(sa.select(models.alerts.c.resolve_owed).where(models.alerts.c.id == b.id))
        assert resolve_owed.scalar() is True
        firing = conn.execute(sa.select(models.notify_log.c.firing)).scalar()
        assert firing == [b.fingerprint]
    found = AlertRepository(db).incident(inc.id)
    assert found is not None and found[0].alert_ids == {b.id} and found[0].labels == (("site", "dc1"),)
    assert found[1] == timeline


def test_a_row_written_before_gets_just_the_columns_that_moved_until_the_writer_forgets(
    db: sa.Engine,
) -> None:
    writer = StepWriter()
    a, b = _alert(21), _alert(22)
    _write(db, writer, Step(changes=[Change(a, ChangeKind.CREATED), Change(b, ChangeKind.CREATED)]))
    # Written behind the writer's back: a column the next step does not move keeps this value.
    with db.begin() as conn:
        conn.execute(sa.update(models.alerts).values(severity="info", ack_by="someone"))
    a.count, a.last_seen_ms = 5, 9000  # a dedup hit
    b.count, b.status, b.notified, b.incident_id = 2, AlertStatus.ACKNOWLEDGED, {"noc"}, "i" * 24
    step = Step(changes=[Change(a, ChangeKind.UPDATED), Change(b, ChangeKind.ACKNOWLEDGED)])
    rows = writer.rows(step)
    assert [sorted(r) for r in rows.updated] == [
        ["b_id", "count", "last_seen_ms"],
        ["b_id", "count", "incident_id", "notified", "resolve_owed", "status"],  # derived: rides along
    ]
    with db.begin() as conn:
        rows.write(conn)
    got = {r.id: r for r in AlertRepository(db).alerts_by_ids([a.id, b.id])}
    assert (got[a.id].count, got[a.id].last_seen_ms, got[a.id].severity) == (5, 9000, "info")
    assert (got[b.id].count, got[b.id].status, got[b.id].notified, got[b.id].incident_id) == (
        2,
        AlertStatus.ACKNOWLEDGED,
        {"noc"},
        "i" * 24,
    )
    assert got[b.id].ack_by == "someone"
    # Nothing moved: no row at all. After forgetting (a failed write, a reload), rows go whole again.
    assert writer.rows(Step(changes=[Change(a, ChangeKind.UPDATED)])).updated == []
    writer.forget_all()
    _write(db, writer, Step(changes=[Change(a, ChangeKind.UPDATED)]))
    (row,) = AlertRepository(db).alerts_by_ids([a.id])
    assert (row.severity, row.ack_by) == ("warning", None)


def test_an_incident_written_before_gets_just_the_columns_that_moved(db: sa.Engine) -> None:
    writer = StepWriter()
    inc = _incident("j" * 24, updated_ms=1, alert_ids={"a1"}, open_alerts={"a1"})
    _write(db, writer, Step(incidents=[inc]))
    with db.begin() as conn:
        conn.execute(sa.update(models.incidents).values(assignee="op"))
    inc.open_alerts, inc.status, inc.updated_ms = set(), IncidentStatus.RESOLVED, 5
    rows = writer.rows(Step(incidents=[inc]))
    assert (rows.incidents, [sorted(r) for r in rows.incidents_updated]) == (
        [],
        [["b_id", "open_alerts", "status", "updated_ms"]],
    )
    with db.begin() as conn:
        rows.write(conn)
    found = AlertRepository(db).incident(inc.id)
    assert found is not None
    got = found[0]
    assert (got.status, got.open_alerts, got.updated_ms, got.assignee) == (
        IncidentStatus.RESOLVED,
        set(),
        5,
        "op",
    )
    # Written outside a step (an operator action): forgotten, so the next step writes it whole.
    writer.forget_incident(inc.id)
    assert [r["id"] for r in writer.rows(Step(incidents=[inc])).incidents] == [inc.id]
