"""The only module that wires the hub's stages: PKI → state → store → ingest (gRPC, NATS) → bus →
alerts → notify, the API, and enrollment (token + CSR listener, renewal on the gRPC port, revocation
cache). Ingest publishes on the bus after each durable write; alerts consume it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from hub.alerts.metrics import AlertsCollector
from hub.alerts.service import AlertService
from hub.api.app import create_app
from hub.api.deps import HubContext
from hub.auth.tokens import ApiTokens
from hub.bus.factory import build_bus
from hub.bus.metrics import BusCollector
from hub.config import HubConfig
from hub.db import migrate
from hub.db.engine import create_engine
from hub.fleet.agents import Fleet
from hub.identity import pki
from hub.identity.db import EnrollState
from hub.identity.nats_auth import HUB_NATS_CN
from hub.identity.revocation import RevocationCache
from hub.identity.server import EnrollServer
from hub.identity.service import EnrollService
from hub.ingest.grpc_server import GrpcIngestServer
from hub.ingest.nats_consumer import ClientTls, NatsConsumer
from hub.ingest.service import Ingestor
from hub.live_metrics import StoreCollector
from hub.notify.dispatcher import Dispatcher
from hub.notify.metrics import NotifyCollector
from hub.serve import AsgiServer
from hub.store.factory import build_store
from hub.telemetry import HubMetrics
from shared.clock import Clock, SystemClock
from shared.private import private_dir

log = logging.getLogger(__name__)

ADMIN_TOKEN_FILE = "admin.token"
RETENTION_INTERVAL_S = 3600.0


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


class Hub:
    """A running hub on embedded defaults (or the engines its config names)."""

    def __init__(self, config: HubConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.metrics = HubMetrics()
        self.db = create_engine(config.resolved_state_url())  # the one engine every package uses
        self.fleet = Fleet(self.db)
        self.tokens = ApiTokens(self.db)
        self.store = build_store(config.store, config.data_dir, self.clock)
        self.metrics.registry.register(StoreCollector(self.store))  # the store's own counters, at scrape
        self._grpc: GrpcIngestServer | None = None
        self.enroll_state = EnrollState(self.db)
        self.revocations = RevocationCache(self.enroll_state, config.enroll.revocation_refresh_s)
        self.enroll: EnrollService | None = None
        self._enroll_server: EnrollServer | None = None
        self._nats: NatsConsumer | None = None
        self._api: AsgiServer | None = None
        self._retention_task: asyncio.Task[None] | None = None
        uses_nats = config.bus.kind == "nats"
        tls = ClientTls(pki.CaPaths(config.pki_dir).cert, *nats_client_files(config)) if uses_nats else None
        self.bus = build_bus(config.bus, tls, self.clock)
        self.metrics.registry.register(BusCollector(self.bus.stats))
        self.dispatcher = Dispatcher(self.db, config.notify, clock=self.clock)
        self.metrics.registry.register(NotifyCollector(self.dispatcher.stats, lambda: self.dispatcher.queued))
        self.alerts = AlertService(
            config.alerts, self.db, self.bus, self.dispatcher, self.clock, config.notify.external_url
        )
        self.metrics.registry.register(AlertsCollector(self.alerts))

    async def start(self) -> None:
        cfg = self.config
        private_dir(cfg.data_dir)  # 0700: state, store, PKI and the admin token are private to the hub
        ca = ensure_pki(cfg)
        await asyncio.to_thread(migrate.upgrade, self.db)  # raises MigrationError: the hub does not start
        await self.revocations.start()
        self._write_admin_token()
        await asyncio.to_thread(self.store.open)
        await self.dispatcher.start()
        await self.alerts.start()  # subscribes before the bus starts delivering
        await self.bus.start()
        ingestor = Ingestor(
            self.store,
            self.fleet,
            self.metrics,
            max_inflight=cfg.grpc.max_inflight,
            retry_after_ms=cfg.grpc.retry_after_ms,
            clock=self.clock,
            bus=self.bus,
        )
        enroll = self.enroll = EnrollService(ca, self.enroll_state, cfg.enroll.cert_days, self.clock)

        async def renew(agent: str, csr_der: bytes, peer: str) -> bytes:
            return await asyncio.to_thread(enroll.renew, agent, csr_der, peer)

        self._grpc = GrpcIngestServer(
            ingestor,
            cfg.grpc.listen,
            ca_pem=ca.cert.read_bytes(),
            cert_pem=(cfg.pki_dir / "hub.pem").read_bytes(),
            key_pem=(cfg.pki_dir / "hub.key").read_bytes(),
            max_message_bytes=cfg.grpc.max_message_bytes,
            renew=renew,
            is_revoked=self.revocations.is_revoked,
        )
        await self._grpc.start()
        if cfg.enroll.listen:
            self._enroll_server = EnrollServer(
                enroll,
                cfg.enroll.listen,
                cert_file=cfg.pki_dir / "hub.pem",
                key_file=cfg.pki_dir / "hub.key",
                ca_file=ca.cert,
                clock=self.clock,
            )
            await self._enroll_server.start()
        if cfg.nats.enabled:
            ncert, nkey = nats_client_files(cfg)
            self._nats = NatsConsumer(
                ingestor, cfg.nats, ClientTls(ca.cert, ncert, nkey), self.metrics, self.revocations.is_revoked
            )
            await self._nats.start()
        app = create_app(
            HubContext(self.store, self.fleet, self.tokens, self.metrics, self.clock, alerts=self.alerts)
        )
        self._api = AsgiServer(app, cfg.api.listen)
        await self._api.start()  # raises why the API could not start (e.g. port in use)
        log.info("API and dashboard on http://%s:%d", self._api.host, self._api.port)
        self._retention_task = asyncio.create_task(self._retention_loop(), name="retention")

    async def _retention_loop(self) -> None:
        """Applies retention hourly: deletes expired data, rolls up quiet series, forgets old batch ids."""
        while True:
            await self.clock.sleep(RETENTION_INTERVAL_S)
            try:
                removed = await asyncio.to_thread(self.store.apply_retention, self.clock.now_ms())
            except Exception:  # a failed pass is retried next hour; the hub keeps serving
                log.exception("retention pass failed")
                continue
            self.metrics.retention_removed.inc(removed)

    def _write_admin_token(self) -> None:
        token = self.tokens.ensure_admin_token(self.clock.now_ms())
        if token is None:
            return
        path: Path = self.config.data_dir / ADMIN_TOKEN_FILE
        pki.write_private(path, (token + "\n").encode())
        # Printed once, on the console only (never to the log): the operator needs it to log in.
        print(f"admin API token (shown once, also saved 0600 in {path}): {token}", flush=True)

    async def aclose(self) -> None:
        """Stops intake first, then the API, then closes storage: nothing acknowledged is lost."""
        if self._retention_task is not None:
            self._retention_task.cancel()
            await asyncio.gather(self._retention_task, return_exceptions=True)
            self._retention_task = None
        if self._nats is not None:
            await self._nats.aclose()
            self._nats = None
        if self._grpc is not None:
            await self._grpc.aclose()
            self._grpc = None
        if self._enroll_server is not None:
            await self._enroll_server.aclose()
            self._enroll_server = None
        await self.revocations.aclose()
        if self._api is not None:
            await self._api.aclose()
            self._api = None
        await self.bus.aclose()  # delivers what is queued to the alerts before they stop
        await self.alerts.aclose()
        await self.dispatcher.aclose()
        await asyncio.to_thread(self.store.close)
        await asyncio.to_thread(self.db.dispose)
