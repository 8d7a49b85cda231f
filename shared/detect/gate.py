"""Thresholding, kept apart from scoring: turns scores into accept/reject, anomaly onsets and their ends.

Per series it tracks the lifecycle (learning -> active -> stale), k-of-n persistence, a suppression window
after each onset, and device limits, which act as guardrails even while the baseline is still learning.
A rejected point is not learned by the baseline, which is what protects the model from the anomaly.

An event (score or limit onset) stays open until the series is back to normal: `end_points` consecutive
points (at least END_QUIET_POINTS, at least persistence_n) that are neither flagged nor beyond a device
limit. Why a run, not one point: a burst or a noisy excursion has quiet points inside it, and ending
there would page again at the next point. A missing point neither ends nor prolongs an event; an event
of a series that stops reporting is never ended here (nothing says it is normal again), and its state is
two bytes in the row, freed with the row when the series is forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from shared.detect.columns import Column, Columns, Rows
from shared.detect.config import DetectRule
from shared.model import Limits

# Set bits of each byte: k-of-n persistence keeps the last n flags of a series as the bits of one uint8.
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
# Order of the limit columns; a crossed critical limit outranks a warning one.
LIMIT_REASONS = ("limit.crit_high", "limit.crit_low", "limit.warn_high", "limit.warn_low")
# Fewest consecutive normal points that end an open event.
END_QUIET_POINTS = 3
# Gate columns newer than the first snapshot format: a snapshot without them restores with fresh values.
ADDED_COLUMNS = ("open", "quiet")


class SeriesState(IntEnum):
    """Where a series is in its life; anomaly events only come from `active` series."""

    LEARNING = 0
    ACTIVE = 1
    STALE = 2


class Level(IntEnum):
    """What a point triggered: nothing, a warning or a critical event (shared.model.Severity values)."""

    NONE = 0
    WARNING = 2
    CRITICAL = 3


@dataclass(frozen=True, slots=True, eq=False)
class Verdict:
    """The gate's decision for each point of one call."""

    accept: npt.NDArray[np.bool_]  # learn this point (it looked normal)
    level: npt.NDArray[np.int8]  # Level of the event this point starts (NONE: no event)
    limit_reason: npt.NDArray[np.int8]  # index into LIMIT_REASONS, or -1 when the score triggered
    end: npt.NDArray[np.bool_] | None  # the point ends its series' open event (None: no point does)


