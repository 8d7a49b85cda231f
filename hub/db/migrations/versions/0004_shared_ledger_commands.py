"""The store's batch ids and events in the shared state database (`hub/store/models.py`), for hubs run
as `api` + N `worker` processes, and the outcome of operator commands the alert engine executed for an
api process (`hub/alerts/command_models.py`).

Revision ID: 0004_shared_ledger_commands
Revises: 0003_constraint_names
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_shared_ledger_commands"
down_revision = "0003_constraint_names"
branch_labels = None
depends_on = None


def _seq() -> sa.types.TypeEngine[int]:
    """BIGINT on PostgreSQL; INTEGER on SQLite, where only that is an auto-incrementing rowid."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "store_batches",
        sa.Column("agent", sa.String(255), nullable=False),
        sa.Column("boot_epoch", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("stored_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("agent", "boot_epoch", "seq", name="pk_store_batches"),
    )
    op.create_index("ix_store_batches_stored_ms", "store_batches", ["stored_ms"])
    op.create_table(
        "store_events",
        sa.Column("seq", _seq(), autoincrement=True, nullable=False),
        sa.Column("agent", sa.String(255), nullable=False),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("severity", sa.Integer, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_store_events"),
    )
    op.create_index("ix_store_events_ts_ms", "store_events", ["ts_ms"])
    op.create_table(
        "alert_commands",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("done_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_commands"),
    )
    op.create_index("ix_alert_commands_done_ms", "alert_commands", ["done_ms"])


def downgrade() -> None:
    op.drop_table("alert_commands")
    op.drop_table("store_events")
    op.drop_table("store_batches")
