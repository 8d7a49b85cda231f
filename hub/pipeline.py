"""The only module that wires the hub's stages, as the components of a role: PKI → state → store → bus →
alerts → notify, the API, ingest (gRPC, NATS) and enrollment (token + CSR listener, renewal on the gRPC
port, revocation cache). Ingest publishes on the bus after each durable write; alerts consume it.

Roles (`role:` in hub.yaml):
- `all`: everything in one process (the embedded default).
- `api`: the REST API and dashboard; reads alerts, incidents and windows from the shared database and
  hands operator actions to the alert engine over the bus (`hub.alerts.commands`).
- `worker`: ingest, notifications and the run-once jobs (the alert engine, the retention pass, the
  scoring of pushed series), each of which runs in the one worker holding its lock (`hub.db.locks`);
  `/healthz` and `/metrics` only.

Components start in order and stop in reverse; a component that fails to start stops the hub (the CLI
stops what started and exits 1).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hub.alerts.commands import CommandClient, CommandExecutor
from hub.alerts.metrics import AlertsCollector
from hub.alerts.repository import AlertRepository
from hub.alerts.rules import CONFIRMED_RULES, RULES
from hub.alerts.service import GROUP as ALERTS_GROUP
from hub.alerts.service import AlertService
from hub.api.app import create_app, create_probe_app
from hub.api.deps import HubContext
from hub.api.routes.alerts import alert_json
from hub.auth.service import AuthService
from hub.bus.base import Bus
from hub.bus.factory import build_bus
from hub.bus.messages import AlertCommand
from hub.bus.metrics import BusCollector
from hub.config import HubConfig
from hub.confirm.jobs import ConfirmJob
from hub.confirm.metrics import ConfirmCollector
from hub.db import migrate
from hub.db.checkpoint import WalCheckpointer
from hub.db.engine import create_engine
from hub.db.locks import RunOnce, job_lock
from hub.detect.metrics import DetectCollector
from hub.detect.service import PushScoringJob
from hub.enrich.llm.job import EnrichJob
from hub.enrich.llm.metrics import EnrichCollector
from hub.enrich.llm.templates import TemplateClassJob
from hub.enrich.logs.counts import TemplateCounts
from hub.enrich.logs.intake import LogIntake
from hub.enrich.logs.metrics import LogMetrics
from hub.enrich.logs.pollers.job import LogPollers
from hub.enrich.logs.pollers.metrics import PollerMetrics
from hub.enrich.logs.retention import LogRetention
from hub.enrich.logs.semantic import SemanticSearch
from hub.enrich.logs.store import LogStore
from hub.fleet.agents import Fleet
from hub.forecast.jobs import ForecastJob
from hub.forecast.metrics import ForecastMetrics
from hub.forecast.service import ForecastService
from hub.identity import pki
from hub.identity.db import EnrollState
from hub.identity.nats_auth import HUB_NATS_CN
from hub.identity.revocation import RevocationCache
from hub.identity.server import EnrollServer
from hub.identity.service import EnrollService
from hub.ingest.grpc_server import GrpcIngestServer
from hub.ingest.nats_consumer import ClientTls, NatsConsumer
from hub.ingest.service import Ingestor
from hub.ingest.sources.deliveries import DeliveryLedger
from hub.ingest.sources.repository import WebhookSources
from hub.live_metrics import StoreCollector
from hub.notify.dispatcher import Dispatcher
from hub.notify.metrics import NotifyCollector
from hub.notify.outbox import Outbox
from hub.notify.ws import WsHub
from hub.serve import AsgiServer
from hub.store.base import Store
from hub.store.factory import build_store
from hub.telemetry import HubMetrics
from shared.clock import Clock, SystemClock
from shared.private import private_dir

log = logging.getLogger(__name__)

ADMIN_TOKEN_FILE = "admin.token"
RETENTION_INTERVAL_S = 3600.0
# Outcomes of operator commands are kept this long (a redelivered command finds its row well within it).
COMMANDS_RETENTION_MS = 86_400_000


def ensure_pki(config: HubConfig) -> pki.CaPaths:
    """Creates the CA and the hub's server certificate on first start."""
    ca = pki.CaPaths(config.pki_dir)
    if pki.init_ca(ca):
        log.info("created CA in %s", ca.root)
    cert, key = config.pki_dir / "hub.pem", config.pki_dir / "hub.key"
    if not (cert.exists() and key.exists()):
        pair = pki.issue(ca, "outpost-hub", server_names=config.grpc.server_names, days=825)
        pki.write_pair(pair, cert, key)
        log.info("issued hub server certificate for %s", ", ".join(config.grpc.server_names))
    ncert, nkey = nats_client_files(config)
    if (config.nats.enabled or config.bus.kind == "nats") and not (ncert.exists() and nkey.exists()):
        pki.write_pair(pki.issue(ca, HUB_NATS_CN, days=825), ncert, nkey)  # nats-server maps its CN
    return ca


