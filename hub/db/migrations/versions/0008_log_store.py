"""The log store (`hub/enrich/logs/models.py`): raw lines, templates, stored batch ids, and full-text search
(SQLite: an external-content FTS5 table and its triggers; PostgreSQL: a generated tsvector and a GIN index).

Revision ID: 0008_log_store
Revises: 0007_webhook_sources
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_log_store"
down_revision = "0007_webhook_sources"
branch_labels = None
depends_on = None


def _seq() -> sa.types.TypeEngine[int]:
    """BIGINT on PostgreSQL; INTEGER on SQLite, where only that is an auto-incrementing rowid."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "log_lines",
        sa.Column("id", _seq(), autoincrement=True, nullable=False),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("received_ms", sa.BigInteger, nullable=False),
        sa.Column("agent", sa.String(255), nullable=False),
        sa.Column("device", sa.Text, nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("app", sa.Text, nullable=False),
        sa.Column("facility", sa.SmallInteger, nullable=False),
        sa.Column("severity", sa.SmallInteger, nullable=False),
        sa.Column("template_id", sa.String(32), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_log_lines"),
    )
    op.create_index("ix_log_lines_ts_ms_id", "log_lines", ["ts_ms", "id"])
    op.create_index("ix_log_lines_agent_ts_ms", "log_lines", ["agent", "ts_ms"])
    op.create_index("ix_log_lines_template_id_ts_ms", "log_lines", ["template_id", "ts_ms"])
    op.create_table(
        "log_templates",
        sa.Column("template_id", sa.String(32), nullable=False),
        sa.Column("template", sa.Text, nullable=False),
        sa.Column("first_seen_ms", sa.BigInteger, nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("template_id", name="pk_log_templates"),
    )
    op.create_index("ix_log_templates_last_seen_ms", "log_templates", ["last_seen_ms"])
    op.create_table(
        "log_batches",
        sa.Column("agent", sa.String(255), nullable=False),
        sa.Column("boot_epoch", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("stored_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("agent", "boot_epoch", "seq", name="pk_log_batches"),
    )
    op.create_index("ix_log_batches_stored_ms", "log_batches", ["stored_ms"])
    if op.get_bind().dialect.name == "postgresql":
        # 'simple': no stemming or stop words, so device names, codes and words of any language match.
        op.execute(
            "ALTER TABLE log_lines ADD COLUMN search tsvector"
            " GENERATED ALWAYS AS (to_tsvector('simple', message)) STORED"
        )
        op.execute("CREATE INDEX ix_log_lines_search ON log_lines USING GIN (search)")
    else:
        # External content: the text is stored once (in log_lines); the triggers keep the index in step.
        # Lines are never updated, only inserted and pruned, so no UPDATE trigger.
        op.execute(
            "CREATE VIRTUAL TABLE log_lines_fts USING fts5(message, content='log_lines', content_rowid='id')"
        )
        op.execute(
            "CREATE TRIGGER log_lines_fts_insert AFTER INSERT ON log_lines BEGIN"
            " INSERT INTO log_lines_fts (rowid, message) VALUES (new.id, new.message); END"
        )
        op.execute(
            "CREATE TRIGGER log_lines_fts_delete AFTER DELETE ON log_lines BEGIN"
            " INSERT INTO log_lines_fts (log_lines_fts, rowid, message)"
            " VALUES ('delete', old.id, old.message); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER IF EXISTS log_lines_fts_delete")
        op.execute("DROP TRIGGER IF EXISTS log_lines_fts_insert")
        op.execute("DROP TABLE IF EXISTS log_lines_fts")
    op.drop_table("log_batches")
    op.drop_table("log_templates")
    op.drop_table("log_lines")
