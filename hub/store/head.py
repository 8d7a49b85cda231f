"""The head block: points received since the last flush, per series, in growable column buffers.

Why buffers rather than a list of arrays per batch: agents often send one point per series per batch,
and a buffer keeps that at one slice assignment per series instead of one small array object per point.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from shared.model import Event, F64Array, I64Array

_INITIAL_CAPACITY = 32


class _Buffer:
    __slots__ = ("ts", "vals", "n", "ordered")

    def __init__(self) -> None:
        self.ts: I64Array = np.empty(_INITIAL_CAPACITY, np.int64)
        self.vals: F64Array = np.empty(_INITIAL_CAPACITY, np.float64)
        self.n = 0
        self.ordered = True

    def append(self, ts: I64Array, vals: F64Array) -> None:
        k = ts.shape[0]
        end = self.n + k
        if end > self.ts.shape[0]:
            cap = max(end, 2 * self.ts.shape[0])
            self.ts = np.concatenate((self.ts[: self.n], np.empty(cap - self.n, np.int64)))
            self.vals = np.concatenate((self.vals[: self.n], np.empty(cap - self.n, np.float64)))
        if self.n and ts[0] <= self.ts[self.n - 1]:
            self.ordered = False
        self.ts[self.n : end] = ts
        self.vals[self.n : end] = vals
        self.n = end

    def points(self) -> tuple[I64Array, F64Array]:
        """Sorted, one point per timestamp; sorts in place once after out-of-order appends."""
        if not self.ordered:
            ts, vals = latest_wins(self.ts[: self.n], self.vals[: self.n])
            self.n = ts.shape[0]
            self.ts[: self.n] = ts
            self.vals[: self.n] = vals
            self.ordered = True
        return self.ts[: self.n], self.vals[: self.n]


class Head:
    """In-memory points and events not yet flushed; everything here is also in the journal."""

    def __init__(self) -> None:
        self._buffers: dict[int, _Buffer] = {}
        self.points = 0
        self.events: list[tuple[str, Event]] = []

    def append(self, sid: int, ts: I64Array, vals: F64Array) -> None:
        buf = self._buffers.get(sid)
        if buf is None:
            buf = self._buffers[sid] = _Buffer()
        buf.append(ts, vals)
        self.points += ts.shape[0]

    def get(self, sid: int) -> tuple[I64Array, F64Array] | None:
        """The series' head points (views: copy before the next append if kept)."""
        buf = self._buffers.get(sid)
        return None if buf is None else buf.points()

    def items(self) -> Iterator[tuple[int, I64Array, F64Array]]:
        for sid, buf in self._buffers.items():
            ts, vals = buf.points()
            yield sid, ts, vals

    def is_empty(self) -> bool:
        return not self._buffers and not self.events

    def clear(self) -> None:
        self._buffers.clear()
        self.events.clear()
        self.points = 0


def latest_wins(ts: I64Array, vals: F64Array) -> tuple[I64Array, F64Array]:
    """Sorts points by time keeping, for a repeated timestamp, the one that came last in the input.

    Why: merging stored points with newer ones (a re-sent or corrected batch) must let the newer win.
    """
    order = np.argsort(ts, kind="stable")
    ts, vals = ts[order], vals[order]
    keep = np.r_[ts[1:] != ts[:-1], True]
    return ts[keep], vals[keep]
