"""Delivery ids already taken, shared by every hub process on one state database.

A signed webhook (Sentry's `Request-ID`, a generic source's replay header) may be captured and sent
again while its timestamp is still inside the accepted window. Several `api` processes behind a load
balancer must refuse it whichever one it reaches, so the ids live in the hub's state database, not in
a process: one upsert per delivery, which is also the check (no check-then-insert race between
processes). Ids are stored as a SHA-256 of scope and id, so the table holds no sender-chosen text.
"""

from __future__ import annotations

import hashlib
import threading

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hub.ingest.sources.models import webhook_deliveries

# Expired rows are deleted at most this often per process, in the call that notices it is due.
PRUNE_EVERY_MS = 60_000


def _key(scope: str, ident: str) -> str:
    return hashlib.sha256(f"{scope}\n{ident}".encode()).hexdigest()


class DeliveryLedger:
    """Thread-safe (a connection per call); calls block on the database, so run them off the loop."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._pruned_ms = 0
        self._prune_lock = threading.Lock()

    def first_time(self, scope: str, ident: str, window_ms: int, now_ms: int) -> bool:
        """True when no hub process took `ident` in `scope` within the last `window_ms` (and takes it
        now); False for a replay."""
        t = webhook_deliveries.c
        ins = self._dialect.insert(webhook_deliveries).values(
            key=_key(scope, ident), expires_ms=now_ms + window_ms
        )
        # An id whose window has passed may come again (the timestamp check refuses stale ones).
        stmt = ins.on_conflict_do_update(
            index_elements=[t.key], set_={"expires_ms": ins.excluded.expires_ms}, where=t.expires_ms <= now_ms
        ).returning(sa.literal_column("1"))
        with self._engine.begin() as db:
            taken = db.execute(stmt).first() is not None
        self._prune_if_due(now_ms)
        return taken

    def forget(self, scope: str, ident: str) -> None:
        """Releases an id, so the sender's retry of a delivery the hub could not take (503) is accepted."""
        with self._engine.begin() as db:
            db.execute(sa.delete(webhook_deliveries).where(webhook_deliveries.c.key == _key(scope, ident)))

    def prune(self, now_ms: int) -> int:
        """Deletes the ids whose window has passed; how many."""
        with self._engine.begin() as db:
            done = db.execute(sa.delete(webhook_deliveries).where(webhook_deliveries.c.expires_ms <= now_ms))
        return int(done.rowcount or 0)

    def _prune_if_due(self, now_ms: int) -> None:
        with self._prune_lock:
            if now_ms - self._pruned_ms < PRUNE_EVERY_MS:
                return
            self._pruned_ms = now_ms
        self.prune(now_ms)
