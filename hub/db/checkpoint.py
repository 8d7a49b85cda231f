"""WAL checkpoints of the SQLite state database, off the write path.

SQLite's automatic checkpoint runs inside the COMMIT that crosses `wal_autocheckpoint` pages: that
commit copies the log back into the database file and fsyncs it. On the alert path that was half the
cost of a commit (bench/alerts.py: 326 of 551 write-thread samples in COMMIT, 164 without the
checkpoint). The hub's connections turn the automatic checkpoint off (hub/db/engine.py) and this
component runs PASSIVE checkpoints from its own connection in a worker thread instead, as the SQLite
documentation suggests for applications that want commits to stay short. PASSIVE never waits for
readers or the writer: it copies what it can, the rest goes at the next pass. `journal_size_limit`
truncates a log that a burst made large once it is reset. PostgreSQL needs none of this.
"""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa

from shared.clock import Clock, SystemClock
from shared.logging import UpDown

log = logging.getLogger(__name__)

INTERVAL_S = 1.0


class WalCheckpointer:
    """Checkpoints `engine`'s WAL every `interval_s`; `frames_pending` is what the last pass left."""

    name = "state database checkpoints"

    def __init__(self, engine: sa.Engine, interval_s: float = INTERVAL_S, clock: Clock | None = None) -> None:
        self._engine = engine
        self._interval_s = interval_s
        self._clock = clock or SystemClock()
        self._updown = UpDown(log, "state database checkpoint", self._clock)
        self._task: asyncio.Task[None] | None = None
        self.frames_pending = 0
        self.passes = 0
        self.failures = 0

    async def start(self) -> None:
        if self._engine.dialect.name == "sqlite" and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="wal-checkpoint")

    async def _loop(self) -> None:
        while True:
            await self._clock.sleep(self._interval_s)
            await self.checkpoint()

    async def checkpoint(self) -> None:
        """One PASSIVE pass; a failure (a locked or vanished file) is logged once and retried."""
        try:
            self.frames_pending = await asyncio.to_thread(self._passive)
        except sa.exc.SQLAlchemyError as exc:
            self.failures += 1
            self._updown.down(f"{type(exc).__name__}: {exc}")
            return
        self.passes += 1
        self._updown.up()

    def _passive(self) -> int:
        with self._engine.connect() as conn:
            row = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        _busy, log_frames, done = (int(v) for v in row)
        return max(0, log_frames - done)  # -1, -1 when the database is not in WAL mode

    async def aclose(self) -> None:
        """Stops the loop and runs a last pass, so a clean stop leaves a short log; safe twice."""
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        await self.checkpoint()
