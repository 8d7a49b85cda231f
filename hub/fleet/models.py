"""The fleet package's tables (on the hub's one MetaData); other packages reach them through `Fleet`."""

from __future__ import annotations

import sqlalchemy as sa

from hub.db.metadata import METADATA

agents = sa.Table(
    "agents",
    METADATA,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("first_seen_ms", sa.BigInteger, nullable=False),
    sa.Column("last_seen_ms", sa.BigInteger, nullable=False),
    sa.Column("points_received", sa.BigInteger, nullable=False, default=0),
    sa.Column("batches_received", sa.BigInteger, nullable=False, default=0),
    sa.Column("duplicates", sa.BigInteger, nullable=False, default=0),
)

agent_epochs = sa.Table(
    "agent_epochs",
    METADATA,
    sa.Column("agent", sa.String(255), primary_key=True),
    sa.Column("boot_epoch", sa.BigInteger, primary_key=True),
    sa.Column("max_seq", sa.BigInteger, nullable=False),
    sa.Column("received", sa.BigInteger, nullable=False),
)

# Batch ids the counters above already include: makes counting idempotent on its own, so a hub killed
# between the store write and this bookkeeping still counts the re-sent batch (which the store then
# reports as a duplicate) exactly once. Rows are kept for the delivery contract's dedup window (agents
# never replay a batch older than that: their spool age is validated against the same constant).
seen_batches = sa.Table(
    "seen_batches",
    METADATA,
    sa.Column("agent", sa.String(255), primary_key=True),
    sa.Column("boot_epoch", sa.BigInteger, primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("seen_ms", sa.BigInteger, nullable=False, index=True),
)
