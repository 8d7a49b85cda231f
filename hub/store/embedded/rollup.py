"""Rollups: per-bucket min/max/sum/count/last of a series, the columns that make coarse queries cheap.

All five columns are mergeable (min of mins, sum of sums...), so a rollup at one resolution coarsens
exactly to any multiple of it, and raw points are simply rollups of one-point buckets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hub.store.base import Agg
from shared.model import F64Array, I64Array

RES_5M = 5 * 60 * 1000
RES_1H = 60 * 60 * 1000
# Coarsest first: a query uses the coarsest resolution that divides its step.
ROLLUP_RESOLUTIONS = (RES_1H, RES_5M)


@dataclass(frozen=True, slots=True, eq=False)
class Rollup:
    """Aggregates of consecutive buckets; `ts` holds each bucket's start, strictly increasing."""

    ts: I64Array
    min: F64Array
    max: F64Array
    sum: F64Array
    count: F64Array
    last: F64Array

    @classmethod
    def empty(cls) -> Rollup:
        z = np.zeros(0, np.float64)
        return cls(np.zeros(0, np.int64), z, z, z, z, z)

    @classmethod
    def of_points(cls, ts: I64Array, vals: F64Array, res_ms: int) -> Rollup:
        """Rolls sorted raw points up into buckets of `res_ms` aligned to multiples of it."""
        return cls(ts, vals, vals, vals, np.ones(vals.shape[0], np.float64), vals).coarsen(res_ms)

    @classmethod
    def concat(cls, parts: list[Rollup]) -> Rollup:
        """Joins rollups of consecutive, non-overlapping time ranges."""
        if not parts:
            return cls.empty()
        cols = [np.concatenate(c) for c in zip(*(p.columns() for p in parts), strict=True)]
        return cls.from_columns(np.concatenate([p.ts for p in parts]), cols)

    @classmethod
    def from_columns(cls, ts: I64Array, cols: list[F64Array]) -> Rollup:
        """Inverse of `columns()`, for the chunk codec."""
        mn, mx, sm, ct, last = cols
        return cls(ts, mn, mx, sm, ct, last)

    def columns(self) -> list[F64Array]:
        return [self.min, self.max, self.sum, self.count, self.last]

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def coarsen(self, step_ms: int) -> Rollup:
        """Merges buckets into buckets of `step_ms` (a multiple of the current width), vectorized."""
        if len(self) == 0:
            return self
        buckets = (self.ts // step_ms) * step_ms
        starts = np.concatenate(([0], np.flatnonzero(buckets[1:] != buckets[:-1]) + 1))
        ends = np.append(starts[1:], len(self)) - 1
        return Rollup(
            buckets[starts].astype(np.int64),
            np.minimum.reduceat(self.min, starts),
            np.maximum.reduceat(self.max, starts),
            np.add.reduceat(self.sum, starts),
            np.add.reduceat(self.count, starts),
            self.last[ends],
        )

    def select(self, agg: Agg) -> F64Array:
        """The column answering `agg` (avg is sum / count)."""
        if agg is Agg.AVG:
            return self.sum / self.count
        column: dict[Agg, F64Array] = {
            Agg.MIN: self.min,
            Agg.MAX: self.max,
            Agg.SUM: self.sum,
            Agg.COUNT: self.count,
            Agg.LAST: self.last,
        }
        return column[agg]

    def overlapping(self, start_ms: int, end_ms: int, res_ms: int) -> Rollup:
        """Buckets of width `res_ms` that overlap [start_ms, end_ms]: range edges widen to whole buckets."""
        return self._masked((self.ts + res_ms > start_ms) & (self.ts <= end_ms))

    def replace_blocks(self, newer: Rollup, blocks: I64Array, block_ms: int) -> Rollup:
        """Drops this rollup's buckets inside the given raw blocks and puts `newer`'s in their place.

        Why whole blocks: a raw block always holds whole rollup buckets, and `newer` was computed from
        the complete content of those blocks, so replacing (not merging) is exact and idempotent.
        """
        kept = self._masked(~np.isin(self.ts // block_ms, blocks))
        ts = np.concatenate((kept.ts, newer.ts))
        order = np.argsort(ts, kind="stable")
        merged = [np.concatenate((a, b))[order] for a, b in zip(kept.columns(), newer.columns(), strict=True)]
        return Rollup.from_columns(ts[order], merged)

    def _masked(self, mask: np.ndarray) -> Rollup:
        return Rollup(
            self.ts[mask], self.min[mask], self.max[mask], self.sum[mask], self.count[mask], self.last[mask]
        )
