"""Baseline: the eight tables the hub made with `create_all` before Alembic (hub state and enrollment).

Exactly their DDL, constraint names included (none: the database picks them), so a data dir made
before Alembic is stamped at this revision and is then the same as a fresh one. Revision 0003 gives
the constraints the names of METADATA's convention on both.

Revision ID: 0001_baseline
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("first_seen_ms", sa.BigInteger, nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger, nullable=False),
        sa.Column("points_received", sa.BigInteger, nullable=False),
        sa.Column("batches_received", sa.BigInteger, nullable=False),
        sa.Column("duplicates", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "agent_epochs",
        sa.Column("agent", sa.String(255), nullable=False),
        sa.Column("boot_epoch", sa.BigInteger, nullable=False),
        sa.Column("max_seq", sa.BigInteger, nullable=False),
        sa.Column("received", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("agent", "boot_epoch"),
    )
    op.create_table(
        "seen_batches",
        sa.Column("agent", sa.String(255), nullable=False),
        sa.Column("boot_epoch", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("seen_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("agent", "boot_epoch", "seq"),
    )
    op.create_index("ix_seen_batches_seen_ms", "seen_batches", ["seen_ms"])
    op.create_table(
        "api_tokens",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "enroll_tokens",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("max_uses", sa.Integer, nullable=False),
        sa.Column("uses", sa.Integer, nullable=False),
        sa.Column("revoked_ms", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "enroll_audit",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("agent", sa.String(160), nullable=False),
        sa.Column("peer", sa.String(80), nullable=False),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "agent_certificates",
        sa.Column("serial", sa.String(48), nullable=False),
        sa.Column("agent", sa.String(160), nullable=False),
        sa.Column("issued_ms", sa.BigInteger, nullable=False),
        sa.Column("not_after_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("serial"),
    )
    op.create_index("ix_agent_certificates_agent", "agent_certificates", ["agent"])
    op.create_table(
        "revoked_agents",
        sa.Column("agent", sa.String(160), nullable=False),
        sa.Column("revoked_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("agent"),
    )


def downgrade() -> None:
    for table in (
        "revoked_agents",
        "agent_certificates",
        "enroll_audit",
        "enroll_tokens",
        "api_tokens",
        "seen_batches",
        "agent_epochs",
        "agents",
    ):
        op.drop_table(table)
