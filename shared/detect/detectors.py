"""Vectorized streaming detectors in River's dialect: score, then learn, higher = more anomalous.

Each detector holds the state of many series as rows of numpy columns and updates any subset of rows in
one call. `score_many` must not change state; `learn_many` then learns the same points, with a mask
saying which points the thresholding accepted as normal (the model is protected from anomalies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from shared.detect import peaks, rarity, seasonal
from shared.detect.columns import Column, Columns, Rows, Scratch
from shared.detect.config import DetectRule
from shared.detect.river_hst import HalfSpaceTreesDetector

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

NAN = float("nan")
# Deviations beyond this many spreads are clipped before they move a baseline (Huber-style robustness).
CLIP = 6.0
# Relative floor of the spread: a series at 1000 that moves by 1e-4 is flat, not anomalous.
REL_FLOOR = 1e-3
TINY = 1e-12
# However rare for its series, a deviation of fewer than Z_QUIET spreads (mean absolute deviations, ~0.8
# sigma of Gaussian noise) is not an anomaly, and its score ramps up to full at Z_LOUD: pure noise sets a
# new record now and then, and without this floor every record of a quiet series would page.
Z_QUIET = 4.0
Z_LOUD = 6.0
# The views measured against the expected value (level and short average), as opposed to the step.
RESIDUAL_VIEWS = np.array([True, False, True])
# Against a learned cycle the level view is as specific as the others (it no longer moves with the day).
CYCLE_WEIGHTS = np.array([0.4, 0.2, 0.4])


class Detector(Protocol):
    """A vectorized anomaly scorer over rows of per-series state."""

    name: ClassVar[str]

    def __init__(self, rule: DetectRule) -> None: ...

    def score_many(self, rows: Rows, ts_ms: I64, x: F64) -> F64:
        """Scores in [0, 1] of finite values `x` of series `rows` at `ts_ms`, without learning them.

        The result may be a buffer the detector reuses: it is valid until the next `score_many`.
        """
        ...

    def learn_many(self, rows: Rows, ts_ms: I64, x: F64, accept: Mask) -> None:
        """Learns the points just scored; `accept` is False where the point was judged anomalous."""
        ...

    def grow(self, count: int) -> None: ...

    def take(self, keep: npt.NDArray[np.intp]) -> None: ...

    def export(self) -> dict[str, np.ndarray]: ...

    def restore(self, arrays: dict[str, np.ndarray]) -> None: ...

    @property
    def row_nbytes(self) -> int: ...


class ColumnDetector:
    """Shared plumbing: state lives in `self.columns`; growth, compaction and snapshots go through it."""

    name: ClassVar[str] = ""
    # Columns newer than some snapshots: restored with fresh values when a snapshot lacks them.
    ADDED: ClassVar[tuple[str, ...]] = ()
    columns: Columns

    def grow(self, count: int) -> None:
        self.columns.grow(count)

    def take(self, keep: npt.NDArray[np.intp]) -> None:
        self.columns.take(keep)

    def export(self) -> dict[str, np.ndarray]:
        return self.columns.export()

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.columns.restore(arrays, added=self.ADDED)

    @property
    def row_nbytes(self) -> int:
        return self.columns.row_nbytes


class EwmaDetector(ColumnDetector):
    """Plain EWMA mean/variance z-score: the cheapest path (16 bytes per series), for huge fleets.

    score = z^2 / (z^2 + 9): 3 sigma scores 0.5, 6 sigma 0.8. Written as in-place passes over reused
    buffers (no masks unless a row is new or a point was rejected): this is the path measured against
    the 50M updates/s goal. The returned scores are valid until the next `score_many`.
    """

    name: ClassVar[str] = "ewma"

    def __init__(self, rule: DetectRule) -> None:
        self.alpha = rule.alpha
        self.min_var = rule.min_scale**2 + TINY
        self.columns = Columns({"mean": Column(np.float64, NAN), "var": Column(np.float64, 0.0)})
        self._scratch = Scratch()
        self._scored: tuple[object, object] | None = None

    def score_many(self, rows: Rows, ts_ms: I64, x: F64) -> F64:
        c, m = self.columns.a, x.shape[0]
        d, d2, out = (self._scratch.get(name, (m,)) for name in ("d", "d2", "out"))
        np.subtract(x, c["mean"][rows], out=d)
        np.multiply(d, d, out=d2)
        np.add(c["var"][rows], self.min_var, out=out)
        np.divide(d2, out, out=out)  # z^2
        np.divide(out, np.add(out, 9.0, out=self._scratch.get("den", (m,))), out=out)
        fresh = np.isnan(out, out=self._scratch.get("fresh", (m,), np.bool_))
        if fresh.any():
            out[fresh] = 0.0  # a new row (mean NaN) scores 0
        self._scored = (rows, x)
        return out

    def learn_many(self, rows: Rows, ts_ms: I64, x: F64, accept: Mask) -> None:
        c, m = self.columns.a, x.shape[0]
        d, d2 = self._scratch.get("d", (m,)), self._scratch.get("d2", (m,))
        if self._scored is None or self._scored[0] is not rows or self._scored[1] is not x:
            np.subtract(x, c["mean"][rows], out=d)
            np.multiply(d, d, out=d2)
        self._scored = None
        fresh = np.isnan(d, out=self._scratch.get("fresh", (m,), np.bool_))
        # The mean learns accepted points only; the variance learns all, so after a level shift the spread
        # widens until the new level is accepted and the mean follows (a new normal).
        step = np.multiply(d, self.alpha, out=d)
        if not accept.all():
            step[~accept] = 0.0
        np.multiply(d2, self.alpha, out=d2)
        d2 += c["var"][rows]
        d2 *= 1.0 - self.alpha
        if fresh.any():
            step[fresh] = 0.0
            d2[fresh] = 0.0
            c["mean"][rows] = np.where(fresh, x, c["mean"][rows] + step)
        elif isinstance(rows, slice):
            c["mean"][rows] += step
        else:
            c["mean"][rows] = c["mean"][rows] + step
        c["var"][rows] = d2


class RobustDetector(ColumnDetector):
    """Robust EWMA z-scores of three views of a series, scored by how rare they are for that series.

    Views: the value against its expected value (catches level shifts), the step from the previous value
    (catches spikes and drops on a drifting series), and a short average of the residual (catches a
    sustained small change). The expected value is a baseline level plus, where the data shows a daily
    cycle, the learned offset of the point's time-of-day bin (see `seasonal`): the cycle is switched on
    per series only while its residuals are clearly tighter than those of the plain level, so a missing
    peak or a day gone flat is a deviation while a series without a cycle is scored as before.
    Spreads are mean absolute deviations updated with clipped residuals, so the outlier itself cannot
    widen them. With seasonality on, a view's spread is also widened by its time-of-day envelope and
    deviations routine for the hour are damped (the step view always; the others where no cycle is on).
    A deviation of fewer than Z_QUIET spreads never scores, however rare, so pure noise stays quiet,
    and one well below the largest of the last two weeks scores less (see `peaks`), so a bursty series
    pages for its bursts that stand out, not for every burst.
    After `new_normal_points` consecutive rejected points the baseline jumps to the new level instead
    of flagging forever. A constant series has zero deviations and scores 0 (flat-line guard).
    """

    name: ClassVar[str] = "robust"
    FAST_ALPHA: ClassVar[float] = 0.1
    VIEWS: ClassVar[int] = 3
    # The level view alone is the least specific (it also moves with slow drifts), so it counts half.
    VIEW_WEIGHTS: ClassVar[np.ndarray] = np.array([0.2, 0.4, 0.4])
    ADDED: ClassVar[tuple[str, ...]] = ("peak", "peak_min")

    def __init__(self, rule: DetectRule) -> None:
        self.alpha = rule.alpha
        self.memory = rule.memory_points
        self.min_scale = rule.min_scale
        self.new_normal = rule.new_normal_points
        self.seasonality = rule.seasonality
        nb = seasonal.bin_count(rule.seasonality)
        spec = {
            "n": Column(np.int32),
            "rejects": Column(np.int32),
            "mu": Column(np.float64, NAN),
            "prev": Column(np.float64, NAN),
            "fast": Column(np.float64, 0.0),  # short average of the residual x - expected
            "spread": Column(np.float64, NAN, (self.VIEWS,)),
            "hist": Column(np.float32, 0.0, (self.VIEWS, rarity.BINS)),
            "peak": Column(np.float32, 0.0, (self.VIEWS,)),  # largest recent deviation per view
            "peak_min": Column(np.int32),  # minute of the series' last point, when the peaks were set
        }
        if nb:
            spec["env"] = Column(np.float32, 0.0, (self.VIEWS, nb))
            spec["env_min"] = Column(np.int32, 0, (nb,))
            spec["off"] = Column(np.float32, NAN, (nb,))  # x - mu by bin: the daily cycle
            spec["cyc_spread"] = Column(np.float64, NAN)  # spread of x - mu - off (the cycle's residual)
            spec["last_ts"] = Column(np.int64)
            spec["born_min"] = Column(np.int32)  # minute of the series' first point
        self.columns = Columns(spec)
        self._cache: tuple[object, object, _Views] | None = None

    def _views(self, rows: Rows, ts_ms: I64, x: F64) -> _Views:
        """Deviations, spreads and histogram bins of the points; cached so learn reuses score's work."""
        if self._cache is not None and self._cache[0] is rows and self._cache[1] is x:
            return self._cache[2]
        c = self.columns.a
        idx = np.arange(self.columns.n)[rows] if isinstance(rows, slice) else rows
        mu = c["mu"][idx]
        mu = np.where(np.isnan(mu), x, mu)
        prev = c["prev"][idx]
        prev = np.where(np.isnan(prev), x, prev)
        floor = np.maximum(REL_FLOOR * np.abs(mu), self.min_scale) + TINY
        spread = c["spread"][idx]
        plain = np.abs(x - mu)
        cycle = sbin = env = None
        on = np.zeros(x.shape[0], dtype=np.bool_)
        expected, level_spread = mu, spread[:, 0]
        if self.seasonality != "none":
            sbin = seasonal.bin_of(ts_ms, self.seasonality)
            # np.maximum keeps NaN: a series whose cycle has no residual spread yet stays unknown.
            cycle = _Cycle(c["off"][idx, sbin].astype(np.float64), np.maximum(c["cyc_spread"][idx], floor))
            # A cycle is a daily one only once the series has been seen for a day: within the first day
            # an offset per hour would just as well fit a trend (a counter's ramp).
            on = cycle.fits(spread[:, 0]) & (seasonal.minutes(ts_ms) - c["born_min"][idx] >= seasonal.DAY_MIN)
            expected = np.where(on, mu + cycle.off, mu)
            level_spread = np.where(on, cycle.spread, spread[:, 0])
        resid = x - expected
        fast = c["fast"][idx] * (1.0 - self.FAST_ALPHA) + self.FAST_ALPHA * resid
        dev = np.stack([np.abs(resid), np.abs(x - prev), np.abs(fast)], axis=1)
        fresh = np.isnan(spread)
        spread = np.maximum(
            np.where(fresh, np.stack([plain, dev[:, 1], dev[:, 2]], axis=1), spread), floor[:, None]
        )
        width = spread.copy()
        width[:, 0] = np.maximum(np.where(fresh[:, 0], dev[:, 0], level_spread), floor)
        if sbin is not None:
            env = seasonal.decayed(
                c["env"][idx, :, sbin], c["env_min"][idx, sbin][:, None], seasonal.minutes(ts_ms)[:, None]
            )
            # Where the cycle is on it already says what this hour looks like: the residual views are
            # judged against it alone (an envelope kept from before the cycle was learned would hide a
            # broken day); the step view keeps its envelope (a routine morning ramp is a big step).
            env = np.where(on[:, None] & RESIDUAL_VIEWS, 0.0, env)
            width = np.maximum(width, seasonal.WEIGHT * env)
        z = dev / width
        peak = peaks.remembered(c["peak"][idx], c["peak_min"][idx], seasonal.minutes(ts_ms))
        views = _Views(
            idx, mu, resid, plain, fast, dev, spread, z, rarity.bin_of(z), sbin, env, cycle, on, peak
        )
        self._cache = (rows, x, views)
        return views

    def score_many(self, rows: Rows, ts_ms: I64, x: F64) -> F64:
        v = self._views(rows, ts_ms, x)
        per = rarity.rarity(self.columns.a["hist"][rows], v.bins, self.memory)
        weights = (
            self.VIEW_WEIGHTS
            if v.cycle is None
            else np.where(v.on[:, None], CYCLE_WEIGHTS, self.VIEW_WEIGHTS)
        )
        scores = (per * weights).sum(axis=1) * np.clip(
            (v.z.max(axis=1) - Z_QUIET) / (Z_LOUD - Z_QUIET), 0.0, 1.0
        )
        if v.env is not None:
            # Routine for this hour: a deviation within ROUTINE x the bin's envelope is damped in proportion.
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                beyond = np.nan_to_num((v.dev / v.env).max(axis=1), nan=np.inf, posinf=np.inf)
            scores = scores * np.clip(beyond / seasonal.ROUTINE, 0.0, 1.0)
        scores = scores * peaks.news(v.dev, v.peak)
        if v.cycle is not None:
            # A time of day never seen yet: whether this is its usual level is unknown (a daily step on the
            # first day looks like a shift), so its score counts half.
            scores = np.where(np.isnan(v.cycle.off), seasonal.UNSEEN_BIN * scores, scores)
        return np.asarray(scores)

    def learn_many(self, rows: Rows, ts_ms: I64, x: F64, accept: Mask) -> None:
        v = self._views(rows, ts_ms, x)
        self._cache = None
        c, idx = self.columns.a, v.idx
        # The rarity histogram sees every point: that is how a repeated extreme stops being rare.
        if isinstance(rows, slice):
            rarity.learn(c["hist"][rows], v.bins, self.memory)  # a view: learned in place
        else:
            hist = c["hist"][idx]
            rarity.learn(hist, v.bins, self.memory)
            c["hist"][idx] = hist
        # The baseline sees only accepted points, with clipped residuals; it follows the residual, so with
        # the cycle on it is the level the cycle rides on.
        a = self.alpha * accept
        first = c["n"][idx] == 0
        mu = np.where(first, x, v.mu + a * np.clip(v.resid, -CLIP * v.spread[:, 0], CLIP * v.spread[:, 0]))
        learned = np.stack([v.plain, v.dev[:, 1], v.dev[:, 2]], axis=1)
        step = np.minimum(learned, CLIP * v.spread)
        old = c["spread"][idx]
        has_prev = (c["n"][idx] > 0)[:, None]
        c["spread"][idx] = np.where(
            np.isnan(old), np.where(has_prev, learned, np.nan), old + a[:, None] * (step - old)
        )
        fast = v.fast
        # What the memories of routine (the hour's envelope, the peaks) learn. With seasonality the level
        # view holds residuals from the cycle (none before the bin has an offset): a first day's plain
        # deviations would otherwise mask a broken day for as long as those memories last.
        seen = v.dev
        if v.cycle is not None:
            seen = v.dev.copy()
            seen[:, 0] = np.where(np.isnan(v.cycle.off), 0.0, np.abs(x - v.mu - v.cycle.off))
        c["peak"][idx] = peaks.learned(v.peak, seen)
        c["peak_min"][idx] = seasonal.minutes(ts_ms)
        if v.sbin is not None and v.env is not None and v.cycle is not None:
            c["env"][idx, :, v.sbin] = np.maximum(v.env, seen).astype(np.float32)
            c["env_min"][idx, v.sbin] = seasonal.minutes(ts_ms)
            weight = seasonal.offset_weight(ts_ms, c["last_ts"][idx], first)
            alpha = np.asarray(a, dtype=np.float64)
            off, cyc = v.cycle.learned(x - v.mu, accept, weight, alpha, v.spread[:, 0])
            c["off"][idx, v.sbin] = off.astype(np.float32)
            c["cyc_spread"][idx] = cyc
            c["last_ts"][idx] = ts_ms
            c["born_min"][idx] = np.where(first, seasonal.minutes(ts_ms), c["born_min"][idx])
        # New normal: after enough consecutive rejections the level has moved; follow it.
        rejects = np.where(accept, 0, c["rejects"][idx] + 1)
        moved = rejects >= self.new_normal
        c["mu"][idx] = np.where(moved, mu + fast, mu)
        c["fast"][idx] = np.where(moved, 0.0, fast)
        c["rejects"][idx] = np.where(moved, 0, rejects)
        c["prev"][idx] = x
        c["n"][idx] += 1


