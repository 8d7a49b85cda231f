"""The store's tables in the hub's state database: batch ids and events shared by every hub process.

Used (by `hub.store.ledger.SharedLedger`) instead of the store's local SQLite ledger when several hub
processes run on one PostgreSQL: a batch redelivered to another worker is then found by its id there,
and the API process serves the events every worker stored.
"""

from __future__ import annotations

import sqlalchemy as sa

from hub.db.metadata import METADATA

_Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only

store_batches = sa.Table(
    "store_batches",
    METADATA,
    sa.Column("agent", sa.String(255), primary_key=True),
    sa.Column("boot_epoch", sa.BigInteger, primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    # When it was stored: ids older than the dedup window are forgotten by the retention job.
    sa.Column("stored_ms", sa.BigInteger, nullable=False, index=True),
)

store_events = sa.Table(
    "store_events",
    METADATA,
    sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
    sa.Column("agent", sa.String(255), nullable=False),
    sa.Column("ts_ms", sa.BigInteger, nullable=False, index=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("severity", sa.Integer, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("attributes", sa.JSON, nullable=False),
)
