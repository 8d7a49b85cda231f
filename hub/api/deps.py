"""What request handlers need from the running hub, attached to the app at start-up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Request
from prometheus_client import CollectorRegistry, Counter

from hub.alerts.commands import CommandClient, Outcome
from hub.alerts.model import Signal
from hub.alerts.repository import AlertRepository
from hub.alerts.service import AlertService
from hub.auth.service import AuthService
from hub.bus.errors import BusError
from hub.confirm.jobs import ConfirmJob
from hub.enrich.logs.semantic import SemanticSearch
from hub.enrich.logs.store import LogStore
from hub.fleet.agents import Fleet
from hub.forecast.service import ForecastService
from hub.ingest.service import Ingestor
from hub.ingest.sources.deliveries import DeliveryLedger
from hub.ingest.sources.repository import WebhookSources
from hub.ingest.webhooks.config import WebhooksConfig
from hub.notify.ws import WsHub
from hub.store.base import Store
from hub.telemetry import HubMetrics
from shared.clock import Clock

T = TypeVar("T")

# Threads running store reads. Ingest has its own pool (`hub.ingest.service`), but both need the one
# interpreter lock: every query thread busy with Python work (numpy set-up, JSON) takes a share of it
# from gRPC intake. Threads let reads that wait (disk, InfluxDB over HTTP) overlap...
QUERY_THREADS = 4
# ...and a budget while ingest is busy: all queries together may then use this share of one core's
# time (thread CPU time, measured per query), with bursts up to `QUERY_BURST_S`. 20 dashboards querying
# 119 series back to back cut ingest to a quarter without it; at 5 % ingest keeps ~85 % of its rate
# (bench/query_ingest.py) and the dashboards wait their turn. With no batch arriving for a second the
# budget refills at `QUERY_IDLE_SHARE` (every query thread), so an idle hub answers at full speed.
QUERY_CPU_SHARE = 0.05
QUERY_IDLE_SHARE = float(QUERY_THREADS)
QUERY_BURST_S = 0.5
# Queries admitted at once (running or waiting for a thread or budget); beyond it the API answers 429
# with Retry-After at once, so a burst of dashboards cannot pile up unbounded work or memory.
MAX_CONCURRENT_QUERIES = 64
RETRY_AFTER_S = 1


class QueryRunner:
    """Runs store reads on the API's own bounded thread pool, never the one ingest writes on."""

    def __init__(
        self,
        registry: CollectorRegistry,
        threads: int = QUERY_THREADS,
        max_concurrent: int = MAX_CONCURRENT_QUERIES,
        cpu_share: float = QUERY_CPU_SHARE,
        burst_s: float = QUERY_BURST_S,
        ingest_busy: Callable[[], bool] = lambda: True,
        idle_share: float = QUERY_IDLE_SHARE,
    ) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="api-query")
        # A query takes its budget only once a thread is free to run it: admitted earlier, it would sit
        # in the pool's queue and run later on a budget taken while ingest was idle.
        self._slots = asyncio.Semaphore(threads)
        self._max = max_concurrent
        self._busy_share, self._idle_share = cpu_share, idle_share
        self._share = cpu_share
        self._ingest_busy = ingest_busy
        self._burst = burst_s
        # Only touched on the event loop: admitted queries, and the CPU budget (seconds) left.
        self._running = 0
        self._budget = burst_s
        self._refilled = time.monotonic()
        # Expected CPU seconds of the next query (moving average), charged when it starts so that many
        # queries waiting at once do not all start on the same positive budget. It starts pessimistic
        # (a whole burst) and learns down within a few cheap queries.
        self._estimate = burst_s
        self.throttled = Counter(
            "outpost_hub_api_query_throttled_seconds",
            "Time queries waited for their CPU share while ingest was busy",
            registry=registry,
        )
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
            async with self._slots:
                return await self._run_budgeted(fn, args)
        finally:
            self._running -= 1

    async def _run_budgeted(self, fn: Callable[..., T], args: tuple[object, ...]) -> T:
        while self._refill() <= 0:
            wait_s = min(0.25, -self._budget / self._share + 0.001)
            self.throttled.inc(wait_s)
            await asyncio.sleep(wait_s)
        charged = self._estimate
        self._budget -= charged
        cpu = charged
        try:
            result, cpu = await asyncio.get_running_loop().run_in_executor(self._pool, _timed, fn, args)
        finally:
            self._budget += charged - cpu
            self._estimate = 0.8 * self._estimate + 0.2 * cpu
        return result

    def _refill(self) -> float:
        """Adds what the budget earned since the last call, at the busy or the idle share."""
        now = time.monotonic()
        share = self._busy_share if self._ingest_busy() else self._idle_share
        if share < self._share:
            # Ingest just got busy: what the budget earned at the idle share is not spent now.
            self._budget = min(self._budget, 0.0)
        self._share = share
        self._budget = min(self._burst, self._budget + (now - self._refilled) * self._share)
        self._refilled = now
        return self._budget

    def bad_request(self, endpoint: str, detail: str) -> HTTPException:
        """Counts a refused request and returns the 400 to raise."""
        self.rejected.labels(endpoint, "bad_request").inc()
        return HTTPException(400, detail)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _timed(fn: Callable[..., T], args: tuple[object, ...]) -> tuple[T, float]:
    """`fn(*args)` and the CPU time this thread spent on it (time waiting for locks or disk is free)."""
    t = time.thread_time()
    result = fn(*args)
    return result, time.thread_time() - t


