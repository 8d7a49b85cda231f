"""The log store's tables (on the hub's one MetaData): raw lines, their templates, and the batch ids stored.

Full-text search lives beside `log_lines` in objects SQLAlchemy cannot model, which the migrations create
per dialect: on SQLite an external-content FTS5 table (filled by the store per batch, emptied by a delete
trigger), on PostgreSQL a generated `tsvector` column with a GIN index. `SEARCH_OBJECTS` names them so
the schema drift check skips them.
"""

from __future__ import annotations

import sqlalchemy as sa

from hub.db.metadata import METADATA

_Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only

FTS_TABLE = "log_lines_fts"  # SQLite: FTS5 over log_lines.message, rowid = log_lines.id
TSV_COLUMN = "search"  # PostgreSQL: to_tsvector('simple', message), generated and stored
TSV_INDEX = "ix_log_lines_search"
# FTS5 keeps its index in shadow tables named after the virtual table.
SEARCH_OBJECTS = frozenset(
    {
        FTS_TABLE,
        *(f"{FTS_TABLE}_{part}" for part in ("data", "idx", "docsize", "config", "content")),
        TSV_COLUMN,
        TSV_INDEX,
    }
)

log_lines = sa.Table(
    "log_lines",
    METADATA,
    sa.Column("id", _Seq, primary_key=True, autoincrement=True),
    sa.Column("ts_ms", sa.BigInteger, nullable=False),
    sa.Column("received_ms", sa.BigInteger, nullable=False),
    # The sending agent's certificate identity, never what the line claims.
    sa.Column("agent", sa.String(255), nullable=False),
    sa.Column("device", sa.Text, nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("app", sa.Text, nullable=False),
    sa.Column("facility", sa.SmallInteger, nullable=False),
    sa.Column("severity", sa.SmallInteger, nullable=False),
    sa.Column("template_id", sa.String(32), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    # Pages are read newest first by (ts, id); filters by agent or template narrow a time range.
    sa.Index("ix_log_lines_ts_ms_id", "ts_ms", "id"),
    sa.Index("ix_log_lines_agent_ts_ms", "agent", "ts_ms"),
    sa.Index("ix_log_lines_template_id_ts_ms", "template_id", "ts_ms"),
)

log_templates = sa.Table(
    "log_templates",
    METADATA,
    sa.Column("template_id", sa.String(32), primary_key=True),
    sa.Column("template", sa.Text, nullable=False),
    sa.Column("first_seen_ms", sa.BigInteger, nullable=False),
    sa.Column("last_seen_ms", sa.BigInteger, nullable=False, index=True),
    # Lines stored with this template: counted in the transaction that stores them, so exact.
    sa.Column("count", sa.BigInteger, nullable=False),
)

# Batch ids whose lines are stored: the series store has its own ledger, but a batch it stored whose
# lines failed to commit comes back as a duplicate there and must still get its lines here, once.
log_batches = sa.Table(
    "log_batches",
    METADATA,
    sa.Column("agent", sa.String(255), primary_key=True),
    sa.Column("boot_epoch", sa.BigInteger, primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("stored_ms", sa.BigInteger, nullable=False, index=True),
)
