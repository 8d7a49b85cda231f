"""Delivery ids of signed webhooks (`hub/ingest/sources/deliveries.py`) move from each process's memory to
the state database, so a replayed Sentry or generic delivery is refused by whichever `api` process it
reaches.

Revision ID: 0012_webhook_deliveries
Revises: 0011_log_fts_explicit
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_webhook_deliveries"
down_revision = "0011_log_fts_explicit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_webhook_deliveries"),
    )
    op.create_index("ix_webhook_deliveries_expires_ms", "webhook_deliveries", ["expires_ms"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_expires_ms", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
