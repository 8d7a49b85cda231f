"""The log store fills its SQLite FTS5 index with one INSERT ... SELECT per batch instead of a trigger per
line (a third of the cost per line, bench/log_store.py): the insert trigger of 0008 goes. The delete
trigger stays (retention deletes in chunks, off the ingest path). PostgreSQL: nothing to change.

Revision ID: 0011_log_fts_explicit
Revises: 0010_template_classes
"""

from __future__ import annotations

from alembic import op

revision = "0011_log_fts_explicit"
down_revision = "0010_template_classes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER IF EXISTS log_lines_fts_insert")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute(
            "CREATE TRIGGER log_lines_fts_insert AFTER INSERT ON log_lines BEGIN"
            " INSERT INTO log_lines_fts (rowid, message) VALUES (new.id, new.message); END"
        )
