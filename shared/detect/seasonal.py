"""Time-of-day (and weekday/weekend) bins, so a daily cycle or a nightly spike stops looking anomalous.

Two memories per bin. The cycle offset (how far above the baseline level this hour usually is, learned
from accepted points only) gives the expected value of a series with a daily cycle, so a missing peak, a
day gone flat or a halved plateau deviate from it; the detector uses it only where the data shows the
cycle (see `RobustDetector`). The envelope (the largest deviation seen in the bin, slowly decaying) sees
rejected points too: it is the memory of what this hour routinely looks like, so a nightly spike that
pages on its first night is routine by the next. A deviation is measured against max(spread, weight *
envelope of its bin), and one within ROUTINE x the envelope has its score damped: a spike at 02:00
every night widens the 02:00 bin only, so the same spike at 14:00 still pages.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from shared.detect.config import Seasonality

# Share of the bin's envelope that counts as normal spread, and the envelope's decay time constant:
# about a week and a half, so a pattern seen on a few recent days dominates and a stopped one fades.
WEIGHT = 0.25
# A deviation up to this multiple of its bin's envelope is what this hour routinely sees; scores of
# smaller deviations are damped in proportion (a nightly spike of the usual size does not page).
ROUTINE = 1.5
# Score factor of a point whose time-of-day bin has no cycle offset yet (the series' first day).
UNSEEN_BIN = 0.5
MEMORY_MIN = 10 * 24 * 60.0
MS_PER_MIN = 60_000
DAY_MIN = 24 * 60
_HOURS = 24


def bin_count(seasonality: Seasonality) -> int:
    """Bins per series: 0 (off), 24 hours of day, or 48 (hours of day on weekdays and on weekends)."""
    return {"none": 0, "daily": _HOURS, "weekly": 2 * _HOURS}[seasonality]


def bin_of(ts_ms: npt.NDArray[np.int64], seasonality: Seasonality) -> npt.NDArray[np.intp]:
    """The bin of each timestamp (UTC)."""
    minute = ts_ms // MS_PER_MIN
    hour = (minute // 60) % _HOURS
    if seasonality == "weekly":
        weekday = (minute // (60 * 24) + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
        hour = hour + _HOURS * (weekday >= 5)
    return hour.astype(np.intp)


def minutes(ts_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.int32]:
    """Minutes since the epoch as int32 (good until the year 6053), how bin visit times are stored."""
    return (ts_ms // MS_PER_MIN).astype(np.int32)


def decayed(
    env: np.ndarray, last_min: np.ndarray, now_min: np.ndarray, memory_min: float = MEMORY_MIN
) -> np.ndarray:
    """Envelope values decayed for the minutes since the bin was last visited."""
    age = np.maximum(now_min.astype(np.float64) - last_min, 0.0)
    return np.asarray(env * np.exp(-age / memory_min))


# A bin's cycle offset remembers about this many days of that bin's points, whatever the poll interval.
OFFSET_DAYS = 2.0
_MS_PER_BIN_DAY = 3600_000.0 * OFFSET_DAYS


def offset_weight(
    ts_ms: npt.NDArray[np.int64], last_ts: npt.NDArray[np.int64], first: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    """EWMA weight of each point in its bin's cycle offset: the poll interval over OFFSET_DAYS of the bin.

    Why time-based: a bin (one hour of the day) gets 12 points a day at 5-minute polls and 120 at 30 s;
    a weight per point would make the 30 s series forget yesterday within the hour. Capped at 0.5 so a
    point after a long gap cannot overwrite its bin.
    """
    step = np.where(first, 0, ts_ms - last_ts).astype(np.float64)
    return np.clip(step / _MS_PER_BIN_DAY, 0.0, 0.5)
