"""What an attempt ended in is written to its outbox row: sent and dead are final whoever holds the lease,
a retry only while the claim still holds it, and a row no longer pending is never changed. On SQLite and
PostgreSQL, through the driver-level statements `Outbox.record` runs."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hub.notify.models import notify_outbox as t
from hub.notify.outbox import Claimed, Outbox, Outcome

pytestmark = pytest.mark.integration

ROWS = ("sent", "retry", "stale", "dead", "done")


def _seed(db: sa.Engine) -> dict[str, int]:
    """One pending row per case, leased with token `tok` (the `done` one already sent); seq by name."""
    with db.begin() as conn:
        for name in ROWS:
            conn.execute(
                sa.insert(t).values(
                    receiver="noc",
                    id=name,
                    group_hash=name,
                    payload="{}",
                    state="sent" if name == "done" else "pending",
                    attempts=0,
                    next_attempt_ms=100,
                    lease_owner="hub-a",
                    lease_token="tok",
                    created_ms=1,
                    enqueued_ms=1,
                    updated_ms=1,
                )
            )
        return dict(conn.execute(sa.select(t.c.id, t.c.seq)).tuples().all())


def _claim(seq: int, name: str, token: str = "tok") -> Claimed:
    return Claimed(seq, "noc", name, "{}", 0, 1, token)


def test_outcomes_are_written_once_and_only_where_the_rules_allow(db: sa.Engine) -> None:
    seqs = _seed(db)
    outbox = Outbox(db)
    outbox.record(
        [
            Outcome(_claim(seqs["sent"], "sent"), "sent", 1, 500),
            Outcome(
                _claim(seqs["retry"], "retry"), "pending", 1, 500, next_ms=9_000, error="503 " + "x" * 5000
            ),
            # This claim's lease ran out and another hub leased the row since: its retry is not written.
            Outcome(_claim(seqs["stale"], "stale", token="old"), "pending", 1, 500, next_ms=9_000, error="e"),
            Outcome(_claim(seqs["dead"], "dead"), "dead", 3, 500, reason="permanent", error="400 bad"),
            Outcome(_claim(seqs["done"], "done"), "dead", 2, 500, reason="permanent", error="late"),
        ]
    )
    cols = (t.c.state, t.c.attempts, t.c.next_attempt_ms, t.c.lease_owner, t.c.lease_token)
    extra = (t.c.sent_ms, t.c.dead_reason, t.c.updated_ms)
    with db.connect() as conn:
        rows = {r[0]: tuple(r[1:]) for r in conn.execute(sa.select(t.c.id, *cols, *extra))}
        error = dict(conn.execute(sa.select(t.c.id, t.c.last_error)).tuples().all())
    assert rows["sent"] == ("sent", 1, 100, None, None, 500, None, 500)
    assert rows["retry"] == ("pending", 1, 9_000, None, None, None, None, 500)
    assert rows["stale"] == ("pending", 0, 100, "hub-a", "tok", None, None, 1)
    assert rows["dead"] == ("dead", 3, 100, None, None, None, "permanent", 500)
    assert rows["done"] == ("sent", 0, 100, "hub-a", "tok", None, None, 1)
    assert error["retry"] is not None and error["retry"].startswith("503 ") and len(error["retry"]) < 5000
    assert (error["stale"], error["dead"], error["done"]) == (None, "400 bad", None)
