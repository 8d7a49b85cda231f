"""The `Store` interface every time-series backend implements, and its query value types."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Protocol

import numpy as np

from shared.model import Batch, Event, F64Array, I64Array, SeriesKey

# Label the store adds to every series: the agent identity taken from its client certificate.
AGENT_LABEL = "agent"


class Agg(Enum):
    """Aggregation applied per step bucket."""

    AVG = "avg"
    MIN = "min"
    MAX = "max"
    LAST = "last"
    COUNT = "count"
    SUM = "sum"


class MatchOp(Enum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


@dataclass(frozen=True, slots=True)
class Matcher:
    """A label matcher in PromQL's dialect (`name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`)."""

    name: str
    op: MatchOp
    value: str

    def matches(self, key: SeriesKey) -> bool:
        actual = key.label(self.name)
        if self.op is MatchOp.EQ:
            return actual == self.value
        if self.op is MatchOp.NE:
            return actual != self.value
        hit = re.fullmatch(self.value, actual) is not None
        return hit if self.op is MatchOp.RE else not hit


@dataclass(frozen=True, slots=True)
class RangeQuery:
    """Points of every series of `metric` matching all matchers in [start_ms, end_ms].

    With `step_ms`, points are aggregated into buckets aligned to multiples of the step and stamped
    with the bucket start. `max_points` caps points per series by widening the step server-side.
    Answers hold only series with points in the range, sorted by key text.
    """

    metric: str
    start_ms: int
    end_ms: int
    matchers: tuple[Matcher, ...] = ()
    step_ms: int | None = None
    agg: Agg = Agg.AVG
    max_points: int | None = None


@dataclass(frozen=True, slots=True, eq=False)
class SeriesResult:
    """One series' answer to a range query; `key` includes the `agent` label."""

    key: SeriesKey
    timestamps_ms: I64Array
    values: F64Array


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

    def query(self, q: RangeQuery) -> list[SeriesResult]: ...

    def series(self, metric: str | None = None, matchers: tuple[Matcher, ...] = ()) -> list[SeriesKey]: ...

    def events(self, start_ms: int, end_ms: int, limit: int = 1000) -> list[tuple[str, Event]]: ...

    def apply_retention(self, now_ms: int) -> int: ...

    def close(self) -> None: ...


def effective_step(q: RangeQuery) -> int | None:
    """The step to aggregate with: the requested one, widened so no series exceeds `max_points`.

    A widened step is rounded up to whole seconds, 5 minutes or hours (by its size), so that bucket
    edges are readable and the embedded store can answer from its 5 min and 1 h rollups.
    """
    step = q.step_ms
    if not q.max_points:
        return step
    span = max(1, q.end_ms - q.start_ms + 1)
    needed = -(-span // q.max_points)
    if step is not None and step >= needed:
        return step
    if step is None and needed <= 1:
        return None
    step = _round_step(needed)
    # Aligned buckets can straddle one extra edge; widen until the count really fits.
    while q.end_ms // step - q.start_ms // step + 1 > q.max_points:
        step = _round_step(step + 1)
    return step


def _round_step(ms: int) -> int:
    for unit in (3_600_000, 300_000, 1000):
        if ms >= unit:
            return -(-ms // unit) * unit
    return ms


def aggregate(ts: I64Array, vals: F64Array, step_ms: int, agg: Agg) -> tuple[I64Array, F64Array]:
    """Buckets points by `step_ms` (aligned to multiples of it) and aggregates each bucket, vectorized."""
    if ts.shape[0] == 0:
        return ts, vals
    buckets = (ts // step_ms) * step_ms
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    out_ts = buckets[starts]
    if agg is Agg.AVG:
        out = np.add.reduceat(vals, starts) / np.diff(np.r_[starts, vals.shape[0]])
    elif agg is Agg.SUM:
        out = np.add.reduceat(vals, starts)
    elif agg is Agg.MIN:
        out = np.minimum.reduceat(vals, starts)
    elif agg is Agg.MAX:
        out = np.maximum.reduceat(vals, starts)
    elif agg is Agg.COUNT:
        out = np.diff(np.r_[starts, vals.shape[0]]).astype(np.float64)
    else:
        out = vals[np.r_[starts[1:] - 1, vals.shape[0] - 1]]
    return out_ts.astype(np.int64), out.astype(np.float64)


def millis(d: timedelta) -> int:
    """A configured duration in whole milliseconds, the store's time unit."""
    return int(d.total_seconds() * 1000)
