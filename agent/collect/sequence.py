"""A deterministic test source: a known sequence of points, so a chaos test can account for every one.

Tick j carries timestamp `start_ms + j * step_ms` and value `j` on each of `series` series
(`outpost_test_sequence{series="k"}`); each poll emits the next `ticks_per_poll` ticks until `ticks`
have been emitted. After a crash the runtime tells it where the durable spool ends (`resume_after`), so
the restarted agent continues exactly after the last point that reached disk: nothing skipped (what
was only in memory is emitted again) and nothing emitted twice (what is on disk is not).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.collect.base import ConfiguredTarget
from shared.clock import Clock, SystemClock
from shared.model import CollectResult, MetricKind, Sample, SeriesKey

METRIC = "outpost_test_sequence"


class SequenceConfig(BaseModel):
    """Emits `ticks` ticks of `series` points each; `start_ms` defaults to the first start's wall time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["sequence"] = "sequence"
    name: str = Field(default="sequence", min_length=1)
    interval_s: float = Field(default=0.1, gt=0)
    series: int = Field(default=1, ge=1, le=100_000)
    ticks: int = Field(default=1000, ge=0)
    ticks_per_poll: int = Field(default=10, ge=1)
    start_ms: int | None = None
    step_ms: int = Field(default=1000, ge=1)


class SequenceCollector(ConfiguredTarget[SequenceConfig]):
    """Collector for `kind: sequence`."""

    def __init__(self, config: SequenceConfig, clock: Clock | None = None) -> None:
        self._config = config
        self._clock = clock or SystemClock()
        self._start_ms = config.start_ms if config.start_ms is not None else self._clock.now_ms()
        self._keys = [SeriesKey.of(METRIC, {"series": str(k)}) for k in range(config.series)]
        self.next_tick = 0

    def resume_after(self, ts_ms: int) -> None:
        """Continues after the tick stamped `ts_ms` (the newest point already durable), if it is ours."""
        if ts_ms >= self._start_ms:
            self.next_tick = max(self.next_tick, (ts_ms - self._start_ms) // self._config.step_ms + 1)

    async def start(self) -> None:
        return None

    async def collect(self) -> CollectResult:
        cfg = self._config
        end = min(cfg.ticks, self.next_tick + cfg.ticks_per_poll)
        samples = [
            Sample(key, self._start_ms + j * cfg.step_ms, float(j), MetricKind.GAUGE)
            for j in range(self.next_tick, end)
            for key in self._keys
        ]
        self.next_tick = end
        return CollectResult(self.target, samples)

    async def aclose(self) -> None:
        return None
