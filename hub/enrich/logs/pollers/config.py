"""Config of the hub's log pollers (`logs.pollers:` in hub.yaml), one entry per remote log source.

logs:
  pollers:
    - kind: datadog
      name: dd-prod
      site: datadoghq.eu            # or url: https://api.datadoghq.eu
      query: "service:web status:error"
      api_key_file: /etc/outpost/dd-api-key
      application_key_file: /etc/outpost/dd-app-key
    - kind: splunk
      name: splunk-core
      url: https://splunk.example.net:8089
      query: "index=main sourcetype=syslog"
      token_file: /etc/outpost/splunk-token

Secrets are `SecretStr` inline or a `*_file` read at start; they never appear in a repr, a log line, an
error text or a URL (URLs with user info are refused).
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

_NAME = r"^[A-Za-z0-9_.-]+$"


class _PollerBase(BaseModel):
    """What every poller has: its name, what it asks, how often, and its bounds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Stored lines carry `poll:<name>` as their agent; the cursor file is named after it.
    name: str = Field(min_length=1, max_length=64, pattern=_NAME)
    url: str | None = None
    query: str = Field(default="*", min_length=1, max_length=4096)
    # Seconds between polls once caught up; a source behind by more than a window polls again at once.
    interval_s: float = Field(default=30.0, gt=0, le=3600)
    # Events are asked for up to this long ago: sources index lines a little after they happen.
    lag_s: float = Field(default=30.0, ge=0, le=3600)
    # Each window starts this long before the previous one ended, so a line indexed late (but within
    # it) is still fetched; lines seen in the overlap are skipped by their event id.
    overlap_s: float = Field(default=120.0, ge=0, le=86_400)
    # A window ends at most this long after the previous one ended (catching up after downtime goes
    # window by window).
    max_window_s: float = Field(default=3600.0, gt=0, le=86_400)
    # How far back the very first poll reaches (nothing older is fetched).
    initial_lookback_s: float = Field(default=900.0, ge=0, le=30 * 86_400)
    timeout_s: float = Field(default=30.0, gt=0, le=300)
    backoff_base_s: float = Field(default=1.0, gt=0, le=600)
    backoff_cap_s: float = Field(default=300.0, gt=0, le=3600)
    # Event ids remembered to skip lines already stored (the overlap's and the current window's).
    max_seen_ids: int = Field(default=100_000, ge=100, le=5_000_000)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not carry user info: put credentials in their own (secret) fields")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or fragment")
        return url.rstrip("/")

    @model_validator(mode="after")
    def _backoff_order(self) -> _PollerBase:
        if self.backoff_cap_s < self.backoff_base_s:
            raise ValueError("backoff_cap_s must be >= backoff_base_s")
        return self


def _one_of(value: object, file: object, what: str) -> None:
    if (value is None) == (file is None):
        raise ValueError(f"give {what} or {what}_file (exactly one)")


class DatadogPollerConfig(_PollerBase):
    """Datadog Logs: `POST {url}/api/v2/logs/events/search`, cursor pages, oldest first."""

    kind: Literal["datadog"]
    # The API host is api.<site> unless `url` names it.
    site: str = Field(default="datadoghq.com", pattern=r"^[A-Za-z0-9.-]+$", max_length=100)
    indexes: tuple[str, ...] = ("*",)
    # Events per page: Datadog answers at most 5000.
    page_limit: int = Field(default=1000, ge=1, le=5000)
    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    application_key: SecretStr | None = None
    application_key_file: Path | None = None

    @model_validator(mode="after")
    def _keys(self) -> DatadogPollerConfig:
        _one_of(self.api_key, self.api_key_file, "api_key")
        _one_of(self.application_key, self.application_key_file, "application_key")
        return self

    @property
    def base_url(self) -> str:
        return self.url or f"https://api.{self.site}"


class SplunkPollerConfig(_PollerBase):
    """Splunk: `POST {url}/services/search/jobs/export` with `output_mode=json`, read as a stream."""

    kind: Literal["splunk"]
    url: str  # the management port, e.g. https://splunk:8089
    # `_time`: windows on event time (earliest/latest_time); `_indextime`: on index time
    # (index_earliest/index_latest), which also catches lines indexed long after they happened.
    window_on: Literal["_time", "_indextime"] = "_time"
    # `Bearer` for Splunk authentication tokens, `Splunk` for session keys.
    auth_scheme: Literal["Bearer", "Splunk"] = "Bearer"
    token: SecretStr | None = None
    token_file: Path | None = None
    # A streamed line longer than this is skipped and counted (a result is one line).
    max_line_bytes: int = Field(default=1 << 20, ge=1024, le=64 << 20)
    # Lines are stored (and the cursor saved) every this many results.
    batch_lines: int = Field(default=500, ge=1, le=10_000)
    # One export stream may take this long in all (its reads are bounded by timeout_s each).
    max_stream_s: float = Field(default=600.0, gt=0, le=86_400)

    @model_validator(mode="after")
    def _token(self) -> SplunkPollerConfig:
        _one_of(self.token, self.token_file, "token")
        return self


PollerConfig = Annotated[DatadogPollerConfig | SplunkPollerConfig, Field(discriminator="kind")]
