"""Scoring of pushed series at the hub (`detect:` in hub.yaml).

detect:
  enabled: true                 # pushed points are scored (off: stored only)
  max_series_per_source: 100000 # series one pushing credential may have scored; new ones beyond: dropped
  max_sources: 1000             # pushing credentials scored at once; beyond: their points dropped
  max_queued_points: 1000000    # points waiting for the scorer; beyond: messages dropped (counted)
  tick_s: 0.2                   # queued points are scored together this often
  yield_to_ingest_s: 10         # while batches are being stored, scoring waits up to this long
  bank:                         # the detector bank's own settings, as the agent's `detect:` section
    default: {detector: robust, sensitivity: 0.5, warmup_points: 120}
    rules: [{pattern: "disk_*", seasonality: weekly}]
    snapshot_interval_s: 300    # detector state saved this often (and at stop) under <data_dir>/detect/
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.detect import DetectConfig


class PushDetectConfig(BaseModel):
    """On by default: pushed data is scored like agent data, so Telegraf and Prometheus series raise the
    same `EdgeAnomaly` alerts (through confirmation when `confirm.enabled`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    bank: DetectConfig = DetectConfig()
    # Per source (one API key), so one noisy pusher cannot take the memory every other source scores in;
    # replaces the bank's own `max_series`.
    max_series_per_source: int = Field(default=100_000, ge=1, le=10_000_000)
    max_sources: int = Field(default=1000, ge=1, le=1_000_000)
    max_queued_points: int = Field(default=1_000_000, ge=1, le=100_000_000)
    tick_s: float = Field(default=0.2, gt=0, le=60)
    # While the hub is storing batches, queued points wait up to this long (or until the queue is half
    # full) before they are scored, so that scoring (same process) does not slow ingest down; 0: never.
    yield_to_ingest_s: float = Field(default=10.0, ge=0, le=600)

    def bank_config(self) -> DetectConfig:
        """The bank's config with this section's per-source series cap."""
        return self.bank.model_copy(update={"max_series": self.max_series_per_source})
