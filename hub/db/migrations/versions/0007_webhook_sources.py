"""Webhook sources (`hub/ingest/sources/models.py`): the senders of `/webhooks/generic/{source_id}`
with their signature scheme and field mapping, and their signing secrets (at most two active).

Revision ID: 0007_webhook_sources
Revises: 0006_confirm_verdict
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_webhook_sources"
down_revision = "0006_confirm_verdict"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_sources",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("preset", sa.String(32), nullable=True),
        sa.Column("signature", sa.JSON, nullable=False),
        sa.Column("mapping", sa.JSON, nullable=True),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_sources"),
    )
    op.create_table(
        "webhook_source_secrets",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("source_id", sa.String(64), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("hint", sa.String(8), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("retired_ms", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_source_secrets"),
    )
    op.create_index("ix_webhook_source_secrets_source_id", "webhook_source_secrets", ["source_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_source_secrets_source_id", table_name="webhook_source_secrets")
    op.drop_table("webhook_source_secrets")
    op.drop_table("webhook_sources")
