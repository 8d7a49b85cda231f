"""The head block: points accepted since the last flush, kept column-wise, also present in the journal.

Why columns rather than a buffer per series: agents send one point per series per poll, so a batch
of a thousand series would cost a thousand small appends. Instead a batch is appended as whole arrays
(a series id per point); every `RUN_POINTS` points the tail is sorted by (series, time) into a run, so
reading one series is a binary search per run plus a scan of the short unsorted tail.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from shared.model import Event, F64Array, I64Array

RUN_POINTS = 1 << 16


class _Run:
    """Points sorted by (series id, time); equal keys keep arrival order."""

    __slots__ = ("sids", "ts", "vals")

    def __init__(self, sids: np.ndarray, ts: I64Array, vals: F64Array) -> None:
        order = np.lexsort((ts, sids))
        self.sids, self.ts, self.vals = sids[order], ts[order], vals[order]


class Head:
    """In-memory points and events not yet flushed."""

    def __init__(self, run_points: int = RUN_POINTS) -> None:
        self._run_points = run_points
        self._runs: list[_Run] = []
        self._tail: list[tuple[np.ndarray, I64Array, F64Array]] = []
        self._tail_points = 0
        self.points = 0
        self.events: list[tuple[str, Event]] = []

    def append(self, sids: np.ndarray, ts: I64Array, vals: F64Array) -> None:
        """Adds points (one series id per point) in arrival order."""
        if ts.shape[0] == 0:
            return
        self._tail.append((sids, ts, vals))
        self._tail_points += ts.shape[0]
        self.points += ts.shape[0]
        if self._tail_points >= self._run_points:
            self._runs.append(_Run(*self._concat_tail()))
            self._tail.clear()
            self._tail_points = 0

    def get(self, sid: int) -> tuple[I64Array, F64Array] | None:
        """One series' head points, sorted, the latest arrival winning for a repeated timestamp."""
        ts_parts: list[I64Array] = []
        val_parts: list[F64Array] = []
        for run in self._runs:
            lo, hi = np.searchsorted(run.sids, [sid, sid + 1])
            if hi > lo:
                ts_parts.append(run.ts[lo:hi])
                val_parts.append(run.vals[lo:hi])
        for sids, ts, vals in self._tail:
            mine = sids == sid
            if mine.any():
                ts_parts.append(ts[mine])
                val_parts.append(vals[mine])
        if not ts_parts:
            return None
        ts, vals = np.concatenate(ts_parts), np.concatenate(val_parts)
        if ts.shape[0] > 1 and not bool(np.all(ts[1:] > ts[:-1])):
            ts, vals = latest_wins(ts, vals)
        return ts, vals

    def view(self) -> HeadView:
        """A snapshot for reading without the store lock: copies of the run and tail lists (the arrays in
        them are never changed once appended), so later appends and `clear()` do not affect it."""
        return HeadView([(list(self._runs), list(self._tail))])

    def items(self) -> Iterator[tuple[int, I64Array, F64Array]]:
        """Every series' head points (as `get` gives them), in series id order."""
        if self.points == 0:
            return
        parts = [(r.sids, r.ts, r.vals) for r in self._runs]
        if self._tail:
            parts.append(self._concat_tail())
        sids = np.concatenate([p[0] for p in parts])
        ts = np.concatenate([p[1] for p in parts])
        vals = np.concatenate([p[2] for p in parts])
        order = np.lexsort((ts, sids))  # stable: repeated (series, time) stay in arrival order
        sids, ts, vals = sids[order], ts[order], vals[order]
        keep = np.append((sids[1:] != sids[:-1]) | (ts[1:] != ts[:-1]), True)
        sids, ts, vals = sids[keep], ts[keep], vals[keep]
        starts = np.concatenate(([0], np.flatnonzero(sids[1:] != sids[:-1]) + 1))
        ends = np.append(starts[1:], sids.shape[0])
        for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
            yield int(sids[lo]), ts[lo:hi], vals[lo:hi]

    def clear(self) -> None:
        self._runs.clear()
        self._tail.clear()
        self._tail_points = 0
        self.points = 0
        self.events.clear()

    def _concat_tail(self) -> tuple[np.ndarray, I64Array, F64Array]:
        return (
            np.concatenate([t[0] for t in self._tail]),
            np.concatenate([t[1] for t in self._tail]),
            np.concatenate([t[2] for t in self._tail]),
        )


def latest_wins(ts: I64Array, vals: F64Array) -> tuple[I64Array, F64Array]:
    """Sorts points by time keeping, for a repeated timestamp, the one that came last in the input.

    Why: merging stored points with newer ones (a re-sent or corrected batch) must let the newer win.
    """
    order = np.argsort(ts, kind="stable")
    ts, vals = ts[order], vals[order]
    keep = np.append(ts[1:] != ts[:-1], True)
    return ts[keep], vals[keep]


def merge_newer(
    old_ts: I64Array, old_vals: F64Array, new_ts: I64Array, new_vals: F64Array
) -> tuple[I64Array, F64Array]:
    """Merges sorted stored points with sorted newer ones, the newer winning on equal timestamps.

    The common case, new points all after the stored ones, is a plain concatenation.
    """
    ts, vals = np.concatenate((old_ts, new_ts)), np.concatenate((old_vals, new_vals))
    if old_ts.shape[0] and new_ts.shape[0] and new_ts[0] <= old_ts[-1]:
        return latest_wins(ts, vals)
    return ts, vals


class HeadView:
    """Read-only snapshot of one or more heads (see `Head.view`, `then`): series looked up many at once,
    vectorized."""

    def __init__(
        self, segments: list[tuple[list[_Run], list[tuple[np.ndarray, I64Array, F64Array]]]]
    ) -> None:
        self._segments = segments  # (runs, tail) per head, oldest first

    def then(self, newer: HeadView) -> HeadView:
        """This view followed by a newer head's (a head being flushed, then the one taking writes): of a
        repeated timestamp the newer head's point wins."""
        return HeadView(self._segments + newer._segments)

    def get_many(self, sids: list[int]) -> dict[int, tuple[I64Array, F64Array]]:
        """Head points of each of `sids` that has any, as `Head.get` gives them: one binary search per
        run and one membership test per tail part for all series, not one per series."""
        want = np.asarray(sorted(sids), dtype=np.int64)
        parts: dict[int, list[tuple[I64Array, F64Array]]] = {}
        for runs, tail in self._segments:
            for run in runs:
                los = np.searchsorted(run.sids, want)
                his = np.searchsorted(run.sids, want + 1)
                for i in np.flatnonzero(his > los).tolist():
                    lo, hi = int(los[i]), int(his[i])
                    parts.setdefault(int(want[i]), []).append((run.ts[lo:hi], run.vals[lo:hi]))
            for tail_sids, ts, vals in tail:
                hit = np.isin(tail_sids, want)
                if not hit.any():
                    continue
                sub_sids, sub_ts, sub_vals = tail_sids[hit], ts[hit], vals[hit]
                for sid in np.unique(sub_sids).tolist():
                    mine = sub_sids == sid
                    parts.setdefault(int(sid), []).append((sub_ts[mine], sub_vals[mine]))
        out = {}
        for sid, chunks in parts.items():
            t = np.concatenate([c[0] for c in chunks])
            v = np.concatenate([c[1] for c in chunks])
            if t.shape[0] > 1 and not bool(np.all(t[1:] > t[:-1])):
                t, v = latest_wins(t, v)
            out[sid] = (t, v)
        return out
