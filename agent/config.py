"""The agent's YAML config, validated once at start-up into frozen pydantic models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.collect.host import HostConfig
from agent.collect.redfish.config import RedfishConfig
from agent.collect.sequence import SequenceConfig
from agent.collect.snmp.config import SnmpConfig, TrapConfig
from agent.collect.syslog.config import SyslogConfig
from shared.config_errors import InputFile, SecretFile, load_yaml_model
from shared.delivery import DEDUP_WINDOW_S, describe_window
from shared.detect import DetectConfig

# Every device kind the agent can poll; `kind:` selects the model (and the collector in collect/registry.py).
DeviceConfig = Annotated[
    HostConfig | SnmpConfig | RedfishConfig | SequenceConfig, Field(discriminator="kind")
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TlsConfig(_Frozen):
    """Client certificate (the agent's identity), its key, and the CA that signed the hub's certificate."""

    ca_file: InputFile
    cert_file: InputFile
    key_file: SecretFile


class NatsConfig(_Frozen):
    """NATS JetStream delivery: envelopes go to `<subject_prefix>.<site>.<agent>` (identity from the cert)."""

    servers: tuple[str, ...] = ("tls://127.0.0.1:4222",)
    subject_prefix: str = Field(default="outpost.ingest", pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


class HubConfig(_Frozen):
    """Where and how batches are delivered. `address` is the hub's gRPC endpoint (ingest, renewal)."""

    transport: Literal["grpc", "nats"] = "grpc"
    address: str = Field(default="127.0.0.1:4317", pattern=r"^[^:\s]+:\d{1,5}$")
    tls: TlsConfig
    # Server name the hub's certificate must carry (defaults to the host part of `address`).
    server_name: str | None = None
    timeout_s: float = Field(default=10.0, gt=0)
    nats: NatsConfig = NatsConfig()
    # Renew the client certificate when this share of its lifetime has passed (0 disables renewal).
    renew_at: float = Field(default=2 / 3, ge=0, lt=1)


class SpoolConfig(_Frozen):
    """The on-disk spool (agent/outbox/spool.py): limits, group-commit interval and backfill share.

    Power-loss bound: at most the batches written in the last `fsync_interval_s` are lost (0 = fsync
    every batch); a SIGKILL of the agent loses nothing that reached the spool.
    """

    max_bytes: int = Field(default=2 * 1024**3, ge=1024 * 1024)
    max_age_s: float = Field(default=DEDUP_WINDOW_S, gt=0)
    segment_bytes: int = Field(default=64 * 1024**2, ge=4096)
    fsync_interval_s: float = Field(default=1.0, ge=0, le=1.0)
    downsample_at: float = Field(default=0.8, gt=0, le=1)
    backfill_share: float = Field(default=0.5, gt=0, le=1)
    live_window_s: float = Field(default=5.0, gt=0)

    @field_validator("max_age_s")
    @classmethod
    def _within_dedup_window(cls, value: float) -> float:
        """The hub remembers batch ids for DEDUP_WINDOW_S (shared/delivery.py); older replays count twice."""
        if value > DEDUP_WINDOW_S:
            raise ValueError(
                f"must be at most {describe_window()}: the hub forgets batch ids after that, so a batch "
                "replayed later would be stored and counted twice"
            )
        return value


class BatchConfig(_Frozen):
    """A batch is flushed when it holds `max_points` or its oldest point is `max_age_s` old."""

    max_points: int = Field(default=10_000, ge=1, le=1_000_000)
    max_age_s: float = Field(default=5.0, gt=0)


class TelemetryConfig(_Frozen):
    """The agent's own health and metrics endpoint (Prometheus text on /metrics, JSON on /healthz)."""

    listen: str | None = Field(default="127.0.0.1:9465", pattern=r"^[^:\s]+:\d{1,5}$")


def _default_devices() -> list[DeviceConfig]:
    """Without a `devices:` section an agent still watches its own host."""
    return [HostConfig()]


class AgentConfig(_Frozen):
    """Top level of agent.yaml."""

    data_dir: Path = Path("/var/lib/outpost-agent")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    hub: HubConfig
    devices: list[DeviceConfig] = Field(default_factory=lambda: _default_devices())
    batch: BatchConfig = BatchConfig()
    spool: SpoolConfig = SpoolConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    traps: TrapConfig = TrapConfig()
    syslog: SyslogConfig = SyslogConfig()
    detect: DetectConfig = DetectConfig()
    max_concurrency: int = Field(default=64, ge=1, le=4096)
    # Seconds between heartbeats. At most 15: the hub calls an agent offline after 3 missed heartbeats
    # but never later than 45 s, so a longer interval would make a healthy agent look offline.
    heartbeat_s: float = Field(default=10.0, ge=1.0, le=15.0)

    @field_validator("devices")
    @classmethod
    def _unique_names(cls, devices: list[DeviceConfig]) -> list[DeviceConfig]:
        """A device's name keys its schedule, its metrics and its detector state: it must be unique."""
        seen: set[str] = set()
        for d in devices:
            if d.name in seen:
                raise ValueError(f"device name {d.name!r} is used twice")
            seen.add(d.name)
        return devices


def load_config(path: Path) -> AgentConfig:
    """Reads agent.yaml. Raises ConfigError with field paths on any problem."""
    return load_yaml_model(path, AgentConfig)