@dataclass(frozen=True, slots=True)
class HubContext:
    store: Store
    fleet: Fleet
    auth: AuthService
    metrics: HubMetrics
    clock: Clock
    # The alert engine of this process (role `all`); None in an `api` process, which reads alerts from
    # the shared database (`repo`) and hands operator actions to the engine's leader (`commands`).
    alerts: AlertService | None = None
    repo: AlertRepository | None = None
    commands: CommandClient | None = None
    # True while this process is ingesting: queries then get only their small CPU share.
    ingest_busy: Callable[[], bool] = lambda: False
    # Forecasts for GET /api/v1/forecast; None when forecasting is disabled.
    forecast: ForecastService | None = None
    # The WebSocket streams of this process (None: the app serves none, e.g. in tests of REST alone).
    ws: WsHub | None = None
    # The confirmation job of this process, for GET /api/v1/confirm (None: it runs none).
    confirm: ConfirmJob | None = None
    # Where pushed data (InfluxDB line protocol) is stored; None in a process that ingests nothing.
    ingestor: Ingestor | None = None
    # Settings of the webhook receivers (hub.yaml `webhooks:`).
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    # The senders of `/webhooks/generic/{source_id}` (None: a process built without the database).
    sources: WebhookSources | None = None
    deliveries: DeliveryLedger | None = None
    # The log store for GET /api/v1/logs (None: an app serving no logs, e.g. tests of REST alone).
    logs: LogStore | None = None
    # Semantic search of templates and incidents (None: this process serves none, e.g. a worker).
    semantic: SemanticSearch | None = None
    queries: QueryRunner = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "queries", QueryRunner(self.metrics.registry, ingest_busy=self.ingest_busy))


def alerts_of(ctx: HubContext) -> AlertService:
    """The alert engine, or a 503 saying this process does not run one."""
    if ctx.alerts is None:
        raise HTTPException(503, "this hub process runs no alert engine (role: api); ask a worker")
    return ctx.alerts


async def submit_signals(
    ctx: HubContext, signals: Sequence[Signal], actor: str
) -> tuple[int | None, list[str]]:
    """Applies signals with this process's engine, or hands them to the engine's leader over the bus.

    Returns how many alerts changed (None: the leader has not applied them within its wait) and the
    command ids (empty when applied here). Raises a 503 when the leader cannot be reached."""
    if ctx.alerts is not None:
        step = await ctx.alerts.apply(signals)
        return len(step.changes), []
    try:
        ids, changed = await commands_of(ctx).signals(signals, actor)
    except BusError as exc:
        raise HTTPException(503, f"the alert engine cannot be reached: {exc}") from None
    return changed, ids


def repo_of(ctx: HubContext) -> AlertRepository:
    """Where alerts, incidents and windows are read: the shared database, in every role."""
    if ctx.repo is not None:
        return ctx.repo
    return alerts_of(ctx).repo


def commands_of(ctx: HubContext) -> CommandClient:
    """The command path to the engine's leader, or a 503 when this process has neither."""
    if ctx.commands is None:
        raise HTTPException(503, "this hub process can neither run nor reach an alert engine")
    return ctx.commands


async def run_command(
    ctx: HubContext, action: str, target: str, actor: str, payload: str = ""
) -> Outcome | str:
    """Runs an operator action through the engine's leader (role `api`).

    Returns:
        The outcome once the leader recorded it, or the command id when it has not within the wait
        (the route answers 202 with it).

    Raises:
        HTTPException: 503 when the bus does not take the command, 404 when the target does not exist,
            400 when the engine refused the command.
    """
    try:
        command_id, outcome = await commands_of(ctx).run(action, target, actor, payload)
    except BusError as exc:
        raise HTTPException(503, f"the alert engine cannot be reached: {exc}") from None
    if outcome is None:
        return command_id
    if outcome.outcome == "not_found":
        raise HTTPException(404, outcome.detail)
    if not outcome.ok:
        raise HTTPException(400, outcome.detail)
    return outcome


def context_of(request: Request) -> HubContext:
    """The running hub's context, for code that has the request but is no dependency of its own."""
    ctx: HubContext = request.app.state.ctx
    return ctx


async def get_context(request: Request) -> HubContext:
    """Async on purpose: FastAPI runs a plain `def` dependency on a worker thread, and that hop (not the
    lookup) was most of what an authenticated request cost on a busy machine (bench/auth.py)."""
    return context_of(request)


Ctx = Annotated[HubContext, Depends(get_context)]
