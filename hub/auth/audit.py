"""The audit log: who changed what, when, from where, with the state before and after.

Identity changes (users, keys, logins, logouts, refresh-token reuse) are recorded by the auth service
with their before/after; every other change made through the API is recorded by the API's audit
middleware (`hub/api/audit_middleware.py`) with the answer as `after`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from hub.auth.models import audit_log

# before/after are kept for reading, not as a copy of the data: bounded per entry.
MAX_STATE_CHARS = 4096
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded change. `before`/`after` are JSON texts (None where there is no such state)."""

    id: int
    at_ms: int
    actor: str
    action: str
    target: str
    peer: str
    outcome: str
    before: str | None
    after: str | None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "at_ms": self.at_ms,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "peer": self.peer,
            "outcome": self.outcome,
            "before": _load(self.before),
            "after": _load(self.after),
        }


def _load(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:  # cut at MAX_STATE_CHARS
        return text


def state_text(state: Any) -> str | None:
    """`state` as the JSON text an entry keeps, cut to MAX_STATE_CHARS."""
    if state is None:
        return None
    text = state if isinstance(state, str) else json.dumps(state, sort_keys=True, default=str)
    return text[:MAX_STATE_CHARS]


class AuditLog:
    """Blocking accessors over the hub's engine; call them from worker threads."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def record(
        self,
        at_ms: int,
        actor: str,
        action: str,
        target: str,
        peer: str,
        outcome: str,
        before: Any = None,
        after: Any = None,
    ) -> None:
        with self._engine.begin() as db:
            db.execute(
                audit_log.insert().values(
                    at_ms=at_ms,
                    actor=actor[:128],
                    action=action[:64],
                    target=target[:255],
                    peer=peer[:64],
                    outcome=outcome[:16],
                    before=state_text(before),
                    after=state_text(after),
                )
            )

    def entries(
        self,
        limit: int = 100,
        before_id: int | None = None,
        actor: str | None = None,
        action: str | None = None,
    ) -> list[AuditEntry]:
        """Newest first; `before_id` pages back; `action` matches a prefix (`user.`, `POST`)."""
        q = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(min(max(limit, 1), MAX_LIMIT))
        if before_id is not None:
            q = q.where(audit_log.c.id < before_id)
        if actor is not None:
            q = q.where(audit_log.c.actor == actor)
        if action is not None:
            q = q.where(audit_log.c.action.startswith(action, autoescape=True))
        with self._engine.connect() as db:
            return [AuditEntry(*r) for r in db.execute(q)]