@dataclass(frozen=True, slots=True, eq=False)
class _Cycle:
    """The daily-cycle offsets of the points' bins (NaN: bin not seen yet) and the cycle's residual spread."""

    off: F64
    spread: F64
    # The cycle is used while its residual spread is below this share of the plain level's spread.
    GAIN: ClassVar[float] = 0.7

    def fits(self, level_spread: F64) -> Mask:
        """Where the cycle explains the series better than a flat level does."""
        with np.errstate(invalid="ignore"):
            return np.asarray(~np.isnan(self.off) & (self.spread < self.GAIN * level_spread))

    def learned(
        self, above_mu: F64, accept: Mask, weight: F64, alpha: F64, level_spread: F64
    ) -> tuple[F64, F64]:
        """The bins' offsets and the residual spread after learning `above_mu` (= x - mu) of the points.

        Only accepted points are learned (`alpha` is already 0 elsewhere). A bin seen for the first time
        takes the point's offset; the residual spread learns only where the bin was already known, so a
        first visit (residual 0 by construction) does not make the cycle look tight.
        """
        known = ~np.isnan(self.off)
        cap = CLIP * np.nan_to_num(level_spread, nan=np.inf)
        resid = np.where(known, above_mu - self.off, 0.0)
        step = accept * weight * np.clip(resid, -cap, cap)
        off = np.where(known, self.off + step, np.where(accept, above_mu, np.nan))
        dev = np.abs(resid)
        spread = np.where(
            np.isnan(self.spread),
            np.where(known, dev, np.nan),
            self.spread + alpha * (np.minimum(dev, CLIP * self.spread) - self.spread),
        )
        return off, np.where(known | ~np.isnan(self.spread), spread, np.nan)


@dataclass(frozen=True, slots=True, eq=False)
class _Views:
    """Per-call intermediate arrays of RobustDetector; lives for one score + learn."""

    idx: npt.NDArray[np.intp]
    mu: F64
    resid: F64  # x - expected value
    plain: F64  # |x - mu|, what the level spread learns whether or not the cycle is on
    fast: F64
    dev: F64
    spread: F64
    z: F64  # dev / width, in spreads
    bins: npt.NDArray[np.intp]
    sbin: npt.NDArray[np.intp] | None
    env: np.ndarray | None
    cycle: _Cycle | None
    on: Mask  # the cycle is used for this point
    peak: F64  # (m, views) largest recent deviations, faded to this point's time


DETECTORS: dict[str, type[Detector]] = {
    "robust": RobustDetector,
    "ewma": EwmaDetector,
    "hst": HalfSpaceTreesDetector,
}
