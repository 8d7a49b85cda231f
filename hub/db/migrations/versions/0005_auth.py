"""Identity (`hub/auth/models.py`): users, API keys, login sessions with their rotating refresh tokens,
JWT signing keys and the audit log. The admin API token of the first start becomes the API key `admin`.

Revision ID: 0005_auth
Revises: 0004_shared_ledger_commands
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_auth"
down_revision = "0004_shared_ledger_commands"
branch_labels = None
depends_on = None


def _seq() -> sa.types.TypeEngine[int]:
    """BIGINT on PostgreSQL; INTEGER on SQLite, where only that is an auto-incrementing rowid."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column("disabled_ms", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    keys = op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("scopes", sa.String(1024), nullable=True),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=True),
        sa.Column("last_used_ms", sa.BigInteger, nullable=True),
        sa.Column("revoked_ms", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("secret_hash", name="uq_api_keys_secret_hash"),
    )
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("revoked_ms", sa.BigInteger, nullable=True),
        sa.Column("revoked_reason", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_auth_sessions"),
    )
    op.create_index("ix_auth_sessions_user_id", "auth_sessions", ["user_id"])
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("used_ms", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_refresh_tokens"),
    )
    op.create_index("ix_refresh_tokens_session_id", "refresh_tokens", ["session_id"])
    op.create_table(
        "jwt_signing_keys",
        sa.Column("kid", sa.String(32), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("retire_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("kid", name="pk_jwt_signing_keys"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", _seq(), autoincrement=True, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("peer", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("before", sa.Text, nullable=True),
        sa.Column("after", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at_ms", "audit_log", ["at_ms"])
    # The admin token keeps working: same secret (its hash), now an API key of role admin.
    tokens = sa.table(
        "api_tokens",
        sa.column("name", sa.String),
        sa.column("token_hash", sa.String),
        sa.column("role", sa.String),
        sa.column("created_ms", sa.BigInteger),
    )
    conn = op.get_bind()
    rows = conn.execute(sa.select(tokens.c.name, tokens.c.token_hash, tokens.c.role, tokens.c.created_ms))
    copied = [
        {
            "id": r.name,
            "name": r.name,
            "secret_hash": r.token_hash,
            "role": r.role,
            "created_by": "hub",
            "created_ms": r.created_ms,
        }
        for r in rows
    ]
    if copied:
        op.bulk_insert(keys, copied)
    op.drop_table("api_tokens")


def downgrade() -> None:
    tokens = op.create_table(
        "api_tokens",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    keys = sa.table(
        "api_keys",
        sa.column("id"),
        sa.column("secret_hash"),
        sa.column("role"),
        sa.column("created_ms"),
        sa.column("revoked_ms"),
    )
    live = op.get_bind().execute(sa.select(keys).where(keys.c.revoked_ms.is_(None)))
    back = [
        {"name": k.id, "token_hash": k.secret_hash, "role": k.role, "created_ms": k.created_ms} for k in live
    ]
    if back:
        op.bulk_insert(tokens, back)
    for table in ("audit_log", "jwt_signing_keys", "refresh_tokens", "auth_sessions", "api_keys", "users"):
        op.drop_table(table)
