"""Login rate limits shared by every hub process on the database (`hub/auth/models.py` `rate_buckets`),
so a password guesser spreading tries over several `api` replicas meets one budget.

Revision ID: 0013_rate_buckets
Revises: 0012_webhook_deliveries
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_rate_buckets"
down_revision = "0012_webhook_deliveries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_rate_buckets"),
    )
    op.create_index("ix_rate_buckets_at_ms", "rate_buckets", ["at_ms"])


def downgrade() -> None:
    op.drop_index("ix_rate_buckets_at_ms", table_name="rate_buckets")
    op.drop_table("rate_buckets")
