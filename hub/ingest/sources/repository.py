"""Webhook sources in the hub's database: created, changed, deleted, and their secrets rotated and retired.

Blocking accessors over the hub's engine: call them from worker threads (they are thread-safe). A secret
leaves this module twice only: in the answer to the call that made it (`create`, `rotate`), once, and
to the receiver checking a signature (`signing`); every other answer carries its hint alone. A retired
secret's row keeps its id, hint and times, not the secret.
"""

from __future__ import annotations

import secrets as random
import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from hub.auth.tokens import new_id
from hub.ingest.sources.models import webhook_source_secrets, webhook_sources

SECRET_PREFIX = "whs_"
MAX_ACTIVE_SECRETS = 2
MAX_SOURCES = 1000
HINT_CHARS = 4
RETIRED_KEPT = 8  # retired secrets listed per source, newest first; older rows are deleted
# What may change after creation (the id and the secrets have their own calls).
CHANGEABLE = frozenset({"name", "kind", "preset", "signature", "mapping"})


class SourceError(Exception):
    """Raised for a change the sources refuse: an unknown source or secret (404), an id taken or a limit
    reached (409); `status` is the HTTP answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """A signing secret as listings show it: never the secret, its last characters only."""

    id: str
    hint: str
    created_ms: int
    retired_ms: int | None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "hint": "..." + self.hint,
            "created_ms": self.created_ms,
            "retired_ms": self.retired_ms,
            "active": self.retired_ms is None,
        }


@dataclass(frozen=True, slots=True)
class Source:
    """A source's settings (`signature` and `mapping` as validated by the API) and its active secrets."""

    id: str
    name: str
    kind: str
    preset: str | None
    signature: dict[str, Any]
    mapping: dict[str, Any] | None
    created_by: str
    created_ms: int
    updated_ms: int
    secrets: tuple[SecretInfo, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "preset": self.preset,
            "signature": self.signature,
            "mapping": self.mapping,
            "created_by": self.created_by,
            "created_ms": self.created_ms,
            "updated_ms": self.updated_ms,
            "secrets": [s.as_json() for s in self.secrets],
        }


