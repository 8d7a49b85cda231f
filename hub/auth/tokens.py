"""API tokens: created once for the admin, checked by their hash, naming the caller (name and role)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from hub.auth.models import api_tokens
from hub.db.sql import insert_ignore

ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class CallerInfo:
    """Who made an API request: the token's name (recorded, e.g., as who acknowledged an alert) and role."""

    name: str
    role: str


def hash_secret(secret: str) -> str:
    """How API and enrollment tokens are stored: only their SHA-256, compared in constant time."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokens:
    """Blocking accessors over the hub's engine; call them from worker threads."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def ensure_admin_token(self, now_ms: int) -> str | None:
        """Creates the admin API token on first start. Returns it once (then only its hash is kept)."""
        token = "opt_" + secrets.token_urlsafe(32)
        with self._engine.begin() as db:  # hubs starting together on one database: exactly one creates it
            new = insert_ignore(
                db, api_tokens, name=ADMIN, token_hash=hash_secret(token), role=ADMIN, created_ms=now_ms
            )
        return token if new else None

    def check_token(self, token: str) -> CallerInfo | None:
        """Returns who holds a valid token, else None.

        Looked up by the token's SHA-256 on a unique index: timing reveals nothing about the token itself.
        """
        q = sa.select(api_tokens.c.name, api_tokens.c.role).where(
            api_tokens.c.token_hash == hash_secret(token)
        )
        with self._engine.connect() as db:
            row = db.execute(q).first()
        return None if row is None else CallerInfo(str(row.name), str(row.role))
