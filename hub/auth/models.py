"""The auth package's tables (on the hub's one MetaData); other packages reach them through its services."""

from __future__ import annotations

import sqlalchemy as sa

from hub.db.metadata import METADATA


def _seq() -> sa.types.TypeEngine[int]:
    """BIGINT on PostgreSQL; INTEGER on SQLite, where only that is an auto-incrementing rowid."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


users = sa.Table(
    "users",
    METADATA,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Column("disabled_ms", sa.BigInteger, nullable=True),
)

# API keys: only the SHA-256 of the secret is kept (the secret has 256 random bits, so a fast hash is
# enough and keeps the per-request check cheap). `scopes` narrows the role's bundle (space separated).
api_keys = sa.Table(
    "api_keys",
    METADATA,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("scopes", sa.String(1024), nullable=True),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=True),
    sa.Column("last_used_ms", sa.BigInteger, nullable=True),
    sa.Column("revoked_ms", sa.BigInteger, nullable=True),
)

# A login session: the family of refresh tokens one login rotates through. Access tokens name it (`sid`),
# so revoking it (logout, reuse of a rotated refresh token, password change) ends them too.
auth_sessions = sa.Table(
    "auth_sessions",
    METADATA,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(32), nullable=False, index=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=False),
    sa.Column("revoked_ms", sa.BigInteger, nullable=True),
    sa.Column("revoked_reason", sa.String(32), nullable=True),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    METADATA,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("session_id", sa.String(32), nullable=False, index=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("used_ms", sa.BigInteger, nullable=True),
)

# JWT signing keys, shared by every API process through the state database (so a token issued by one
# replica verifies on all); the newest signs, older ones verify until `retire_ms`.
signing_keys = sa.Table(
    "jwt_signing_keys",
    METADATA,
    sa.Column("kid", sa.String(32), primary_key=True),
    sa.Column("secret", sa.String(128), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("retire_ms", sa.BigInteger, nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    METADATA,
    sa.Column("id", _seq(), primary_key=True, autoincrement=True),
    sa.Column("at_ms", sa.BigInteger, nullable=False, index=True),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(255), nullable=False),
    sa.Column("peer", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("before", sa.Text, nullable=True),
    sa.Column("after", sa.Text, nullable=True),
)

# Token buckets every hub process on the database shares (`hub.auth.ratelimit.SharedRateLimiter`): the
# login limits, so a password guesser spreading tries over several `api` replicas still meets one budget.
# `key` is a SHA-256 hex of limit name and key, so no user name or address is stored here; `name` is the
# limit's, so each limit prunes only its own idle buckets (their refill times differ).
rate_buckets = sa.Table(
    "rate_buckets",
    METADATA,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(32), nullable=False),
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("at_ms", sa.BigInteger, nullable=False, index=True),
)
