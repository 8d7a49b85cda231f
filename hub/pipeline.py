"""The only module that wires the hub's stages: PKI → state → store → ingest (gRPC) → API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from hub import pki
from hub.api.app import create_app
from hub.api.deps import HubContext
from hub.config import HubConfig
from hub.ingest.grpc_server import GrpcIngestServer
from hub.ingest.service import Ingestor
from hub.state import HubState
from hub.store.config import build_store
from hub.telemetry import HubMetrics
from shared.clock import Clock, SystemClock

log = logging.getLogger(__name__)

ADMIN_TOKEN_FILE = "admin.token"


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: the hub's CLI owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


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
    return ca


class Hub:
    """A running hub on embedded defaults (or the engines its config names)."""

    def __init__(self, config: HubConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.metrics = HubMetrics()
        self.state = HubState(config.resolved_state_url())
        self.store = build_store(config.store, config.data_dir, self.clock)
        self._grpc: GrpcIngestServer | None = None
        self._api: _ApiServer | None = None
        self._api_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        ca = ensure_pki(cfg)
        await asyncio.to_thread(self.state.open)
        self._write_admin_token()
        await asyncio.to_thread(self.store.open)
        ingestor = Ingestor(
            self.store,
            self.state,
            self.metrics,
            max_inflight=cfg.grpc.max_inflight,
            retry_after_ms=cfg.grpc.retry_after_ms,
            clock=self.clock,
        )
        self._grpc = GrpcIngestServer(
            ingestor,
            cfg.grpc.listen,
            ca_pem=ca.cert.read_bytes(),
            cert_pem=(cfg.pki_dir / "hub.pem").read_bytes(),
            key_pem=(cfg.pki_dir / "hub.key").read_bytes(),
            max_message_bytes=cfg.grpc.max_message_bytes,
        )
        await self._grpc.start()
        app = create_app(HubContext(self.store, self.state, self.metrics, self.clock))
        host, port = cfg.api.listen.rsplit(":", 1)
        self._api = _ApiServer(
            uvicorn.Config(app, host=host, port=int(port), log_level="warning", lifespan="off")
        )
        self._api_task = asyncio.create_task(self._api.serve(), name="api")
        while not self._api.started:
            if self._api_task.done():
                self._api_task.result()  # re-raises why the API could not start (e.g. port in use)
                raise RuntimeError("API server stopped during start-up")
            await asyncio.sleep(0.02)
        log.info("API and dashboard on http://%s:%s", host, port)

    def _write_admin_token(self) -> None:
        token = self.state.ensure_admin_token(self.clock.now_ms())
        if token is None:
            return
        path: Path = self.config.data_dir / ADMIN_TOKEN_FILE
        pki.write_private(path, (token + "\n").encode())
        # Printed once, on the console only (never to the log): the operator needs it to log in.
        print(f"admin API token (shown once, also saved 0600 in {path}): {token}", flush=True)

    async def aclose(self) -> None:
        """Stops intake first, then the API, then closes storage: nothing acknowledged is lost."""
        if self._grpc is not None:
            await self._grpc.aclose()
            self._grpc = None
        if self._api is not None and self._api_task is not None:
            self._api.should_exit = True
            await asyncio.gather(self._api_task, return_exceptions=True)
            self._api = self._api_task = None
        await asyncio.to_thread(self.store.close)
        await asyncio.to_thread(self.state.close)
