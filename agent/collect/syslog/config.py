"""Config of the syslog receiver (the `syslog:` section of agent.yaml): listeners, bounds, batching."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.config_errors import InputFile, SecretFile

_LISTEN = r"^[^:\s]+:\d{1,5}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SyslogTlsConfig(_Frozen):
    """RFC 5425 syslog over TLS: the receiver's certificate and key; with `ca_file`, senders must present
    a client certificate signed by that CA (mutual TLS), else any sender that completes TLS is heard."""

    listen: str = Field(default="0.0.0.0:6514", pattern=_LISTEN)
    cert_file: InputFile
    key_file: SecretFile
    ca_file: InputFile | None = None


class SyslogConfig(_Frozen):
    """The syslog receiver; off unless `enabled`. A listener set to null is not opened.

    Every buffer is bounded and every drop counted: a longer message is cut at `max_message_bytes`, a
    sender above `rate_per_source` messages/s (after a `burst_per_source`) loses the excess, and records
    the batcher has not taken yet wait in a queue of `queue_size` (newest dropped when full).
    """

    enabled: bool = False
    udp_listen: str | None = Field(default="0.0.0.0:514", pattern=_LISTEN)
    tcp_listen: str | None = Field(default="0.0.0.0:514", pattern=_LISTEN)
    tls: SyslogTlsConfig | None = None
    # RFC 5425 asks receivers to take at least 2048 octets and recommends 8192.
    max_message_bytes: int = Field(default=8192, ge=480, le=1024 * 1024)
    max_connections: int = Field(default=256, ge=1, le=65_536)
    idle_timeout_s: float = Field(default=300.0, gt=0, le=86_400)
    rate_per_source: float = Field(default=1000.0, gt=0, le=1_000_000)
    burst_per_source: int = Field(default=2000, ge=1, le=10_000_000)
    # Token buckets kept at once; the least recently heard source is forgotten past this (it restarts full).
    max_sources: int = Field(default=10_000, ge=1, le=1_000_000)
    queue_size: int = Field(default=20_000, ge=1, le=1_000_000)
    # A LOGS batch is flushed at this many records, this many bytes of text, or when its oldest is this old.
    batch_max_records: int = Field(default=5000, ge=1, le=100_000)
    batch_max_bytes: int = Field(default=1024 * 1024, ge=64 * 1024, le=16 * 1024 * 1024)
    batch_max_age_s: float = Field(default=2.0, gt=0, le=60)

    @model_validator(mode="after")
    def _coherent(self) -> SyslogConfig:
        if self.enabled and not (self.udp_listen or self.tcp_listen or self.tls):
            raise ValueError("enabled with no listener: set udp_listen, tcp_listen or tls")
        if self.max_message_bytes > self.batch_max_bytes:
            raise ValueError("max_message_bytes must not exceed batch_max_bytes (a message fits one batch)")
        return self
