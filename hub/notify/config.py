"""Config models of the notification receivers and of the dispatcher that retries them.

Secrets (the webhook's signing secret, Alertmanager credentials, header values) are `SecretStr` inline
or a `*_file` reference read at `start()`; they never appear in a repr, a log line or an error message.
URLs must not carry user info: credentials go in their own fields so they cannot leak with the URL.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from shared.errors import ConfigError

# Headers the receivers set themselves; a configured header may not override them.
RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "idempotency-key",
        "x-outpost-signature",
        "x-outpost-timestamp",
    }
)
MAX_ALERTS_PER_REQUEST = 100


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def read_secret(value: SecretStr | None, file: Path | None, what: str) -> str | None:
    """The secret given inline or read (stripped) from its file.

    Raises:
        ConfigError: the file cannot be read or is empty (the message names the field, never the value).
    """
    if value is not None:
        return value.get_secret_value()
    if file is None:
        return None
    try:
        text = file.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {file}: {exc.strerror}") from None
    if not text:
        raise ConfigError(f"{what}: {file} is empty")
    return text


def _one_of(value: object, file: object, what: str) -> None:
    if value is not None and file is not None:
        raise ValueError(f"give {what} or {what}_file, not both")


class _ReceiverBase(_Frozen):
    """What every receiver has: where it is, how long one attempt may take, and how to retry it."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")
    url: str
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    # Retries: exponential backoff with full jitter, until max_attempts or deadline_s after submit.
    max_attempts: int | None = Field(default=None, ge=1)
    deadline_s: float = Field(default=3600.0, gt=0)
    backoff_base_s: float = Field(default=1.0, gt=0)
    backoff_cap_s: float = Field(default=300.0, gt=0)
    # Sends in flight at once (each its own connection); a lane leases 4x this many rows per claim. 32:
    # at 1,000 new groups/s (bench/alerts.py) p99 to the receiver was ~8 s with 4, ~3-4.6 s with 8,
    # ~1.5 s with 16 and 0.6-1.8 s with 32 on a 2-core box; a receiver that wants fewer says so.
    concurrency: int = Field(default=32, ge=1, le=64)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not carry user info: put credentials in their own (secret) fields")
        return url

    @field_validator("headers")
    @classmethod
    def _no_reserved_headers(cls, headers: dict[str, SecretStr]) -> dict[str, SecretStr]:
        clash = sorted(h for h in headers if h.lower() in RESERVED_HEADERS)
        if clash:
            raise ValueError(f"headers set by the receiver itself cannot be configured: {clash}")
        return headers

    @model_validator(mode="after")
    def _backoff_order(self) -> _ReceiverBase:
        if self.backoff_cap_s < self.backoff_base_s:
            raise ValueError("backoff_cap_s must be >= backoff_base_s")
        return self

    def inline_secrets(self) -> list[str]:
        """Every secret value written in the config itself (file secrets are the receiver's to add)."""
        return [v.get_secret_value() for v in self.headers.values()]


class WebhookConfig(_ReceiverBase):
    """POSTs Alertmanager-format JSON, signed with HMAC-SHA256 when a secret is set."""

    kind: Literal["webhook"] = "webhook"
    secret: SecretStr | None = None
    secret_file: Path | None = None

    @model_validator(mode="after")
    def _secret_once(self) -> WebhookConfig:
        _one_of(self.secret, self.secret_file, "secret")
        return self

    def inline_secrets(self) -> list[str]:
        extra = [self.secret.get_secret_value()] if self.secret is not None else []
        return [*super().inline_secrets(), *extra]


class BasicAuth(_Frozen):
    username: str = Field(min_length=1)
    password: SecretStr | None = None
    password_file: Path | None = None

    @model_validator(mode="after")
    def _password_once(self) -> BasicAuth:
        _one_of(self.password, self.password_file, "password")
        if self.password is None and self.password_file is None:
            raise ValueError("basic_auth needs password or password_file")
        return self


class AlertmanagerConfig(_ReceiverBase):
    """A Prometheus Alertmanager (`url` is its base, e.g. http://am:9093): alerts go to /api/v2/alerts."""

    kind: Literal["alertmanager"] = "alertmanager"
    basic_auth: BasicAuth | None = None
    bearer_token: SecretStr | None = None
    bearer_token_file: Path | None = None
    # Firing alerts get endsAt = send time + 4 x resend_interval_s, as Prometheus does (4 x its resend
    # delay), so Alertmanager resolves them by itself if the hub stops re-sending; None leaves endsAt unset
    # (Alertmanager then applies its resolve_timeout).
    resend_interval_s: float | None = Field(default=None, gt=0)
    batch_size: int = Field(default=MAX_ALERTS_PER_REQUEST, ge=1, le=MAX_ALERTS_PER_REQUEST)

    @model_validator(mode="after")
    def _one_auth(self) -> AlertmanagerConfig:
        _one_of(self.bearer_token, self.bearer_token_file, "bearer_token")
        has_bearer = self.bearer_token is not None or self.bearer_token_file is not None
        if has_bearer and self.basic_auth is not None:
            raise ValueError("give basic_auth or a bearer token, not both")
        return self

    def inline_secrets(self) -> list[str]:
        extra = [self.bearer_token.get_secret_value()] if self.bearer_token is not None else []
        if self.basic_auth is not None and self.basic_auth.password is not None:
            extra.append(self.basic_auth.password.get_secret_value())
        return [*super().inline_secrets(), *extra]


ReceiverConfig = Annotated[WebhookConfig | AlertmanagerConfig, Field(discriminator="kind")]


class NotifyConfig(_Frozen):
    """The hub's receivers and the dispatcher's limits."""

    receivers: list[ReceiverConfig] = Field(default_factory=list)
    # Notifications accepted by submit() but not yet written to the outbox; submit() answers False beyond.
    queue_size: int = Field(default=10_000, ge=1)
    # How often each receiver looks for due rows it was not woken for (submit_in, other hubs, retries).
    poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    # Sent and dead-lettered notifications are kept this long (the dead letters API, audits), then pruned
    # by the hourly retention pass.
    keep_done_days: float = Field(default=7.0, gt=0, le=3650)
    # Shown to webhook consumers as `externalURL` (where the hub's UI is).
    external_url: str = ""

    @model_validator(mode="after")
    def _unique_names(self) -> NotifyConfig:
        names = [r.name for r in self.receivers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"receiver names must be unique: {dup}")
        return self
