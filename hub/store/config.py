"""Store configuration: one frozen model per backend, picked by `kind` (built by `hub.store.factory`).

In the hub's YAML:

    store:
      kind: embedded            # default; no external server
      raw_retention: P14D       # durations: ISO 8601 or seconds
    # or
    store:
      kind: influx
      url: http://influx:8086
      bucket: outpost
      org: noc
      token: <API token>        # never logged
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from shared.delivery import DEDUP_WINDOW_S, describe_window

# Agents replay their spool for up to DEDUP_WINDOW_S after an outage (their config is validated against
# the same constant), so batch ids must be remembered at least that long.
MIN_DEDUP_WINDOW = timedelta(seconds=DEDUP_WINDOW_S)


def _check_dedup_window(value: timedelta) -> timedelta:
    if value < MIN_DEDUP_WINDOW:
        raise ValueError(
            f"must be at least {describe_window()}: agents replay their spool that long, and a batch id "
            "forgotten earlier would be stored and counted twice"
        )
    return value


class EmbeddedStoreConfig(BaseModel):
    """The default store: compressed chunks in SQLite under the hub's data dir, durable via a journal."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["embedded"] = "embedded"
    # Directory, relative to the hub's data dir unless absolute.
    path: Path = Path("store")
    raw_retention: timedelta = timedelta(days=14)
    rollup_5m_retention: timedelta = timedelta(days=90)
    rollup_1h_retention: timedelta = timedelta(days=800)
    events_retention: timedelta = timedelta(days=90)
    dedup_window: timedelta = MIN_DEDUP_WINDOW
    # The head (and journal) is flushed into chunks when it holds this many points or is this old.
    head_max_points: int = Field(default=4_000_000, gt=0)
    flush_interval: timedelta = timedelta(minutes=10)

    _dedup_window = field_validator("dedup_window")(_check_dedup_window)

    @model_validator(mode="after")
    def _check_windows(self) -> EmbeddedStoreConfig:
        if not self.raw_retention <= self.rollup_5m_retention <= self.rollup_1h_retention:
            raise ValueError("retention must not shrink as resolution coarsens (raw <= 5m <= 1h)")
        return self


class InfluxStoreConfig(BaseModel):
    """InfluxDB (1.x, 2.x, 3.x): writes via the v2 write endpoint (or v1 `/write`), reads via InfluxQL.

    InfluxQL reads address `database`: on 2.x it must be mapped to the bucket (a DBRP mapping, created
    by `influx v1 dbrp create`); on 3.x it is the database name; on 1.x the database must exist.
    The token is sent as `Authorization: Token ...` (1.8+ accepts `user:password` there).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["influx"] = "influx"
    url: str
    org: str = ""
    bucket: str = "outpost"
    # Database name for InfluxQL `/query?db=` and v1 `/write?db=`; defaults to the bucket.
    database: str = ""
    token: SecretStr | None = None
    # v2: /api/v2/write (InfluxDB 2.x, 3.x, 1.8+); v1: /write?db= (InfluxDB 1.x before 1.8).
    write_mode: Literal["v2", "v1"] = "v2"
    # Lines per HTTP write request.
    batch_size: int = Field(default=5000, gt=0)
    max_retries: int = Field(default=5, ge=0)
    retry_interval: timedelta = timedelta(milliseconds=500)
    # write() gives up (raises TransientError, the batch is not acknowledged) after this long.
    write_timeout: timedelta = timedelta(seconds=30)
    http_timeout: timedelta = timedelta(seconds=10)
    # Local SQLite file (relative to the hub's data dir) holding batch ids and events.
    ledger_path: Path = Path("influx-ledger.sqlite")
    dedup_window: timedelta = MIN_DEDUP_WINDOW
    events_retention: timedelta = timedelta(days=90)

    @property
    def database_name(self) -> str:
        return self.database or self.bucket

    _dedup_window = field_validator("dedup_window")(_check_dedup_window)


StoreConfig = Annotated[EmbeddedStoreConfig | InfluxStoreConfig, Field(discriminator="kind")]