class Gate:
    """Per-series thresholding state for the series of one rule."""

    def __init__(self, rule: DetectRule) -> None:
        self.threshold = rule.threshold
        self.critical = rule.critical_score
        self.warmup_points = rule.warmup_points
        self.warmup_ms = int(rule.warmup_s * 1000)
        self.k = rule.persistence_k
        self.n_mask = np.uint8((1 << rule.persistence_n) - 1)
        self.suppress_ms = int(rule.suppress_s * 1000)
        self.end_points = max(END_QUIET_POINTS, rule.persistence_n)
        # Until some series of this rule gets device limits, guardrails cost nothing.
        self.limited = False
        self.columns = Columns(
            {
                "n": Column(np.int32),
                "first_ts": Column(np.int64),
                "last_ts": Column(np.int64),
                "hits": Column(np.uint8),
                "in_anomaly": Column(np.bool_),
                "suppress_until": Column(np.int64),
                "lim": Column(np.float64, float("nan"), (4,)),
                "lim_level": Column(np.int8),
                "open": Column(np.bool_),  # an onset was emitted and its end not yet
                "quiet": Column(np.uint8),  # consecutive normal points since, while open
            }
        )

    def judge(
        self, rows: Rows, ts_ms: npt.NDArray[np.int64], x: npt.NDArray[np.float64], scores: np.ndarray
    ) -> Verdict:
        """Decides and records, for finite points `x` of `rows` with their `scores`."""
        c = self.columns.a
        n = c["n"][rows]
        first_ts = np.where(n == 0, ts_ms, c["first_ts"][rows])
        c["first_ts"][rows] = first_ts
        learning = (n < self.warmup_points) | (ts_ms - first_ts < self.warmup_ms)
        flag = (scores >= self.threshold) & ~learning
        hits = ((c["hits"][rows] << np.uint8(1)) | flag.astype(np.uint8)) & self.n_mask
        in_anomaly = c["in_anomaly"][rows]
        onset = (_POPCOUNT[hits] >= self.k) & ~in_anomaly & (ts_ms >= c["suppress_until"][rows])
        c["hits"][rows] = hits
        c["in_anomaly"][rows] = (in_anomaly | onset) & (hits != 0)
        c["suppress_until"][rows] = np.where(onset, ts_ms + self.suppress_ms, c["suppress_until"][rows])
        c["n"][rows] = n + 1
        c["last_ts"][rows] = ts_ms
        level = np.where(onset, np.where(scores >= self.critical, Level.CRITICAL, Level.WARNING), Level.NONE)
        limit_level, reason, beyond = self._guardrails(rows, x)
        from_limit = limit_level > level
        events = np.maximum(level, limit_level).astype(np.int8)
        return Verdict(
            accept=~flag,
            level=events,
            limit_reason=np.where(from_limit, reason, -1).astype(np.int8),
            end=self._ends(rows, events, flag, beyond),
        )

    def _ends(
        self, rows: Rows, events: np.ndarray, flag: np.ndarray, beyond: np.ndarray | None
    ) -> npt.NDArray[np.bool_] | None:
        """Which points end their series' open event (None: none does); opens the events that start at
        these points (`events` > 0). See the module docstring for the rule."""
        c = self.columns.a
        was_open = c["open"][rows]
        if not was_open.any() and not events.any():  # the common poll: nothing open, nothing new
            return None
        started = events > 0
        normal = ~flag if beyond is None else ~flag & ~beyond
        quiet = np.where(was_open & normal, np.minimum(c["quiet"][rows], 254) + 1, 0).astype(np.uint8)
        end = was_open & ~started & (quiet >= self.end_points)
        still_open = (was_open | started) & ~end
        c["open"][rows] = still_open
        c["quiet"][rows] = np.where(still_open & ~started, quiet, 0)
        return end if end.any() else None

    def _guardrails(
        self, rows: Rows, x: npt.NDArray[np.float64]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Level of a newly crossed device limit per point (only on escalation), which limit it was, and
        whether the point is beyond any limit at all (None when no series of this rule has limits)."""
        if not self.limited:
            none = np.zeros(x.shape[0], dtype=np.int8)
            return none, none, None
        c = self.columns.a
        lim = c["lim"][rows]
        with np.errstate(invalid="ignore"):
            crossed = np.stack([x >= lim[:, 0], x <= lim[:, 1], x >= lim[:, 2], x <= lim[:, 3]], axis=1)
        reason = np.argmax(crossed, axis=1)
        level = np.where(
            crossed.any(axis=1), np.where(reason < 2, Level.CRITICAL, Level.WARNING), Level.NONE
        ).astype(np.int8)
        was = c["lim_level"][rows].copy()  # a slice of rows is a view; read before the write
        c["lim_level"][rows] = level
        return np.where(level > was, level, Level.NONE), reason, level > 0

    def set_limits(self, row: int, limits: Limits) -> None:
        """Remembers a series' device limits until replaced (NaN where the device gave none)."""
        vals = (limits.crit_high, limits.crit_low, limits.warn_high, limits.warn_low)
        self.columns.a["lim"][row] = [np.nan if v is None else v for v in vals]
        self.limited = True

    def states(self, now_ms: int, stale_ms: int) -> npt.NDArray[np.int8]:
        """SeriesState of every row at `now_ms`."""
        c, n = self.columns.a, self.columns.n
        learning = (c["n"][:n] < self.warmup_points) | (c["last_ts"][:n] - c["first_ts"][:n] < self.warmup_ms)
        stale = c["last_ts"][:n] < now_ms - stale_ms
        return np.where(
            stale, SeriesState.STALE, np.where(learning, SeriesState.LEARNING, SeriesState.ACTIVE)
        ).astype(np.int8)
