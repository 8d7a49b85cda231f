"""How a deviation compares with the largest of its kind the series had lately: a smaller one is no news.

Why: rarity (see `rarity`) counts how often a deviation this large was seen within its memory (about
3.5 days at 5-minute polls), not how large the large ones were. A bursty series (mentions, request
counts, a batch job's disk writes) has a burst every few days, each rare within that memory, so each
paged, though a bigger one came last week. The peak of each view is the largest deviation it saw,
rejected points included, fading over two weeks so a weekly job stays remembered; a point's score is
scaled by its deviation over SHARE x the peak, capped at 1. A deviation at least SHARE of the recent
peak (or the first of its size) scores in full; a burst half the usual size scores less, in proportion.
Unlike the time-of-day envelope (`seasonal`) this is one memory per view for the whole day: it damps
what is small for the series, not what is usual for the hour.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from shared.detect import seasonal

# A deviation of at least this share of the view's recent peak is as much news as a new peak.
SHARE = 0.7
# Time constant of the peak's fading, in minutes: two weeks, so a pattern repeated weekly stays known.
MEMORY_MIN = 14 * 24 * 60.0

F64 = npt.NDArray[np.float64]


def remembered(peak: np.ndarray, last_min: np.ndarray, now_min: np.ndarray) -> F64:
    """(m, views) peaks faded for the minutes since each series' last point (`last_min` per series)."""
    return np.asarray(seasonal.decayed(peak, last_min[:, None], now_min[:, None], MEMORY_MIN), np.float64)


def news(dev: F64, peak: F64) -> F64:
    """Score factor in [0, 1] per point: its largest deviation against SHARE x that view's peak.

    A view without a peak yet (0) makes the point news: nothing that large was seen.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(peak > 0.0, dev / (SHARE * peak), np.inf).max(axis=1)
    return np.asarray(np.minimum(ratio, 1.0))


def learned(peak: F64, dev: F64) -> npt.NDArray[np.float32]:
    """The peaks after seeing these deviations (every point, rejected ones too)."""
    return np.maximum(peak, dev).astype(np.float32)
