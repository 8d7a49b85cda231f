"""Confirmation of edge onsets (`confirm:` in hub.yaml).

confirm:
  enabled: true          # onsets page only once the device's context model confirms them
  history_s: 172800      # history a device's forest is fitted on (2 days)
  refit_s: 3600          # a model older than this is fitted again from fresh history
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ConfirmConfig(BaseModel):
    """Off by default: with it on, an EdgeAnomaly alert waits for its verdict (one tick, `tick_s`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
    history_s: float = Field(default=2 * 86_400.0, ge=600, le=30 * 86_400)
    refit_s: float = Field(default=3600.0, ge=1, le=7 * 86_400)
    # A device needs this many described steps of history (after the trailing window) for a model;
    # until then its onsets are `unscored` and page as without confirmation.
    min_rows: int = Field(default=288, ge=16, le=100_000)
    # Share of the device's own history scored as normal: an onset scoring above that quantile is
    # confirmed. 0.998: one history step in 500 looks as unusual as a confirmed onset.
    quantile: float = Field(default=0.998, gt=0.5, lt=1.0)
    # Series of one device in its context (sorted by key); an onset on a series past the cap is unscored.
    max_series: int = Field(default=32, ge=1, le=256)
    # Onsets are judged in batches, one per tick; queued ones beyond `max_pending` are dropped (counted).
    tick_s: float = Field(default=0.5, gt=0, le=60)
    max_pending: int = Field(default=100_000, ge=1, le=10_000_000)
    # Fits per tick at most: a storm of new devices cannot stall the verdicts of those already fitted.
    max_fits_per_tick: int = Field(default=4, ge=1, le=1000)
