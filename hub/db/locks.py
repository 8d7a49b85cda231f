"""Run-once jobs: a job (the alert engine, the retention pass) runs in exactly one hub process at a time,
the one holding the job's lock; the others stand by and take over when it goes.

On PostgreSQL the lock is a session-level advisory lock (`pg_try_advisory_lock`) taken on a connection
of its own and held while the job runs: the server releases it when that session ends, so a leader that
is SIGKILLed, or whose machine vanishes, frees it without any lease to expire. Standbys try again every
`retry_s`; the leader checks its session as often and stops the job if the session is gone (a database
restart), because another process may then take the lock. On SQLite (one process) it is always granted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from typing import Protocol

import sqlalchemy as sa

log = logging.getLogger(__name__)

RETRY_S = 2.0


class Job(Protocol):
    """What `RunOnce` runs: started when the lock is taken, closed when it is lost or the hub stops."""

    name: str

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class JobLock(Protocol):
    """A lock for one job; blocking methods, called off the event loop."""

    def try_acquire(self) -> bool:
        """True if this process holds the lock now (already held counts); never waits for it."""

    def held(self) -> bool:
        """False once a lock this process held may have been lost (its session ended)."""

    def release(self) -> None:
        """Gives the lock up; safe when not held and safe twice."""


def lock_key(name: str) -> int:
    """The advisory lock key of job `name`: a stable signed 64-bit number, the same in every process."""
    return int.from_bytes(hashlib.sha256(f"outpost-job:{name}".encode()).digest()[:8], "big", signed=True)


class LocalLock:
    """One process (SQLite state): the job always runs here."""

    def __init__(self) -> None:
        self._held = False

    def try_acquire(self) -> bool:
        self._held = True
        return True

    def held(self) -> bool:
        return self._held

    def release(self) -> None:
        self._held = False


class PgAdvisoryLock:
    """`pg_try_advisory_lock` on a dedicated connection (not from the shared pool: a pooled connection
    returned to the pool would keep the lock in a session nobody owns)."""

    def __init__(self, engine: sa.Engine, name: str) -> None:
        self._engine = sa.create_engine(engine.url, poolclass=sa.pool.NullPool)
        self._key = lock_key(name)
        self._conn: sa.Connection | None = None

    def try_acquire(self) -> bool:
        if self._conn is not None and self.held():
            return True
        try:
            conn = self._engine.connect()
        except sa.exc.SQLAlchemyError:
            return False  # database unreachable: a standby, trying again later
        try:
            got = bool(conn.execute(sa.select(sa.func.pg_try_advisory_lock(self._key))).scalar())
            conn.commit()  # the lock is the session's, not the transaction's: end the transaction
        except sa.exc.SQLAlchemyError:
            conn.close()
            return False
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def held(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.execute(sa.text("SELECT 1"))
            self._conn.commit()
        except sa.exc.SQLAlchemyError:
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            self._conn.execute(sa.select(sa.func.pg_advisory_unlock(self._key)))
            self._conn.commit()
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                conn.close()  # closing the session releases the lock if unlock did not

    def dispose(self) -> None:
        self.release()
        self._engine.dispose()


def job_lock(engine: sa.Engine, name: str) -> JobLock:
    """The lock of job `name` on the hub's state database."""
    return PgAdvisoryLock(engine, name) if engine.dialect.name == "postgresql" else LocalLock()


class RunOnce:
    """A component running `job` only while this process holds its lock.

    `start` tries the lock once and, if granted, starts the job before returning (so on SQLite the job
    is up when the hub is, and a failing job start stops the hub as before); then a background task
    keeps trying (standby) or checking (leader) every `retry_s`.
    """

    def __init__(self, job: Job, lock: JobLock, retry_s: float = RETRY_S) -> None:
        self.job = job
        self.name = f"{job.name} (run once)"
        self._lock = lock
        self._retry_s = retry_s
        self._task: asyncio.Task[None] | None = None
        self.leading = False
        self.takeovers = 0  # times this process became the leader

    async def start(self) -> None:
        if await asyncio.to_thread(self._lock.try_acquire):
            try:
                await self._lead()
            except BaseException:
                await asyncio.to_thread(self._lock.release)
                raise
        else:
            log.info("%s: another hub process runs it; standing by", self.job.name)
        self._task = asyncio.create_task(self._watch(), name=f"run-once-{self.job.name}")

    async def _lead(self) -> None:
        await self.job.start()
        self.leading = True
        self.takeovers += 1
        log.info("%s: runs in this process (lock taken)", self.job.name)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._retry_s)
            try:
                if self.leading:
                    if not await asyncio.to_thread(self._lock.held):
                        log.warning("%s: lock lost (its database session ended); stopping", self.job.name)
                        self.leading = False
                        await self.job.aclose()
                elif await asyncio.to_thread(self._lock.try_acquire):
                    try:
                        await self._lead()
                    except Exception:
                        log.exception("%s: could not start; giving the lock back", self.job.name)
                        await self.job.aclose()
                        await asyncio.to_thread(self._lock.release)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the watcher die: a standby that stops trying is no standby
                log.exception("%s: lock check failed", self.job.name)

    async def aclose(self) -> None:
        """Stops watching, stops the job if it runs here, then gives the lock back."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.leading:
            self.leading = False
            await self.job.aclose()
        release = getattr(self._lock, "dispose", self._lock.release)
        await asyncio.to_thread(release)
