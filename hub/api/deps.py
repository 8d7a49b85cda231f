"""What request handlers need from the running hub, attached to the app at start-up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Request
from prometheus_client import CollectorRegistry, Counter

from hub.state import HubState
from hub.store.base import Store
from hub.telemetry import HubMetrics
from shared.clock import Clock

T = TypeVar("T")

# Threads running store reads: few, as the machine's cores are shared with ingest (which has its own
# pool, see `hub.ingest.service`); more queries than threads wait in the pool's queue...
QUERY_THREADS = 4
# ...up to this many admitted at once; beyond it the API answers 429 with Retry-After at once, so a
# burst of dashboards cannot pile up unbounded work or memory.
MAX_CONCURRENT_QUERIES = 64
RETRY_AFTER_S = 1


class QueryRunner:
    """Runs store reads on the API's own bounded thread pool, never the one ingest writes on."""

    def __init__(
        self,
        registry: CollectorRegistry,
        threads: int = QUERY_THREADS,
        max_concurrent: int = MAX_CONCURRENT_QUERIES,
    ) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="api-query")
        self._max = max_concurrent
        self._running = 0  # only touched on the event loop
        self.rejected = Counter(
            "outpost_hub_api_rejected",
            "API requests refused: bad parameters (400) or too many queries at once (429)",
            ["endpoint", "reason"],
            registry=registry,
        )

    async def run(self, endpoint: str, fn: Callable[..., T], *args: object) -> T:
        """Runs `fn(*args)` in the query pool.

        Raises:
            HTTPException: 429 with `Retry-After` when `max_concurrent` queries are already running.
        """
        if self._running >= self._max:
            self.rejected.labels(endpoint, "busy").inc()
            raise HTTPException(
                429, "too many queries at once; retry shortly", headers={"Retry-After": str(RETRY_AFTER_S)}
            )
        self._running += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, lambda: fn(*args))
        finally:
            self._running -= 1

    def bad_request(self, endpoint: str, detail: str) -> HTTPException:
        """Counts a refused request and returns the 400 to raise."""
        self.rejected.labels(endpoint, "bad_request").inc()
        return HTTPException(400, detail)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True, slots=True)
class HubContext:
    store: Store
    state: HubState
    metrics: HubMetrics
    clock: Clock
    queries: QueryRunner = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "queries", QueryRunner(self.metrics.registry))


def get_context(request: Request) -> HubContext:
    ctx: HubContext = request.app.state.ctx
    return ctx


Ctx = Annotated[HubContext, Depends(get_context)]
