"""The `Store` interface every time-series backend implements, and its query value types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Protocol

import numpy as np

from hub.matchers import MAX_MATCHERS, MAX_NAME_LEN, Matcher
from shared.model import Batch, Event, F64Array, I64Array, SeriesKey, SeriesPoints

# Label the store adds to every series: the agent identity taken from its client certificate.
AGENT_LABEL = "agent"

# The time range queries may name, in epoch ms: 1970-01-01 .. 2200-01-01. Wider values are typos or
# attacks, and within it every step and bucket computation stays far from int64 overflow.
TIME_MIN_MS = 0
TIME_MAX_MS = 7_258_118_400_000
# Bounds of one query, so no request can ask for unbounded work.
MAX_POINTS_LIMIT = 1_000_000


class Agg(Enum):
    """Aggregation applied per step bucket."""

    AVG = "avg"
    MIN = "min"
    MAX = "max"
    LAST = "last"
    COUNT = "count"
    SUM = "sum"


@dataclass(frozen=True, slots=True)
class RangeQuery:
    """Points of every series of `metric` matching all matchers in [start_ms, end_ms].

    With `step_ms`, points are aggregated into buckets aligned to multiples of the step and stamped
    with the bucket start. `max_points` caps points per series: raw points when every series has at most
    that many in the range, else buckets of a step picked from the data present (see `effective_step`).
    Answers hold only series with points in the range, sorted by key text.

    Raises:
        ValueError: a bound is broken (times outside `TIME_MIN_MS..TIME_MAX_MS`, end before start, a step
            outside 1 ms .. the whole range of times, max_points outside 1..`MAX_POINTS_LIMIT`, more
            than `MAX_MATCHERS` matchers, an empty or overlong metric name).
    """

    metric: str
    start_ms: int
    end_ms: int
    matchers: tuple[Matcher, ...] = ()
    step_ms: int | None = None
    agg: Agg = Agg.AVG
    max_points: int | None = None

    def __post_init__(self) -> None:
        if not self.metric or len(self.metric) > MAX_NAME_LEN:
            raise ValueError(f"metric name must be 1 to {MAX_NAME_LEN} characters")
        for name, t in (("start", self.start_ms), ("end", self.end_ms)):
            if not TIME_MIN_MS <= t <= TIME_MAX_MS:
                raise ValueError(f"{name} outside 1970-01-01 .. 2200-01-01 ({TIME_MIN_MS}..{TIME_MAX_MS} ms)")
        if self.end_ms < self.start_ms:
            raise ValueError("end is before start")
        if self.step_ms is not None and not 0 < self.step_ms <= TIME_MAX_MS:
            raise ValueError(f"step must be 1 ms .. {TIME_MAX_MS} ms")
        if self.max_points is not None and not 0 < self.max_points <= MAX_POINTS_LIMIT:
            raise ValueError(f"max_points must be 1 .. {MAX_POINTS_LIMIT}")
        if len(self.matchers) > MAX_MATCHERS:
            raise ValueError(f"at most {MAX_MATCHERS} matchers")


@dataclass(frozen=True, slots=True, eq=False)
class SeriesResult:
    """One series' answer to a range query; `key` includes the `agent` label."""

    key: SeriesKey
    timestamps_ms: I64Array
    values: F64Array


