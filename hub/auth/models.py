"""The auth package's tables (on the hub's one MetaData); other packages reach them through `ApiTokens`."""

from __future__ import annotations

import sqlalchemy as sa

from hub.db.metadata import METADATA

api_tokens = sa.Table(
    "api_tokens",
    METADATA,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)
