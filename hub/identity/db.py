"""Enrollment state in the hub's SQL database: tokens, the audit log, issued certificates, revocations.

The tables are in `hub.identity.models`; migrations create them (`hub.db.migrate`).

Token secrets are stored as SHA-256 hashes only; a token is consumed in the same transaction that checks
it (and the enrolling agent's revocation), so two agents racing for the last use cannot both get it and a
revoked agent's attempt costs the token nothing.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import Enum

import sqlalchemy as sa

from hub.auth.tokens import hash_secret
from hub.identity.models import audit, certificates, revoked_agents, tokens


class TokenCheck(Enum):
    """Why a token was accepted or refused (the audit log's `outcome`)."""

    OK = "ok"
    UNKNOWN = "unknown_token"
    EXPIRED = "expired"
    USED_UP = "used_up"
    REVOKED = "revoked"
    AGENT_REVOKED = "agent_revoked"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    site: str
    created_ms: int
    expires_ms: int
    max_uses: int
    uses: int
    revoked_ms: int | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at_ms: int
    action: str
    token_id: str
    agent: str
    peer: str
    outcome: str


class EnrollState:
    """Blocking accessors over the hub's state engine; call them from worker threads."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def add_token(self, token_id: str, secret: str, site: str, now_ms: int, ttl_ms: int, uses: int) -> None:
        with self._engine.begin() as db:
            db.execute(
                tokens.insert().values(
                    id=token_id,
                    secret_hash=hash_secret(secret),
                    site=site,
                    created_ms=now_ms,
                    expires_ms=now_ms + ttl_ms,
                    max_uses=uses,
                    uses=0,
                )
            )

    def consume_token(
        self, token_id: str, secret: str, now_ms: int, agent_name: str | None = None
    ) -> tuple[TokenCheck, str]:
        """Checks a token and, when valid, uses it up by one. Returns the verdict and the token's site.

        With `agent_name`, the identity `<token site>/<agent_name>` is checked against the revoked agents
        before the use is taken: a revoked agent's attempt is refused (AGENT_REVOKED) and leaves the
        token's remaining uses unchanged.
        """
        with self._engine.begin() as db:
            row = db.execute(sa.select(tokens).where(tokens.c.id == token_id)).first()
            if row is None or not hmac.compare_digest(row.secret_hash, hash_secret(secret)):
                return TokenCheck.UNKNOWN, ""
            if row.revoked_ms is not None:
                return TokenCheck.REVOKED, row.site
            if now_ms >= row.expires_ms:
                return TokenCheck.EXPIRED, row.site
            if agent_name is not None:
                identity = f"{row.site}/{agent_name}"
                q = sa.select(revoked_agents.c.agent).where(revoked_agents.c.agent == identity)
                if db.execute(q).first() is not None:
                    return TokenCheck.AGENT_REVOKED, row.site
            done = db.execute(
                tokens.update()
                .where((tokens.c.id == token_id) & (tokens.c.uses < tokens.c.max_uses))
                .values(uses=tokens.c.uses + 1)
            )
            if done.rowcount != 1:
                return TokenCheck.USED_UP, row.site
            return TokenCheck.OK, row.site

    def revoke_token(self, token_id: str, now_ms: int) -> bool:
        with self._engine.begin() as db:
            done = db.execute(
                tokens.update()
                .where((tokens.c.id == token_id) & tokens.c.revoked_ms.is_(None))
                .values(revoked_ms=now_ms)
            )
            return bool(done.rowcount)

    def list_tokens(self) -> list[TokenInfo]:
        cols = [
            tokens.c[n] for n in ("id", "site", "created_ms", "expires_ms", "max_uses", "uses", "revoked_ms")
        ]
        with self._engine.connect() as db:
            return [TokenInfo(*row) for row in db.execute(sa.select(*cols).order_by(tokens.c.created_ms))]

    def record(self, now_ms: int, action: str, token_id: str, agent: str, peer: str, outcome: str) -> None:
        """Appends one audit entry; every enrollment and renewal attempt gets one, refused ones too."""
        with self._engine.begin() as db:
            db.execute(
                audit.insert().values(
                    at_ms=now_ms, action=action, token_id=token_id, agent=agent, peer=peer, outcome=outcome
                )
            )

    def audit_log(self, limit: int = 1000) -> list[AuditEntry]:
        cols = [audit.c[n] for n in ("at_ms", "action", "token_id", "agent", "peer", "outcome")]
        with self._engine.connect() as db:
            rows = db.execute(sa.select(*cols).order_by(audit.c.id.desc()).limit(limit)).all()
        return [AuditEntry(*row) for row in reversed(rows)]

    def add_certificate(self, serial: str, agent: str, issued_ms: int, not_after_ms: int) -> None:
        with self._engine.begin() as db:
            db.execute(
                certificates.insert().values(
                    serial=serial, agent=agent, issued_ms=issued_ms, not_after_ms=not_after_ms
                )
            )

    def enrolled_agents(self) -> list[str]:
        """Agents holding a certificate, revoked ones excluded (for the NATS authorization list)."""
        q = (
            sa.select(certificates.c.agent)
            .distinct()
            .where(certificates.c.agent.not_in(sa.select(revoked_agents.c.agent)))
            .order_by(certificates.c.agent)
        )
        with self._engine.connect() as db:
            return [str(a) for (a,) in db.execute(q)]

    def revoke_agent(self, agent: str, now_ms: int) -> bool:
        with self._engine.begin() as db:
            if db.execute(sa.select(revoked_agents.c.agent).where(revoked_agents.c.agent == agent)).first():
                return False
            db.execute(revoked_agents.insert().values(agent=agent, revoked_ms=now_ms))
            return True

    def revoked(self) -> set[str]:
        with self._engine.connect() as db:
            return {str(a) for (a,) in db.execute(sa.select(revoked_agents.c.agent))}
