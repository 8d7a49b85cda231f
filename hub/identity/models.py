"""The enrollment tables (on the hub's one MetaData): tokens, the audit log, certificates, revocations."""

from __future__ import annotations

import sqlalchemy as sa

from hub.db.metadata import METADATA

tokens = sa.Table(
    "enroll_tokens",
    METADATA,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=False),
    sa.Column("max_uses", sa.Integer, nullable=False),
    sa.Column("uses", sa.Integer, nullable=False, default=0),
    sa.Column("revoked_ms", sa.BigInteger, nullable=True),
)

audit = sa.Table(
    "enroll_audit",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at_ms", sa.BigInteger, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("token_id", sa.String(32), nullable=False),
    sa.Column("agent", sa.String(160), nullable=False),
    sa.Column("peer", sa.String(80), nullable=False),
    sa.Column("outcome", sa.String(24), nullable=False),
)

certificates = sa.Table(
    "agent_certificates",
    METADATA,
    sa.Column("serial", sa.String(48), primary_key=True),
    sa.Column("agent", sa.String(160), nullable=False, index=True),
    sa.Column("issued_ms", sa.BigInteger, nullable=False),
    sa.Column("not_after_ms", sa.BigInteger, nullable=False),
)

revoked_agents = sa.Table(
    "revoked_agents",
    METADATA,
    sa.Column("agent", sa.String(160), primary_key=True),
    sa.Column("revoked_ms", sa.BigInteger, nullable=False),
)
