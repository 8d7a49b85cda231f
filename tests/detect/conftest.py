"""Fixtures and helpers for detection tests: feed synthetic signals point by point through a bank."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest

from shared.detect import DetectConfig, DetectorBank, DetectRule
from shared.detect.bank import END_KIND, EVENT_KIND
from shared.model import Event, Limits, SeriesKey

T0_MS = 1_700_000_000_000  # a Tuesday, 22:13 UTC
MINUTE_MS = 60_000


@dataclass
class Run:
    """Scores (one row per tick, one column per key) and events of a fed signal."""

    scores: np.ndarray
    events: list[Event] = field(default_factory=list)

    @property
    def onsets(self) -> list[Event]:
        return [e for e in self.events if e.kind == EVENT_KIND]

    @property
    def ends(self) -> list[Event]:
        return [e for e in self.events if e.kind == END_KIND]

    def event_ticks(self, ts_ms: np.ndarray) -> list[int]:
        """Tick index of every anomaly onset, in order."""
        where = {int(t): i for i, t in enumerate(ts_ms.tolist())}
        return [where[e.ts_ms] for e in self.onsets]

    def end_ticks(self, ts_ms: np.ndarray) -> list[int]:
        """Tick index of every anomaly end, in order."""
        where = {int(t): i for i, t in enumerate(ts_ms.tolist())}
        return [where[e.ts_ms] for e in self.ends]


def ticks(n: int, step_ms: int = MINUTE_MS) -> np.ndarray:
    """n timestamps `step_ms` apart from T0_MS."""
    return T0_MS + step_ms * np.arange(n, dtype=np.int64)


def feed(
    bank: DetectorBank,
    keys: Sequence[SeriesKey],
    ts_ms: np.ndarray,
    values: np.ndarray,
    limits: Mapping[SeriesKey, Limits] | None = None,
) -> Run:
    """Observes values[i] (one value per key) at ts_ms[i] for every tick i."""
    vals = values.reshape(len(ts_ms), len(keys))
    run = Run(np.zeros(vals.shape, dtype=np.float32))
    for i, t in enumerate(ts_ms.tolist()):
        obs = bank.observe(keys, np.full(len(keys), t, dtype=np.int64), vals[i], limits)
        run.scores[i] = obs.scores
        run.events.extend(obs.events)
    return run


def noise(n: int, level: float = 50.0, sd: float = 1.0, seed: int = 7) -> np.ndarray:
    """Gaussian noise around `level`, seeded so expected answers are exact."""
    return level + sd * np.random.default_rng(seed).standard_normal(n)


@pytest.fixture
def key() -> SeriesKey:
    return SeriesKey.of("cpu.util", {"device": "sw1", "core": "0"})


def bank_for(**rule: object) -> DetectorBank:
    """A bank whose default rule has the given settings."""
    return DetectorBank(DetectConfig(default=DetectRule.model_validate(rule)))
