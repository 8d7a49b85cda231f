"""Who is calling: the value every authenticated request, WebSocket or CLI action carries."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PrincipalKind(StrEnum):
    """How the caller proved who it is."""

    USER = "user"  # a JWT access token from /api/v1/auth/login
    KEY = "key"  # an API key (programs; the admin token of the first start is one)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    `name` is what is recorded as the actor (acknowledged by, audit `who`); `id` is the user's or key's
    id; `expires_ms` is when the credential stops being valid (None: an API key without expiry), so a
    long-lived connection can close itself then; `session_id` is the login session of a user token.
    """

    kind: PrincipalKind
    id: str
    name: str
    role: str
    scopes: frozenset[str]
    expires_ms: int | None
    session_id: str | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def actor(self) -> str:
        """How the audit log names this caller: `user:alice`, `key:ci-exporter`."""
        return f"{self.kind.value}:{self.name}"