@dataclass(frozen=True, slots=True, eq=False)
class SeriesColumns:
    """Points of many series in columns: series `i` is `keys[i]` with the points `offsets[i]` up to
    `offsets[i + 1]` of `timestamps_ms` and `values`, each series sorted by time (strictly increasing).

    What a receiver's parser hands the store for one push: a Telegraf push is thousands of series of
    three or four points each, and as `SeriesPoints` that is an object (and a length call, a slice, a
    concatenation) per series on every step from the parser to the journal; as columns it is array work.

    Raises:
        ValueError: the columns do not agree (one offset more than keys, from 0 to the point count).
    """

    keys: tuple[SeriesKey, ...]
    offsets: I64Array
    timestamps_ms: I64Array
    values: F64Array

    def __post_init__(self) -> None:
        n = self.timestamps_ms.shape[0]
        if (
            self.offsets.shape != (len(self.keys) + 1,)
            or self.timestamps_ms.shape != self.values.shape
            or self.timestamps_ms.ndim != 1
            or int(self.offsets[0]) != 0
            or int(self.offsets[-1]) != n
        ):
            raise ValueError("series columns disagree")

    def __len__(self) -> int:
        return int(self.timestamps_ms.shape[0])

    @property
    def counts(self) -> I64Array:
        """Points per series."""
        return np.diff(self.offsets)

    @classmethod
    def of_series(cls, series: Sequence[SeriesPoints]) -> SeriesColumns:
        """The series as columns.

        Raises:
            TypeError, ValueError: a series whose columns are not 1-d or differ in length.
        """
        counts = np.fromiter(map(len, (s.timestamps_ms for s in series)), np.int64, len(series))
        ts = np.concatenate([np.zeros(0, np.int64), *(s.timestamps_ms for s in series)])
        values = np.concatenate([np.zeros(0), *(s.values for s in series)])
        return cls(
            tuple(s.key for s in series),
            np.concatenate(([0], np.cumsum(counts))).astype(np.int64, copy=False),
            ts.astype(np.int64, copy=False),
            values.astype(np.float64, copy=False),
        )

    def series(self) -> tuple[SeriesPoints, ...]:
        """The columns as one `SeriesPoints` per series (views, not copies), for consumers of those."""
        bounds = self.offsets.tolist()
        return tuple(
            SeriesPoints(key, self.timestamps_ms[a:b], self.values[a:b])
            for key, a, b in zip(self.keys, bounds[:-1], bounds[1:], strict=True)
        )


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Outcome of a durable write: how many points were stored, or that the batch was a duplicate."""

    accepted_points: int
    duplicate: bool = False


class Store(Protocol):
    """A time-series backend. Methods are blocking; the hub calls them from worker threads.

    Contract: when `write` returns, the batch is durable (survives SIGKILL of the hub) and its id
    (agent, boot_epoch, seq) is recorded, so a re-sent batch returns `duplicate=True` and changes nothing.
    """

    def open(self) -> None: ...

    def write(self, agent: str, batch: Batch) -> WriteResult: ...

    def write_columns(self, agent: str, boot_epoch: int, seq: int, columns: SeriesColumns) -> WriteResult:
        """`write` of a batch of points only (no events, no logs), given as columns: the same
        durability and the same batch id (agent, boot_epoch, seq)."""
        ...

    def query(self, q: RangeQuery) -> list[SeriesResult]: ...

    def series(self, metric: str | None = None, matchers: tuple[Matcher, ...] = ()) -> list[SeriesKey]: ...

    def events(
        self, start_ms: int, end_ms: int, limit: int = 1000, kind: str | None = None
    ) -> list[tuple[str, Event]]:
        """Events in [start_ms, end_ms], newest first; `kind` keeps those whose kind starts with it
        (applied before the limit, so rare kinds are found behind many newer events of others)."""
        ...

    def apply_retention(self, now_ms: int) -> int: ...

    def close(self) -> None: ...


def effective_step(
    q: RangeQuery, first_ms: int | None = None, last_ms: int | None = None, most_points: int | None = None
) -> int | None:
    """The step to aggregate with: the requested one, widened so no series exceeds `max_points`.

    Args:
        q: the query; without `max_points` its step is used as is.
        first_ms, last_ms: the earliest and latest point present in the range (over all matching series),
            when the caller knows them. The step is fitted to that extent, not to the requested span:
            one hour of data asked for with `start=0` still gets about `max_points` buckets, not one.
        most_points: the most points any matching series has in the range, when known: no step is
            needed (raw points) if that fits in `max_points` and none was asked for.

    Returns:
        None for raw points, else the step in ms. A widened step is rounded up to whole seconds,
        5 minutes or hours (by its size), so that bucket edges are readable and the embedded store can
        answer from its 5 min and 1 h rollups; it is the smallest such step whose aligned buckets over
        the extent number at most `max_points` (found in a bounded number of tries).
    """
    step = q.step_ms
    if not q.max_points:
        return step
    if step is None and most_points is not None and most_points <= q.max_points:
        return None
    lo = q.start_ms if first_ms is None else max(q.start_ms, first_ms)
    hi = q.end_ms if last_ms is None else min(q.end_ms, last_ms)
    if hi < lo:
        return step
    if step is not None and _buckets(lo, hi, step) <= q.max_points:
        return step
    span = hi - lo + 1
    needed = -(-span // q.max_points)
    if step is None and needed <= 1 and most_points is None:
        return None
    candidate = _round_step(max(needed, step or 1))
    # Aligned buckets can straddle one extra edge: try the next few readable steps...
    for _ in range(_WIDEN_TRIES):
        if _buckets(lo, hi, candidate) <= q.max_points:
            return candidate
        candidate = _round_step(candidate + 1)
    # ...then one that fits by construction: span / (max_points - 1) (for one point, wider than `hi`).
    sure = hi + 1 if q.max_points == 1 else -(-span // (q.max_points - 1))
    return _round_step(max(candidate, sure))


_WIDEN_TRIES = 16


def _buckets(lo: int, hi: int, step: int) -> int:
    return hi // step - lo // step + 1


def _round_step(ms: int) -> int:
    for unit in (3_600_000, 300_000, 1000):
        if ms >= unit:
            return -(-ms // unit) * unit
    return ms


def aggregate(ts: I64Array, vals: F64Array, step_ms: int, agg: Agg) -> tuple[I64Array, F64Array]:
    """Buckets points by `step_ms` (aligned to multiples of it) and aggregates each bucket, vectorized."""
    out_ts, out, _ = aggregate_series(ts, vals, np.asarray([0, ts.shape[0]]), step_ms, agg)
    return out_ts, out


def aggregate_series(
    ts: I64Array, vals: F64Array, offsets: I64Array, step_ms: int, agg: Agg
) -> tuple[I64Array, F64Array, I64Array]:
    """`aggregate` of many series at once: series i is points `offsets[i]` up to `offsets[i + 1]`.

    Why at once: a dashboard asks for a hundred series of a few hundred buckets each, and a dozen numpy
    calls per series cost more than the arithmetic; here they are made once for all of them.

    Returns:
        the buckets' start times and aggregates, and the offsets of each series' buckets in them.
    """
    n = ts.shape[0]
    if n == 0:
        return ts, vals, np.zeros_like(offsets)
    buckets = (ts // step_ms) * step_ms
    first = np.ones(n, bool)
    first[1:] = buckets[1:] != buckets[:-1]
    first[offsets[offsets < n]] = True  # a bucket never spans two series
    starts = np.flatnonzero(first)
    ends = np.append(starts[1:], n)
    if agg is Agg.AVG:
        out = np.add.reduceat(vals, starts) / (ends - starts)
    elif agg is Agg.SUM:
        out = np.add.reduceat(vals, starts)
    elif agg is Agg.MIN:
        out = np.minimum.reduceat(vals, starts)
    elif agg is Agg.MAX:
        out = np.maximum.reduceat(vals, starts)
    elif agg is Agg.COUNT:
        out = (ends - starts).astype(np.float64)
    else:
        out = vals[ends - 1]
    return buckets[starts].astype(np.int64), out.astype(np.float64), np.searchsorted(starts, offsets)


def millis(d: timedelta) -> int:
    """A configured duration in whole milliseconds, the store's time unit."""
    return int(d.total_seconds() * 1000)
