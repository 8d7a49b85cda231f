"""The API's query runner: its own bounded pool, 429 with Retry-After beyond the limit, a CPU budget."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from fastapi import HTTPException
from prometheus_client import CollectorRegistry

from hub.api.deps import QueryRunner

pytestmark = pytest.mark.unit


async def test_queries_beyond_the_limit_are_refused_429_with_retry_after_and_counted() -> None:
    registry = CollectorRegistry()
    runner = QueryRunner(registry, threads=2, max_concurrent=2)
    release = threading.Event()
    try:
        held = [asyncio.create_task(runner.run("query", release.wait, 5)) for _ in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(HTTPException) as exc:
            await runner.run("query", lambda: True)
        assert exc.value.status_code == 429
        assert exc.value.headers == {"Retry-After": "1"}
        release.set()
        assert await asyncio.gather(*held) == [True, True]
        assert await runner.run("query", lambda: "after") == "after"
        assert (
            registry.get_sample_value(
                "outpost_hub_api_rejected_total", {"endpoint": "query", "reason": "busy"}
            )
            == 1
        )
    finally:
        release.set()
        runner.close()


async def test_queries_run_on_the_runners_own_threads() -> None:
    runner = QueryRunner(CollectorRegistry(), threads=1)
    try:
        name = await runner.run("query", lambda: threading.current_thread().name)
        assert name.startswith("api-query")
    finally:
        runner.close()


def _spin(seconds: float) -> float:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
    return seconds


async def test_cpu_heavy_queries_are_held_to_their_share_of_one_core() -> None:
    runner = QueryRunner(CollectorRegistry(), threads=4, cpu_share=0.5, burst_s=0.05)
    try:
        t = time.monotonic()
        done = await asyncio.gather(*(runner.run("query", _spin, 0.05) for _ in range(8)))
        took = time.monotonic() - t
    finally:
        runner.close()
    assert done == [0.05] * 8
    # 0.4 s of CPU at half a core, less the 0.05 s burst: at least ~0.7 s of wall time.
    assert took >= 0.6


async def test_queries_run_at_full_speed_while_ingest_is_idle_and_yield_while_it_is_busy() -> None:
    for busy in (False, True):
        runner = QueryRunner(
            CollectorRegistry(), threads=4, cpu_share=0.05, burst_s=0.02, ingest_busy=lambda b=busy: b
        )
        try:
            await asyncio.gather(*(runner.run("query", _spin, 0.02) for _ in range(4)))
        finally:
            runner.close()
        waited = runner.throttled._value.get()
        # Busy: 0.08 s of CPU at 5 % of a core, less the burst, is about 1.2 s of waiting; idle: none.
        assert (waited > 0.5) is busy, (busy, waited)


async def test_budget_earned_while_ingest_was_idle_is_not_spent_once_it_is_busy() -> None:
    busy = False
    runner = QueryRunner(
        CollectorRegistry(), threads=1, cpu_share=0.05, burst_s=0.5, ingest_busy=lambda: busy
    )
    try:
        for _ in range(8):  # idle: at full speed, the budget full (a whole burst) and the estimate learnt
            await runner.run("query", _spin, 0.01)
        busy = True
        t = time.monotonic()
        for _ in range(3):
            await runner.run("query", _spin, 0.01)
        took = time.monotonic() - t
    finally:
        runner.close()
    # The idle burst would have let all three start at once; at 5 % of a core the budget goes from 0 to
    # 0.01 s of CPU in 0.2 s, so the second and the third each wait about that long.
    assert took >= 0.25


async def test_queries_waiting_for_a_thread_take_their_budget_when_they_can_start() -> None:
    busy = False
    runner = QueryRunner(
        CollectorRegistry(), threads=1, cpu_share=0.05, burst_s=0.05, ingest_busy=lambda: busy
    )
    try:
        await runner.run("query", _spin, 0.01)  # learns a little of the estimate
        t = time.monotonic()
        queued = [asyncio.create_task(runner.run("query", _spin, 0.05)) for _ in range(3)]
        await asyncio.sleep(0.02)  # the first is running, two wait for the thread...
        busy = True  # ...when ingest starts: they must now wait for the busy share, not run at once
        await asyncio.gather(*queued)
        took = time.monotonic() - t
    finally:
        runner.close()
    # Admitted while idle, all three would be done in ~0.15 s; at 5 % of a core the last two wait ~1 s each.
    assert took >= 0.6