def nats_client_files(config: HubConfig) -> tuple[Path, Path]:
    """The hub's client certificate and key for NATS (a server certificate cannot log in as a client)."""
    return config.pki_dir / "nats-client.pem", config.pki_dir / "nats-client.key"


class Component(Protocol):
    """One stage of a role: started in order, stopped in reverse; `aclose` is safe without `start`."""

    name: str

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


async def _nothing() -> None:
    return None


@dataclass
class Step:
    """A component made of two coroutines (for stages whose objects need no class of their own)."""

    name: str
    up: Callable[[], Awaitable[None]]
    down: Callable[[], Awaitable[None]] = _nothing

    async def start(self) -> None:
        await self.up()

    async def aclose(self) -> None:
        await self.down()


class AlertEngineJob:
    """The alert engine as a run-once job: its topics and the operator commands are subscribed only
    while this process holds the lock; `start` reloads state from the database (a standby taking over
    sees what the dead leader wrote)."""

    name = "alerts"

    def __init__(self, service: AlertService, bus: Bus, executor: CommandExecutor | None) -> None:
        self.service = service
        self._bus = bus
        self._executor = executor

    async def start(self) -> None:
        await self.service.start()
        if self._executor is not None:
            self._bus.subscribe(AlertCommand.TOPIC, ALERTS_GROUP, self._executor.handle)

    async def aclose(self) -> None:
        if self._executor is not None:
            await self._bus.unsubscribe(AlertCommand.TOPIC, ALERTS_GROUP, self._executor.handle)
        await self.service.aclose()


class RetentionJob:
    """Applies retention hourly (run once across processes): expired data, old batch ids, old command
    outcomes, sent and dead-lettered notifications past `notify.keep_done_days`."""

    name = "retention"

    def __init__(
        self,
        store: Store,
        metrics: HubMetrics,
        clock: Clock,
        executor: CommandExecutor | None,
        outbox: Outbox,
        outbox_keep_ms: int,
        interval_s: float = RETENTION_INTERVAL_S,
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._outbox_keep_ms = outbox_keep_ms
        self._metrics = metrics
        self._clock = clock
        self._executor = executor
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="retention")

    async def _loop(self) -> None:
        while True:
            await self._clock.sleep(self._interval_s)
            now = self._clock.now_ms()
            try:
                removed = await asyncio.to_thread(self._store.apply_retention, now)
                if self._executor is not None:
                    await asyncio.to_thread(self._executor.expire, now - COMMANDS_RETENTION_MS)
                pruned = await asyncio.to_thread(self._outbox.prune, now - self._outbox_keep_ms)
            except Exception:  # a failed pass is retried next hour; the hub keeps serving
                log.exception("retention pass failed")
                continue
            self._metrics.retention_removed.inc(removed)
            self._metrics.notifications_pruned.inc(pruned)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


