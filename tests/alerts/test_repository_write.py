"""How a step's alerts are written: created ones whole, known ones without the columns fixed at creation
(just those that moved once the writer wrote them), and a known alert whose row is missing (never
written, deleted by hand) upserted whole instead."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hub.alerts import models
from hub.alerts.core import Step
from hub.alerts.engine import Change, ChangeKind
from hub.alerts.model import Alert, AlertStatus
from hub.alerts.repository import AlertRepository
from hub.alerts.written import StepWriter

pytestmark = pytest.mark.integration


def _alert(i: int) -> Alert:
    return Alert(
        id=f"{i:024x}",
        fingerprint=f"fp{i:014d}",
        labels=(("alertname", "LinkDown"), ("device", f"sw{i}")),
        annotations=(("summary", "down"),),
        severity="warning",
        source="snmp-trap",
        status=AlertStatus.FIRING,
        starts_ms=1000,
        first_seen_ms=1000,
        last_seen_ms=1000,
        links=(("event", f"e{i}"),),
    )


def _write(db: sa.Engine, *changes: Change, writer: StepWriter | None = None) -> None:
    with db.begin() as conn:
        (writer or StepWriter()).rows(Step(changes=list(changes))).write(conn)


def test_a_repeat_updates_the_row_in_place_and_keeps_what_was_fixed_at_creation(db: sa.Engine) -> None:
    a = _alert(1)
    _write(db, Change(a, ChangeKind.CREATED))
    a.count, a.last_seen_ms, a.annotations = 7, 5000, (("summary", "still down"),)
    a.status, a.ends_ms, a.active = AlertStatus.RESOLVED, 6000, False
    _write(db, Change(a, ChangeKind.UPDATED), Change(a, ChangeKind.RESOLVED))
    (row,) = AlertRepository(db).alerts_by_ids([a.id])
    assert (row.count, row.last_seen_ms, row.status, row.ends_ms, row.active) == (
        7,
        5000,
        AlertStatus.RESOLVED,
        6000,
        False,
    )
    assert row.annotations == (("summary", "still down"),)
    assert (row.labels, row.links, row.fingerprint, row.starts_ms, row.source) == (
        a.labels,
        a.links,
        "fp00000000000001",
        1000,
        "snmp-trap",
    )


def test_a_known_alert_without_a_row_is_written_whole_with_the_others_in_its_step(db: sa.Engine) -> None:
    present, missing = _alert(1), _alert(2)
    writer = StepWriter()  # it wrote them both: a repeat is two columns, the fallback writes the row whole
    _write(db, Change(present, ChangeKind.CREATED), Change(missing, ChangeKind.CREATED), writer=writer)
    with db.begin() as conn:
        conn.execute(sa.delete(models.alerts).where(models.alerts.c.id == missing.id))
    present.count = missing.count = 3
    _write(db, Change(present, ChangeKind.UPDATED), Change(missing, ChangeKind.UPDATED), writer=writer)
    rows = {r.id: r for r in AlertRepository(db).alerts_by_ids([present.id, missing.id])}
    assert sorted(rows) == sorted([present.id, missing.id])
    assert [rows[x.id].count for x in (present, missing)] == [3, 3]
    assert rows[missing.id].labels == missing.labels and rows[missing.id].links == missing.links