class WebhookSources:
    """The sources table and its secrets; changes are serialized in this process by one lock."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()

    def create(self, fields: dict[str, Any], actor: str, now_ms: int) -> tuple[Source, str, str]:
        """Stores a new source with its first secret; returns it, the secret's id and the secret (shown
        this once).

        Raises:
            SourceError: 409 when the id is taken or `MAX_SOURCES` exist.
        """
        with self._lock, self._engine.begin() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(webhook_sources)).scalar_one()
            if count >= MAX_SOURCES:
                raise SourceError(409, f"at most {MAX_SOURCES} webhook sources")
            taken = conn.execute(sa.select(webhook_sources.c.id).where(webhook_sources.c.id == fields["id"]))
            if taken.first() is not None:
                raise SourceError(409, f"webhook source {fields['id']!r} exists")
            conn.execute(
                webhook_sources.insert().values(
                    **{k: fields.get(k) for k in CHANGEABLE | {"id"}},
                    created_by=actor,
                    created_ms=now_ms,
                    updated_ms=now_ms,
                )
            )
            secret_id, secret = self._add_secret(conn, fields["id"], now_ms)
        return self.get(fields["id"]), secret_id, secret

    def list_sources(self) -> list[Source]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(webhook_sources).order_by(webhook_sources.c.id)).all()
            held = self._secrets(conn, None)
        return [_source(row, held.get(str(row.id), ())) for row in rows]

    def get(self, source_id: str) -> Source:
        """Raises: SourceError: 404 for an unknown source."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(webhook_sources).where(webhook_sources.c.id == source_id)).first()
            if row is None:
                raise SourceError(404, f"no webhook source {source_id!r}")
            return _source(row, self._secrets(conn, source_id).get(source_id, ()))

    def update(self, source_id: str, changes: dict[str, Any], now_ms: int) -> Source:
        """Applies validated changes (keys of `CHANGEABLE`). Raises: SourceError: 404."""
        values = {k: v for k, v in changes.items() if k in CHANGEABLE}
        with self._lock, self._engine.begin() as conn:
            done = conn.execute(
                webhook_sources.update()
                .where(webhook_sources.c.id == source_id)
                .values(**values, updated_ms=now_ms)
            )
            if done.rowcount == 0:
                raise SourceError(404, f"no webhook source {source_id!r}")
        return self.get(source_id)

    def delete(self, source_id: str) -> Source:
        """Deletes a source and its secrets; returns what it was. Raises: SourceError: 404."""
        source = self.get(source_id)
        with self._lock, self._engine.begin() as conn:
            conn.execute(
                webhook_source_secrets.delete().where(webhook_source_secrets.c.source_id == source_id)
            )
            conn.execute(webhook_sources.delete().where(webhook_sources.c.id == source_id))
        return source

    def rotate(self, source_id: str, now_ms: int) -> tuple[Source, str, str]:
        """Adds a second active secret (both verify until the old one is retired); returns the source,
        the new secret's id and the secret, once.

        Raises:
            SourceError: 404 for an unknown source, 409 when it has two active secrets already.
        """
        with self._lock, self._engine.begin() as conn:
            if (
                conn.execute(sa.select(webhook_sources.c.id).where(webhook_sources.c.id == source_id)).first()
                is None
            ):
                raise SourceError(404, f"no webhook source {source_id!r}")
            held = self._secrets(conn, source_id).get(source_id, ())
            active = sum(1 for s in held if s.retired_ms is None)
            if active >= MAX_ACTIVE_SECRETS:
                raise SourceError(409, f"{MAX_ACTIVE_SECRETS} secrets are active: retire one first")
            secret_id, secret = self._add_secret(conn, source_id, now_ms)
        return self.get(source_id), secret_id, secret

    def retire(self, source_id: str, secret_id: str, now_ms: int) -> Source:
        """Retires one active secret, forgetting it: deliveries signed with it are refused from now on.

        Raises:
            SourceError: 404 for an unknown source or active secret, 409 for the source's last one.
        """
        t = webhook_source_secrets
        with self._lock, self._engine.begin() as conn:
            active = [s for s in self._secrets(conn, source_id).get(source_id, ()) if s.retired_ms is None]
            if secret_id not in {s.id for s in active}:
                raise SourceError(404, f"webhook source {source_id!r} has no active secret {secret_id!r}")
            if len(active) == 1:
                raise SourceError(409, "the last active secret cannot be retired: rotate first")
            conn.execute(t.update().where(t.c.id == secret_id).values(secret="", retired_ms=now_ms))
            retired = conn.execute(
                sa.select(t.c.id)
                .where(t.c.source_id == source_id, t.c.retired_ms.is_not(None))
                .order_by(t.c.retired_ms.desc(), t.c.id)
                .offset(RETIRED_KEPT)
            ).all()
            if retired:
                conn.execute(t.delete().where(t.c.id.in_([r.id for r in retired])))
        return self.get(source_id)

    def signing(self, source_id: str) -> tuple[Source, list[str]] | None:
        """A source and its active secrets, for checking a delivery's signature (None: no such source)."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(webhook_sources).where(webhook_sources.c.id == source_id)).first()
            if row is None:
                return None
            t = webhook_source_secrets
            rows = conn.execute(
                sa.select(t.c.secret).where(t.c.source_id == source_id, t.c.retired_ms.is_(None))
            ).all()
            return _source(row, ()), [str(r.secret) for r in rows]

    @staticmethod
    def _add_secret(conn: sa.Connection, source_id: str, now_ms: int) -> tuple[str, str]:
        """A new secret (256 random bits, prefixed so a leaked one is recognisable) and its id."""
        secret_id, secret = new_id(), SECRET_PREFIX + random.token_urlsafe(32)
        conn.execute(
            webhook_source_secrets.insert().values(
                id=secret_id, source_id=source_id, secret=secret, hint=secret[-HINT_CHARS:], created_ms=now_ms
            )
        )
        return secret_id, secret

    @staticmethod
    def _secrets(conn: sa.Connection, source_id: str | None) -> dict[str, tuple[SecretInfo, ...]]:
        """Secrets (without the secret) by source, oldest first."""
        t = webhook_source_secrets
        query = sa.select(t.c.id, t.c.source_id, t.c.hint, t.c.created_ms, t.c.retired_ms).order_by(
            t.c.created_ms, t.c.id
        )
        if source_id is not None:
            query = query.where(t.c.source_id == source_id)
        held: dict[str, list[SecretInfo]] = {}
        for row in conn.execute(query):
            held.setdefault(str(row.source_id), []).append(
                SecretInfo(str(row.id), str(row.hint), int(row.created_ms), row.retired_ms)
            )
        return {k: tuple(v) for k, v in held.items()}


def _source(row: sa.Row[Any], secrets: tuple[SecretInfo, ...]) -> Source:
    m = row._mapping
    return Source(
        str(m["id"]),
        str(m["name"]),
        str(m["kind"]),
        m["preset"],
        dict(m["signature"]),
        dict(m["mapping"]) if m["mapping"] is not None else None,
        str(m["created_by"]),
        int(m["created_ms"]),
        int(m["updated_ms"]),
        secrets,
    )
