"""Settings of the pushed-data receivers (`webhooks:` in hub.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class SentryConfig(BaseModel):
    """The Sentry integration: its client secret signs every webhook (none: `/webhooks/sentry` is off)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_secret: SecretStr | None = None
    # `Sentry-Hook-Timestamp` must be this close to the hub's clock; replays are refused inside it.
    timestamp_window_s: float = Field(default=300.0, gt=0, le=3600)
    # An alert Sentry never resolves resolves this long after its last webhook (0: never).
    resolve_after_s: float = Field(default=0.0, ge=0)


class BucketConfig(BaseModel):
    """A token bucket: `rate` deliveries a second, `burst` saved up."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate: float = Field(gt=0)
    burst: float = Field(ge=1)


class GenericConfig(BaseModel):
    """`/webhooks/generic/{source_id}`: limits shared by every source (their settings live in the database,
    managed through `/api/v1/webhook-sources`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_body_bytes: int = Field(default=1_000_000, ge=1024, le=25_000_000)
    # Per source, whatever address it comes from; per client address over all sources.
    per_source: BucketConfig = BucketConfig(rate=50, burst=200)
    per_ip: BucketConfig = BucketConfig(rate=50, burst=200)


class WebhooksConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sentry: SentryConfig = SentryConfig()
    generic: GenericConfig = GenericConfig()
