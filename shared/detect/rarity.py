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
# Fewest points a score is measured against: a young series' record is not yet a rare event...
MIN_HISTORY = 300.0
# ...unless it is far beyond anything seen: each bin (half-octave of z) past the highest one with at least
# OCCUPIED points halves the prior mass, so a 40 -> 95 jump on a flat series scores 1 after 15 points.
GAP_DECAY = 0.5
OCCUPIED = 0.5


def bin_of(z: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """Histogram bin of each z (NaN counts as 0)."""
    return np.searchsorted(EDGES, np.nan_to_num(z, nan=0.0, posinf=EDGES[-1] * 2)).astype(np.intp)


def rarity(tail: npt.NDArray[np.float32], bins: npt.NDArray[np.intp], memory_points: int) -> np.ndarray:
    """Score in [0, 1] of each (row, feature): 1 means more extreme than anything in `memory_points`.

    Args:
        tail: (m, f, BINS) decayed counts of past z at or above each bin (a survival histogram, so that
            scoring is one lookup per point instead of a cumulative sum).
        bins: (m, f) bin of the current z.
        memory_points: the histogram's effective length (1 / (1 - decay)).

    The scale is the (decayed) count actually seen, not `memory_points`: a never-seen extreme scores 1
    once MIN_HISTORY points were seen, whether the histogram is full or not, so a series is calibrated
    against the gate's threshold from then on. Before that only an extreme far beyond the seen range can.
    """
    m, f = bins.shape
    above = tail[np.arange(m)[:, None], np.arange(f)[None, :], bins].astype(np.float64)
    seen = tail[..., 0].astype(np.float64)
    prior = np.full(bins.shape, PRIOR)
    beyond = above <= OCCUPIED  # rare: only these need the highest occupied bin
    if beyond.any():
        # Survival counts fall with the bin, so the occupied bins are a prefix.
        top = (tail[beyond] > OCCUPIED).sum(axis=-1) - 1
        prior[beyond] *= GAP_DECAY ** np.maximum(bins[beyond] - top - 1, 0)
    p = (above + prior) / (seen + PRIOR)
    floor = PRIOR / (np.maximum(seen, min(MIN_HISTORY, memory_points)) + PRIOR)
    return np.clip(np.log(p) / np.log(floor), 0.0, 1.0)


def learn(tail: npt.NDArray[np.float32], bins: npt.NDArray[np.intp], memory_points: int) -> None:
    """Decays the (m, f, BINS) survival counts in place and counts each (row, feature)'s z once."""
    tail *= np.float32(1.0 - 1.0 / memory_points)
    tail += _BIN_INDEX <= bins[..., None]


_BIN_INDEX = np.arange(BINS)
