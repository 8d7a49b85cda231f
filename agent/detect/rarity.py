"""How rare a deviation is for this series: a decayed histogram of past z-scores per series and feature.

Why: a fixed z cut-off pages forever on a series whose spikes are routine (a nightly backup) and never on a
quiet one whose small move is new. Scoring the tail probability of the z-score against the series' own
history makes "spiky" and "quiet" comparable, and a repeated extreme stops paging after a few repeats,
which is what makes the score spike at the onset of a change rather than all through it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# Bin edges of z on a half-octave log scale from 0.5 to ~23000: wide enough for bursty byte counters.
EDGES = (2.0 ** (np.arange(-2, 30) / 2.0)).astype(np.float64)
BINS = EDGES.shape[0] + 1
# Pseudo-count of "something more extreme than anything seen": bounds the score of a first-ever extreme.
PRIOR = 0.2


def bin_of(z: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """Histogram bin of each z (NaN counts as 0)."""
    return np.searchsorted(EDGES, np.nan_to_num(z, nan=0.0, posinf=EDGES[-1] * 2)).astype(np.intp)


def rarity(hist: npt.NDArray[np.float32], bins: npt.NDArray[np.intp], memory_points: int) -> np.ndarray:
    """Score in [0, 1] of each (row, feature): 1 means more extreme than anything in `memory_points`.

    Args:
        hist: (m, f, BINS) decayed counts.
        bins: (m, f) bin of the current z.
        memory_points: the histogram's effective length (1 / (1 - decay)); a never-seen extreme in a full
            histogram scores exactly 1.
    """
    tail = np.cumsum(hist[..., ::-1], axis=-1, dtype=np.float64)[..., ::-1]
    total = tail[..., 0]
    above = np.take_along_axis(tail, bins[..., None], axis=-1)[..., 0]
    p = (above + PRIOR) / (total + PRIOR)
    floor = PRIOR / (memory_points + PRIOR)
    return np.clip(np.log(p) / np.log(floor), 0.0, 1.0)


def learn(hist: npt.NDArray[np.float32], bins: npt.NDArray[np.intp], memory_points: int) -> None:
    """Decays (m, f, BINS) counts in place and adds one count at each (row, feature)'s bin."""
    hist *= np.float32(1.0 - 1.0 / memory_points)
    m, f = bins.shape
    hist[np.arange(m)[:, None], np.arange(f)[None, :], bins] += 1.0
