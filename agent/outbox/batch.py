"""Groups scored samples into batches, flushed on size or age, each with the next sequence number.

The batcher is the last place samples exist as Python objects: a flushed batch is column-wise. A series'
device limits (from the poll's CollectResult.limits) ride along with its points, the latest ones a poll
gave, so the hub's limit rules see what the device said.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from shared.clock import Clock
from shared.model import (
    Batch,
    BatchClass,
    Event,
    Heartbeat,
    Limits,
    MetricKind,
    Sample,
    SeriesKey,
    SeriesPoints,
)


@dataclass
class Sequencer:
    """Hands out (boot_epoch, seq) ids: seq starts at 1 and rises by one per batch of this process."""

    boot_epoch: int
    next_seq: int = 1

    def take(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq


@dataclass
class _Column:
    kind: MetricKind
    unit: str
    ts: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    limits: Limits | None = None


class Batcher:
    """Accumulates samples until `max_points` or `max_age_s`; events ride along in the same batch."""

    def __init__(self, sequencer: Sequencer, clock: Clock, max_points: int, max_age_s: float) -> None:
        self._seq = sequencer
        self._clock = clock
        self._max_points = max_points
        self._max_age_s = max_age_s
        self._columns: dict[SeriesKey, _Column] = {}
        self._events: list[Event] = []
        self._points = 0
        self._opened_at: float | None = None

    def add(
        self,
        samples: list[Sample],
        scores: np.ndarray | None = None,
        events: list[Event] | None = None,
        limits: Mapping[SeriesKey, Limits] | None = None,
    ) -> None:
        """Adds one poll's samples (with their edge anomaly scores, aligned), events and device limits.

        Args:
            limits: device limits by series key (as stamped by the scheduler); a series without an entry
                keeps the limits an earlier poll of this batch gave it.
        """
        if self._opened_at is None and (samples or events):
            self._opened_at = self._clock.monotonic()
        score_list = scores.tolist() if scores is not None else None
        for i, s in enumerate(samples):
            col = self._columns.get(s.key)
            if col is None:
                col = self._columns[s.key] = _Column(s.kind, s.unit)
            if limits:
                col.limits = limits.get(s.key, col.limits)
            if col.ts and s.ts_ms <= col.ts[-1]:
                continue  # a repeated or out-of-order reading: the wire requires increasing timestamps
            col.ts.append(s.ts_ms)
            col.values.append(s.value)
            if score_list is not None:
                col.scores.append(score_list[i])
            self._points += 1
        if events:
            self._events.extend(events)

    def due(self) -> bool:
        """True when the batch is full or its oldest content has waited `max_age_s`."""
        if self._opened_at is None:
            return False
        age = self._clock.monotonic() - self._opened_at
        return self._points >= self._max_points or age >= self._max_age_s

    def flush(self) -> Batch | None:
        """Returns the pending batch (or None when empty) and starts a new one."""
        if not self._columns and not self._events:
            return None
        series = tuple(
            SeriesPoints(
                key,
                np.asarray(c.ts, dtype=np.int64),
                np.asarray(c.values, dtype=np.float64),
                c.kind,
                c.unit,
                # Scores ship only when every point of the series was scored (the wire wants all or none).
                np.asarray(c.scores, dtype=np.float32) if len(c.scores) == len(c.ts) else None,
                c.limits,
            )
            for key, c in self._columns.items()
        )
        batch = Batch(self._seq.boot_epoch, self._seq.take(), series, tuple(self._events), BatchClass.METRICS)
        self._columns, self._events, self._points, self._opened_at = {}, [], 0, None
        return batch

    def event_batch(self, events: list[Event], batch_class: BatchClass = BatchClass.ANOMALY) -> Batch:
        """A small batch of urgent events sent at once, not waiting for the metrics batch."""
        return Batch(self._seq.boot_epoch, self._seq.take(), (), tuple(events), batch_class)

    def heartbeat_batch(self, heartbeat: Heartbeat, seq: int | None = None) -> Batch:
        """A heartbeat in its own envelope (class HEARTBEAT, no series, no events).

        Args:
            seq: the id of this boot's heartbeat still waiting unsent in the spool, which this one replaces
                under the same id, so a replaced heartbeat never shows as a lost batch (a seq gap) at the
                hub; None takes the next seq.
        """
        number = self._seq.take() if seq is None else seq
        return Batch(self._seq.boot_epoch, number, batch_class=BatchClass.HEARTBEAT, heartbeat=heartbeat)
