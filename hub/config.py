"""The hub's YAML config, validated once at start-up into frozen pydantic models."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.alerts.config import AlertsConfig
from hub.auth.config import AuthConfig
from hub.bus.config import BusConfig, MemoryBusConfig
from hub.confirm.config import ConfirmConfig
from hub.detect.config import PushDetectConfig
from hub.enrich.llm.config import EnrichConfig
from hub.enrich.logs.config import LogsConfig
from hub.forecast.config import ForecastConfig
from hub.ingest.webhooks.config import WebhooksConfig
from hub.notify.config import NotifyConfig
from hub.notify.ws_config import WsConfig
from hub.store.config import EmbeddedStoreConfig, StoreConfig
from shared.config_errors import load_yaml_model

_LISTEN = r"^[^:\s]+:\d{1,5}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GrpcConfig(_Frozen):
    """The mTLS gRPC ingest listener."""

    listen: str = Field(default="127.0.0.1:4317", pattern=_LISTEN)
    # Names the hub's server certificate carries; agents verify one of them.
    server_names: tuple[str, ...] = ("localhost", "127.0.0.1")
    max_message_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    # Batches being stored at once; beyond this agents are told to retry later (backpressure).
    max_inflight: int = Field(default=32, ge=1)
    retry_after_ms: int = Field(default=1000, ge=1)


class NatsIngestConfig(_Frozen):
    """Consuming agent envelopes from NATS JetStream (hub/ingest/nats_consumer.py); off by default."""

    enabled: bool = False
    servers: tuple[str, ...] = ("tls://127.0.0.1:4222",)
    # Name nats-server's certificate carries (defaults to the URL's host).
    server_name: str | None = None
    subject_prefix: str = Field(default="outpost.ingest", pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
    stream: str = Field(default="OUTPOST_INGEST", pattern=r"^[A-Za-z0-9_-]+$")
    durable: str = Field(default="outpost-hub", pattern=r"^[A-Za-z0-9_-]+$")
    # A message fetched by a worker that dies unacked is redelivered after this long.
    ack_wait_s: float = Field(default=30.0, gt=0)
    # Messages fetched and ingested at once; keep it below grpc.max_inflight (shared admission control),
    # or the surplus is answered with retry-later and redelivered a second later.
    fetch_batch: int = Field(default=16, ge=1, le=10_000)
    # JetStream's own dedup window on Nats-Msg-Id; older re-sends are dropped by the store's dedup.
    duplicate_window_s: float = Field(default=120.0, gt=0)


class EnrollConfig(_Frozen):
    """The enrollment listener (token + CSR over server-auth TLS) and certificate lifetimes.

    The listener is off until `listen` is set (e.g. `0.0.0.0:4318`): only hubs that enroll agents open it.
    """

    listen: str | None = Field(default=None, pattern=_LISTEN)
    cert_days: float = Field(default=90.0, gt=0)
    # How often revocations made elsewhere (the CLI) are picked up; revoked agents are refused within this.
    revocation_refresh_s: float = Field(default=10.0, gt=0, le=60)


class ApiConfig(_Frozen):
    """The REST API, WebSocket streams and dashboard."""

    listen: str = Field(default="127.0.0.1:8080", pattern=_LISTEN)


class HubConfig(_Frozen):
    """Top level of hub.yaml. Every path defaults to a place under `data_dir`."""

    data_dir: Path = Path("/var/lib/outpost-hub")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # What this process runs: everything (the embedded default), only the API, or only the workers
    # (ingest, alerts, notifications); api and worker processes share NATS (bus) and a state database.
    role: Literal["all", "api", "worker"] = "all"
    # SQLAlchemy URL of the hub's state (agents, tokens); default: SQLite under data_dir.
    state_url: str | None = None
    grpc: GrpcConfig = GrpcConfig()
    nats: NatsIngestConfig = NatsIngestConfig()
    enroll: EnrollConfig = EnrollConfig()
    api: ApiConfig = ApiConfig()
    store: StoreConfig = EmbeddedStoreConfig()
    # How hub packages tell each other what happened: in-process by default, NATS JetStream at scale.
    bus: BusConfig = MemoryBusConfig()
    alerts: AlertsConfig = AlertsConfig()
    notify: NotifyConfig = NotifyConfig()
    # Forecasts, time to threshold and predictive alerts (hub/forecast).
    forecast: ForecastConfig = ForecastConfig()
    # IsolationForest confirmation of edge onsets before they page (hub/confirm).
    confirm: ConfirmConfig = ConfirmConfig()
    # Scoring pushed series (line protocol, remote write) with the detector bank (hub/detect).
    detect: PushDetectConfig = PushDetectConfig()
    ws: WsConfig = WsConfig()
    # Users, sessions, API keys and rate limits (hub/auth).
    auth: AuthConfig = AuthConfig()
    # Receivers of pushed data that need settings (the Sentry integration's secret).
    webhooks: WebhooksConfig = WebhooksConfig()
    # The log store: retention, line bounds, template-count series (hub/enrich/logs).
    logs: LogsConfig = LogsConfig()

    # LLM enrichment of incidents (hub/enrich/llm), off by default.
    enrich: EnrichConfig = EnrichConfig()

    @model_validator(mode="after")
    def _roles_share_engines(self) -> HubConfig:
        if self.role != "all" and self.bus.kind != "nats":
            raise ValueError("role api or worker needs bus.kind: nats (processes share NATS, not memory)")
        if self.role != "all" and not (self.state_url or "").startswith("postgresql"):
            raise ValueError("role api or worker needs a shared state_url (postgresql+psycopg://...)")
        known = {r.name for r in self.notify.receivers}
        missing = sorted({r.receiver for r in self.alerts.routes} - known)
        if missing:
            raise ValueError(f"alerts.routes name receivers that notify.receivers lacks: {missing}")
        return self

    @property
    def pki_dir(self) -> Path:
        return self.data_dir / "pki"

    def resolved_state_url(self) -> str:
        return self.state_url or f"sqlite:///{self.data_dir / 'state.sqlite'}"


def load_config(path: Path | None) -> HubConfig:
    """Reads hub.yaml, or returns the defaults when no file is given. Raises ConfigError with field paths."""
    return HubConfig() if path is None else load_yaml_model(path, HubConfig)
