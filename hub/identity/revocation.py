"""The revocation cache every ingest path consults: refreshed from SQL, so a revocation made by the CLI
in another process takes effect within `refresh_s` (default 10 s, at most 60 s)."""

from __future__ import annotations

import asyncio
import logging

from hub.identity.db import EnrollState

log = logging.getLogger(__name__)


class RevocationCache:
    """`is_revoked` is a set lookup (hot path); `start` runs the refresh loop."""

    def __init__(self, state: EnrollState, refresh_s: float = 10.0) -> None:
        self._state = state
        self._refresh_s = refresh_s
        self._revoked: frozenset[str] = frozenset()
        self._task: asyncio.Task[None] | None = None

    def is_revoked(self, agent: str) -> bool:
        return agent in self._revoked

    async def refresh(self) -> None:
        fresh = frozenset(await asyncio.to_thread(self._state.revoked))
        for agent in sorted(fresh - self._revoked):
            log.warning("agent %s is revoked: refusing its data and renewals", agent)
        self._revoked = fresh

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="revocations")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
            except Exception:  # a database hiccup must not stop the refresh loop; the old set stays
                log.exception("revocation refresh failed")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
