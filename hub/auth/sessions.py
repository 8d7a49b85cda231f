"""Login sessions and their rotating refresh tokens (OAuth 2.0 Security BCP, refresh token rotation).

Every refresh hands out a new refresh token and marks the old one used. An old token presented again
means it was copied: the whole session (its *family*) is revoked, so neither the thief's nor the user's
tokens work any more and the user logs in again. Only the tokens' SHA-256 is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa

from hub.auth.models import auth_sessions, refresh_tokens
from hub.auth.tokens import REFRESH_PREFIX, hash_secret, new_id, new_secret


class RefreshOutcome(StrEnum):
    """What presenting a refresh token led to (the `outcome` label of the refresh counter)."""

    ROTATED = "rotated"
    UNKNOWN = "unknown"  # never issued (or its session was purged)
    REUSED = "reused"  # already rotated: the family is revoked now
    ENDED = "ended"  # its session was revoked or expired


@dataclass(frozen=True, slots=True)
class Rotation:
    """The result of a refresh: on ROTATED, the session's user and the new refresh token."""

    outcome: RefreshOutcome
    session_id: str | None = None
    user_id: str | None = None
    refresh_token: str | None = None


class Sessions:
    """Blocking accessors over the hub's engine; call them from worker threads (thread-safe: each
    rotation is one conditional UPDATE, so of two concurrent refreshes with one token only one wins)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def start(self, user_id: str, now_ms: int, ttl_ms: int) -> tuple[str, str]:
        """Opens a session for `user_id` lasting `ttl_ms`; returns its id and first refresh token."""
        session_id, token = new_id(), new_secret(REFRESH_PREFIX)
        with self._engine.begin() as db:
            db.execute(
                auth_sessions.insert().values(
                    id=session_id, user_id=user_id, created_ms=now_ms, expires_ms=now_ms + ttl_ms
                )
            )
            db.execute(
                refresh_tokens.insert().values(
                    token_hash=hash_secret(token), session_id=session_id, created_ms=now_ms
                )
            )
        return session_id, token

    def rotate(self, token: str, now_ms: int) -> Rotation:
        """Spends `token` for a new one in the same session; see the module docstring on reuse."""
        digest = hash_secret(token)
        with self._engine.begin() as db:
            # The write comes first: it takes SQLite's write lock (waiting its turn) before anything is
            # read, so a concurrent refresh cannot leave this transaction on a stale snapshot.
            spent = db.execute(
                refresh_tokens.update()
                .where((refresh_tokens.c.token_hash == digest) & refresh_tokens.c.used_ms.is_(None))
                .values(used_ms=now_ms)
            )
            session_id = db.execute(
                sa.select(refresh_tokens.c.session_id).where(refresh_tokens.c.token_hash == digest)
            ).scalar()
            if session_id is None:
                return Rotation(RefreshOutcome.UNKNOWN)
            if spent.rowcount != 1:
                self._revoke(db, auth_sessions.c.id == session_id, "refresh_reused", now_ms)
                return Rotation(RefreshOutcome.REUSED, session_id)
            session = db.execute(
                sa.select(auth_sessions.c.user_id).where(
                    (auth_sessions.c.id == session_id)
                    & auth_sessions.c.revoked_ms.is_(None)
                    & (auth_sessions.c.expires_ms > now_ms)
                )
            ).first()
            if session is None:
                return Rotation(RefreshOutcome.ENDED, session_id)
            fresh = new_secret(REFRESH_PREFIX)
            db.execute(
                refresh_tokens.insert().values(
                    token_hash=hash_secret(fresh), session_id=session_id, created_ms=now_ms
                )
            )
        return Rotation(RefreshOutcome.ROTATED, session_id, str(session.user_id), fresh)

    def is_live(self, session_id: str, now_ms: int) -> bool:
        q = sa.select(auth_sessions.c.revoked_ms, auth_sessions.c.expires_ms).where(
            auth_sessions.c.id == session_id
        )
        with self._engine.connect() as db:
            row = db.execute(q).first()
        return row is not None and row.revoked_ms is None and row.expires_ms > now_ms

    def revoke(self, session_id: str, reason: str, now_ms: int) -> bool:
        """Ends one session (logout); True when it was live."""
        with self._engine.begin() as db:
            return self._revoke(db, auth_sessions.c.id == session_id, reason, now_ms) > 0

    def revoke_user(self, user_id: str, reason: str, now_ms: int, keep: str | None = None) -> int:
        """Ends every live session of a user (password or role change, disabled), but `keep`."""
        where = auth_sessions.c.user_id == user_id
        if keep is not None:
            where = where & (auth_sessions.c.id != keep)
        with self._engine.begin() as db:
            return self._revoke(db, where, reason, now_ms)

    @staticmethod
    def _revoke(db: sa.Connection, where: sa.ColumnElement[bool], reason: str, now_ms: int) -> int:
        done = db.execute(
            auth_sessions.update()
            .where(where & auth_sessions.c.revoked_ms.is_(None))
            .values(revoked_ms=now_ms, revoked_reason=reason)
        )
        return int(done.rowcount)
