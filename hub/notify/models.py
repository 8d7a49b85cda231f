"""The notification outbox table, on the hub's one MetaData (the Alembic migration is made from this).

One row per (receiver, notification id): written by `submit`/`submit_in`, leased by the hub sending it,
then `sent` or `dead` (dead-lettered, with the reason and the scrubbed last error). `seq` orders rows:
a receiver is sent a group's notifications one at a time, oldest first, so a resolve never overtakes
the firing notification it answers.
"""

from __future__ import annotations

import sqlalchemy as sa

from hub.db.metadata import METADATA

_Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only

STATES = ("pending", "sent", "dead")

notify_outbox = sa.Table(
    "notify_outbox",
    METADATA,
    sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
    sa.Column("receiver", sa.String(200), nullable=False),
    sa.Column("id", sa.String(255), nullable=False),
    # sha256 of the group key: rows of one group are sent in order, and the key itself may be long.
    sa.Column("group_hash", sa.String(64), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_ms", sa.BigInteger, nullable=False),
    # Which hub is sending the row right now (until next_attempt_ms), and for which claim.
    sa.Column("lease_owner", sa.String(200), nullable=True),
    sa.Column("lease_token", sa.String(32), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("dead_reason", sa.String(32), nullable=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("enqueued_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Column("sent_ms", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("receiver", "id"),
    sa.CheckConstraint("state IN ('pending', 'sent', 'dead')", name="state"),
    sa.Index(None, "receiver", "state", "next_attempt_ms"),
    sa.Index(None, "receiver", "group_hash", "state", "seq"),
    sa.Index(None, "lease_token"),
)