class Hub:
    """A running hub of one role (`config.role`) on embedded defaults or the engines its config names."""

    def __init__(self, config: HubConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.metrics = HubMetrics()
        self.db = create_engine(config.resolved_state_url())  # the one engine every package uses
        self.fleet = Fleet(self.db)
        self.auth = AuthService(self.db, self.clock, config.auth, self.metrics.registry)
        self.ingestor: Ingestor | None = None  # built with the ingest components of the role
        # Log lines in the state database: every role reads them, the ingesting roles mine and store them.
        self.log_store = LogStore(self.db)
        self.log_metrics = LogMetrics(self.metrics.registry)
        self.log_intake: LogIntake | None = None
        # Several processes share the state database on PostgreSQL: the store's ledger goes there too.
        shared = self.db if self.db.dialect.name == "postgresql" else None
        self.store = build_store(config.store, config.data_dir, self.clock, shared_state=shared)
        self.metrics.registry.register(StoreCollector(self.store))  # the store's own counters, at scrape
        self.enroll_state = EnrollState(self.db)
        self.revocations = RevocationCache(self.enroll_state, config.enroll.revocation_refresh_s)
        self.enroll: EnrollService | None = None
        self.ca: pki.CaPaths | None = None
        uses_nats = config.bus.kind == "nats"
        tls = ClientTls(pki.CaPaths(config.pki_dir).cert, *nats_client_files(config)) if uses_nats else None
        self.bus = build_bus(config.bus, tls, self.clock)
        self.metrics.registry.register(BusCollector(self.bus.stats))
        self.dispatcher: Dispatcher | None = None
        self.alerts: AlertService | None = None
        self.confirm: ConfirmJob | None = None  # with confirm.enabled, in the roles running jobs
        self.push_scoring: PushScoringJob | None = None  # with detect.enabled, in the roles running jobs
        self.enrich: EnrichJob | None = None  # with enrich.llm.enabled, in the roles running jobs
        self.semantic: SemanticSearch | None = None  # in the roles answering searches (all, api)
        self.jobs: list[RunOnce] = []
        # Forecasts for the API and the forecast job (None: forecasting disabled).
        self.forecast = ForecastService(self.store, config.forecast) if config.forecast.enabled else None
        self._executor: CommandExecutor | None = None
        self.api_port: int | None = None
        self.ws: WsHub | None = None  # built with the API, in the roles serving one
        self.components: list[Component] = BUILDERS[config.role](self)
        self._started: list[Component] = []

    async def start(self) -> None:
        """Starts the role's components in order; raises what the failing one raised (call `aclose`)."""
        for component in self.components:
            await component.start()
            self._started.append(component)

    async def aclose(self) -> None:
        """Stops what started, in reverse: intake first, then the API, the bus (which delivers what is
        queued to the alerts before they stop), notify, storage; nothing acknowledged is lost."""
        while self._started:
            component = self._started.pop()
            try:
                await component.aclose()
            except Exception:  # one stage failing to stop must not leave the others running
                log.exception("stopping %s failed", component.name)
        self.auth.close()
        await asyncio.to_thread(self.db.dispose)

    # ---- components every role builds from ---------------------------------------------------------------

    def _setup(self) -> list[Component]:
        """Private data dir, PKI, schema: before anything touches them."""

        async def pki_up() -> None:
            private_dir(self.config.data_dir)  # 0700: state, store, PKI and the admin token are the hub's
            self.ca = ensure_pki(self.config)

        async def migrate_up() -> None:
            await asyncio.to_thread(migrate.upgrade, self.db)  # raises MigrationError: the hub does not start

        setup: list[Component] = [Step("pki", pki_up), Step("state database", migrate_up)]
        if self.db.dialect.name == "sqlite":  # PostgreSQL checkpoints by itself
            setup.append(self._checkpoints())
        return setup

    def _checkpoints(self) -> Component:
        checkpointer = WalCheckpointer(self.db, clock=self.clock)
        self.metrics.state_wal_frames.set_function(lambda: checkpointer.frames_pending)
        return checkpointer

    def _store(self) -> Component:
        async def up() -> None:
            await asyncio.to_thread(self.store.open)

        async def down() -> None:
            await asyncio.to_thread(self.store.close)

        return Step("store", up, down)

    def _admin_token(self) -> Component:
        async def up() -> None:
            self._write_admin_token()

        return Step("admin token", up)

    def _revocations(self) -> Component:
        return Step("revocations", self.revocations.start, self.revocations.aclose)

    def _bus(self) -> Component:
        return Step("bus", self.bus.start, self.bus.aclose)

    def _dispatcher(self) -> Component:
        self.dispatcher = dispatcher = Dispatcher(self.db, self.config.notify, clock=self.clock)
        self.metrics.registry.register(NotifyCollector(dispatcher.stats, lambda: dispatcher.queued))
        return Step("notify", dispatcher.start, dispatcher.aclose)

    def _alert_engine(self, commands: bool) -> RunOnce:
        assert self.dispatcher is not None, "the dispatcher is built before the alert engine"
        cfg = self.config
        self.alerts = AlertService(
            cfg.alerts,
            self.db,
            self.bus,
            self.dispatcher,
            self.clock,
            cfg.notify.external_url,
            rules=CONFIRMED_RULES if cfg.confirm.enabled else RULES,
        )
        self.metrics.registry.register(AlertsCollector(self.alerts))
        executor = CommandExecutor(self.alerts, self.db, self.clock) if commands else None
        job = RunOnce(AlertEngineJob(self.alerts, self.bus, executor), job_lock(self.db, "alerts"))
        self.jobs.append(job)
        self._executor = executor
        return job

    def _retention(self) -> RunOnce:
        executor = self._executor
        job = RunOnce(
            RetentionJob(
                self.store,
                self.metrics,
                self.clock,
                executor,
                Outbox(self.db),
                int(self.config.notify.keep_done_days * 86_400_000),
            ),
            job_lock(self.db, "retention"),
        )
        self.jobs.append(job)
        return job

    def _log_retention(self) -> RunOnce:
        job = RunOnce(
            LogRetention(self.log_store, self.config.logs, self.log_metrics, self.clock),
            job_lock(self.db, "log-retention"),
        )
        self.jobs.append(job)
        return job

    def _log_pollers(self) -> list[Component]:
        """Datadog and Splunk pollers (run once across processes: one process polls a source), when
        `logs.pollers` lists any: after the log intake they store through, so they stop before it."""
        if not self.config.logs.pollers:
            return []
        assert self.log_intake is not None, "the ingest components are built before the pollers"
        job = LogPollers(
            self.config.logs.pollers,
            self.log_intake,
            PollerMetrics(self.metrics.registry),
            self.config.data_dir / "logs" / "pollers",
            self.clock,
        )
        run = RunOnce(job, job_lock(self.db, "log-pollers"))
        self.jobs.append(run)
        return [run]

    def _confirm_job(self) -> list[Component]:
        """Confirmation of edge onsets (run once across processes), when `confirm.enabled`: subscribed
        before the bus delivers, like the alert engine that waits for its verdicts."""
        if not self.config.confirm.enabled:
            return []
        job = self.confirm = ConfirmJob(
            self.config.confirm, self.store, self.bus, self.clock, self.config.data_dir / "confirm"
        )
        self.metrics.registry.register(ConfirmCollector(job))
        run = RunOnce(job, job_lock(self.db, "confirm"))
        self.jobs.append(run)
        return [run]

    def _push_scoring_job(self) -> list[Component]:
        """Scoring of pushed series (run once across processes, so each series is scored once, in order),
        when `detect.enabled`: subscribed before the bus delivers."""
        if not self.config.detect.enabled:
            return []
        job = self.push_scoring = PushScoringJob(
            self.config.detect,
            self.bus,
            self.clock,
            self.config.data_dir / "detect",
            ingest_busy=lambda: self.ingestor is not None and self.ingestor.busy(),
        )
        self.metrics.registry.register(DetectCollector(job))
        run = RunOnce(job, job_lock(self.db, "detect"))
        self.jobs.append(run)
        return [run]

    def _semantic(self, incidents: bool) -> Component:
        """Semantic search of templates and incidents, in the processes answering searches: each keeps its
        own index under its data dir, filled from the state database. `incidents`: consume incident
        changes (role `all`, where the engine runs); built before the enrichment job (which asks it for
        similar incidents), the bus (subscribed before it delivers) and ingest (which tells it templates)."""
        self.semantic = SemanticSearch(
            self.config.logs.semantic,
            self.config.data_dir,
            self.log_store,
            self.db,
            self.bus if incidents else None,
            self.metrics.registry,
            self.clock,
        )
        return self.semantic

    def _enrich_job(self) -> list[Component]:
        """LLM enrichment of incidents, when `enrich.llm.enabled`: in every process running jobs (its bus
        group shares the incidents among them), subscribed before the bus delivers; and the classification
        of log templates (run once)."""
        if not self.config.enrich.llm.enabled:
            return []
        cfg = self.config.enrich.llm
        job = self.enrich = EnrichJob(cfg, self.db, self.store, self.log_store, self.bus, self.clock)
        if self.semantic is not None:
            job.context.similar = self.semantic.similar_lines
        out: list[Component] = [job]
        classify = None
        if cfg.classify_templates:  # run once across processes; stopped before the client it shares
            classify = TemplateClassJob(cfg, self.db, self.log_store, job.client, self.clock)
            run = RunOnce(classify, job_lock(self.db, "classify-templates"))
            self.jobs.append(run)
            out.append(run)
        self.metrics.registry.register(EnrichCollector(job, classify))
        return out

    def _forecast_job(self) -> list[Component]:
        """The forecast job (run once across processes), when forecasting is enabled."""
        if self.forecast is None:
            return []
        job = ForecastJob(self.forecast, self.bus, self.clock, ForecastMetrics(self.metrics.registry))
        run = RunOnce(job, job_lock(self.db, "forecast"))
        self.jobs.append(run)
        return [run]

    def _api(self, ctx: Callable[[], HubContext]) -> Component:
        server: list[AsgiServer] = []

        async def up() -> None:
            api = AsgiServer(create_app(ctx()), self.config.api.listen)
            server.append(api)
            await api.start()  # raises why the API could not start (e.g. port in use)
            self.api_port = api.port
            log.info("API and dashboard on http://%s:%d", api.host, api.port)

        async def down() -> None:
            for api in server:
                await api.aclose()

        return Step("api", up, down)

    def _streams(self) -> Component:
        """The WebSocket streams the API serves: listed after it, so they start once it is up and stop
        first, each client told 1001 (reconnect elsewhere with last_event_id)."""
        repo = AlertRepository(self.db)

        def describe(ids: Sequence[str]) -> dict[str, dict[str, Any]]:
            return {a.id: alert_json(a) for a in repo.alerts_by_ids(ids)}

        self.ws = WsHub(self.config.ws, self.bus, self.metrics.registry, self.clock, describe)
        return self.ws

    def _probe(self) -> Component:
        server: list[AsgiServer] = []

        async def up() -> None:
            probe = AsgiServer(create_probe_app(self.metrics), self.config.api.listen)
            server.append(probe)
            await probe.start()
            self.api_port = probe.port
            log.info("worker health and metrics on http://%s:%d", probe.host, probe.port)

        async def down() -> None:
            for probe in server:
                await probe.aclose()

        return Step("health and metrics", up, down)

    def _ingest(self) -> list[Component]:
        """gRPC ingest (with renewal), the enrollment listener if `enroll.listen` is set, and the NATS
        consumer if `nats.enabled`."""
        cfg = self.config
        # Listed before the listeners: started before the first batch, stopped (miner saved, marked
        # minutes counted) after the last.
        counts = TemplateCounts(self.log_store, self.store, cfg.logs, self.log_metrics, self.clock)
        self.log_intake = LogIntake(
            self.log_store, counts, cfg.logs, self.log_metrics, cfg.data_dir / "logs", self.clock
        )
        if self.semantic is not None:
            self.log_intake.on_templates = self.semantic.offer_templates
        ingestor = self.ingestor = Ingestor(
            self.store,
            self.fleet,
            self.metrics,
            max_inflight=cfg.grpc.max_inflight,
            retry_after_ms=cfg.grpc.retry_after_ms,
            clock=self.clock,
            bus=self.bus,
            score_pushed=cfg.detect.enabled,
            logs=self.log_intake,
        )
        grpc: list[GrpcIngestServer] = []

        async def grpc_up() -> None:
            assert self.ca is not None
            enroll = self.enroll = EnrollService(self.ca, self.enroll_state, cfg.enroll.cert_days, self.clock)

            async def renew(agent: str, csr_der: bytes, peer: str) -> bytes:
                return await asyncio.to_thread(enroll.renew, agent, csr_der, peer)

            server = GrpcIngestServer(
                ingestor,
                cfg.grpc.listen,
                ca_pem=self.ca.cert.read_bytes(),
                cert_pem=(cfg.pki_dir / "hub.pem").read_bytes(),
                key_pem=(cfg.pki_dir / "hub.key").read_bytes(),
                max_message_bytes=cfg.grpc.max_message_bytes,
                renew=renew,
                is_revoked=self.revocations.is_revoked,
            )
            grpc.append(server)
            await server.start()

        async def grpc_down() -> None:
            for server in grpc:
                await server.aclose()

        out: list[Component] = [counts, self.log_intake, Step("grpc ingest", grpc_up, grpc_down)]
        if cfg.enroll.listen:
            listener: list[EnrollServer] = []
            enroll_listen = cfg.enroll.listen

            async def enroll_up() -> None:
                assert self.ca is not None and self.enroll is not None
                server = EnrollServer(
                    self.enroll,
                    enroll_listen,
                    cert_file=cfg.pki_dir / "hub.pem",
                    key_file=cfg.pki_dir / "hub.key",
                    ca_file=self.ca.cert,
                    clock=self.clock,
                )
                listener.append(server)
                await server.start()

            async def enroll_down() -> None:
                for server in listener:
                    await server.aclose()

            out.append(Step("enrollment", enroll_up, enroll_down))
        if cfg.nats.enabled:
            ncert, nkey = nats_client_files(cfg)
            consumer = NatsConsumer(
                ingestor,
                cfg.nats,
                ClientTls(pki.CaPaths(cfg.pki_dir).cert, ncert, nkey),
                self.metrics,
                self.revocations.is_revoked,
            )
            out.append(Step("nats ingest", consumer.start, consumer.aclose))
        return out

    def _context(self, with_engine: bool) -> HubContext:
        if with_engine:
            return HubContext(
                self.store,
                self.fleet,
                self.auth,
                self.metrics,
                self.clock,
                alerts=self.alerts,
                ingest_busy=lambda: self.ingestor is not None and self.ingestor.busy(),
                forecast=self.forecast,
                confirm=self.confirm,
                ws=self.ws,
                ingestor=self.ingestor,
                webhooks=self.config.webhooks,
                logs=self.log_store,
                sources=WebhookSources(self.db),
                deliveries=DeliveryLedger(self.db),
                semantic=self.semantic,
            )
        commands = CommandClient(self.bus, self.db, self.clock, self.config.alerts.resolve_timeout_s)
        return HubContext(
            self.store,
            self.fleet,
            self.auth,
            self.metrics,
            self.clock,
            repo=AlertRepository(self.db),
            commands=commands,
            forecast=self.forecast,
            ws=self.ws,
            webhooks=self.config.webhooks,
            logs=self.log_store,
            sources=WebhookSources(self.db),
            deliveries=DeliveryLedger(self.db),
            semantic=self.semantic,
        )

    def _write_admin_token(self) -> None:
        token = self.auth.keys.ensure_admin_key(self.clock.now_ms())
        if token is None:
            return
        path: Path = self.config.data_dir / ADMIN_TOKEN_FILE
        pki.write_private(path, (token + "\n").encode())
        # Printed once, on the console only (never to the log): the operator needs it to log in.
        print(f"admin API token (shown once, also saved 0600 in {path}): {token}", flush=True)


# ---- one builder per role: the ordered components -----------------------------------------------------


def build_all(hub: Hub) -> list[Component]:
    """Everything in one process. The alert engine subscribes before the bus delivers (on SQLite its
    lock is granted at once); intake stops before the API, the bus before the alerts."""
    return [
        *hub._setup(),
        hub._revocations(),
        hub._admin_token(),
        hub._store(),
        hub._dispatcher(),
        hub._alert_engine(commands=False),
        *hub._confirm_job(),
        *hub._push_scoring_job(),
        hub._semantic(incidents=True),
        *hub._enrich_job(),
        hub._bus(),
        hub._api(lambda: hub._context(with_engine=True)),
        hub._streams(),
        *hub._ingest(),
        *hub._log_pollers(),
        hub._retention(),
        hub._log_retention(),
        *hub._forecast_job(),
    ]


def build_api(hub: Hub) -> list[Component]:
    """The REST API and dashboard; alerts are read from the shared database, actions go over the bus."""
    return [
        *hub._setup(),
        hub._admin_token(),
        hub._store(),
        hub._semantic(incidents=False),
        hub._bus(),
        hub._api(lambda: hub._context(with_engine=False)),
        hub._streams(),
    ]


def build_worker(hub: Hub) -> list[Component]:
    """Ingest, notifications and the run-once jobs (alert engine, retention); health and metrics only."""
    return [
        *hub._setup(),
        hub._revocations(),
        hub._store(),
        hub._dispatcher(),
        hub._alert_engine(commands=True),
        *hub._confirm_job(),
        *hub._push_scoring_job(),
        *hub._enrich_job(),
        hub._bus(),
        hub._probe(),
        *hub._ingest(),
        *hub._log_pollers(),
        hub._retention(),
        hub._log_retention(),
        *hub._forecast_job(),
    ]


BUILDERS: dict[str, Callable[[Hub], list[Component]]] = {
    "all": build_all,
    "api": build_api,
    "worker": build_worker,
}
