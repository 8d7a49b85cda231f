"""Run-once jobs on a real PostgreSQL: one leader among processes, a standby takes over within seconds of
the leader's SIGKILL (the server frees the session's advisory lock), and SQLite always grants."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hub.db.engine import create_engine
from hub.db.locks import PgAdvisoryLock, RunOnce, job_lock, lock_key

pytestmark = pytest.mark.integration

_HOLDER = """
import sys, time
from hub.db.engine import create_engine
from hub.db.locks import PgAdvisoryLock
lock = PgAdvisoryLock(create_engine(sys.argv[1]), sys.argv[2])
assert lock.try_acquire()
print("locked", flush=True)
time.sleep(600)
"""


class Recorder:
    def __init__(self, name: str = "alerts") -> None:
        self.name = name
        self.events: list[str] = []

    async def start(self) -> None:
        self.events.append("start")

    async def aclose(self) -> None:
        self.events.append("close")


async def _until(cond: Any, timeout: float) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)
    return time.monotonic() - t0


def test_lock_keys_are_stable_signed_64_bit_numbers_per_job() -> None:
    assert lock_key("alerts") == lock_key("alerts") != lock_key("retention")
    assert all(-(2**63) <= lock_key(n) < 2**63 for n in ("alerts", "retention", ""))


async def test_on_sqlite_the_job_always_runs_and_is_up_when_start_returns(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    job = Recorder()
    run = RunOnce(job, job_lock(engine, "alerts"), retry_s=0.05)
    await run.start()
    assert (job.events, run.leading) == (["start"], True)
    await asyncio.sleep(0.2)
    await run.aclose()
    await run.aclose()
    assert (job.events, run.leading, run.takeovers) == (["start", "close"], False, 1)
    engine.dispose()


async def test_one_of_two_processes_leads_and_the_standby_takes_over_within_seconds_of_a_sigkill(
    postgres: Any, tmp_path: Path
) -> None:
    url = postgres.create_database("locks")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, url, "alerts"], stdout=subprocess.PIPE, cwd=Path(__file__).parents[2]
    )
    engine = create_engine(url)
    other = PgAdvisoryLock(engine, "retention")  # another job's lock is independent
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        job = Recorder()
        run = RunOnce(job, job_lock(engine, "alerts"), retry_s=0.2)
        await run.start()
        await asyncio.sleep(0.6)  # three tries, all refused: the other process leads
        assert (job.events, run.leading) == ([], False)
        assert other.try_acquire() is True
        holder.kill()
        holder.wait(10)
        took = await _until(lambda: run.leading, timeout=5)
        assert took < 3 and job.events == ["start"] and run.takeovers == 1
        # Now this process holds it: a third contender is refused.
        third = PgAdvisoryLock(engine, "alerts")
        assert third.try_acquire() is False
        third.dispose()
        await run.aclose()
        assert job.events == ["start", "close"]
        again = PgAdvisoryLock(engine, "alerts")  # released at aclose: free at once
        assert again.try_acquire() is True
        again.dispose()
    finally:
        holder.kill()
        holder.wait(10)
        other.dispose()
        engine.dispose()


async def test_a_leader_whose_session_is_terminated_stops_its_job_and_takes_the_lock_again(
    postgres: Any,
) -> None:
    url = postgres.create_database("locks_lost")
    engine = create_engine(url)
    job = Recorder()
    lock = PgAdvisoryLock(engine, "alerts")
    run = RunOnce(job, lock, retry_s=0.2)
    try:
        await run.start()
        assert run.leading
        with engine.begin() as conn:  # as a database restart would: the lock's session ends
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_locks"
                " WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
            )
        await _until(lambda: job.events[-1:] == ["close"] or len(job.events) >= 3, timeout=5)
        await _until(lambda: run.leading and len(job.events) == 3, timeout=5)
        assert job.events == ["start", "close", "start"] and run.takeovers == 2
    finally:
        await run.aclose()
        engine.dispose()
