"""Refractory score shaping: after a peak, lower scores of the same event are echoes and report 0.

Why: an anomaly is one event, but its raw score stays high for several points (a burst, the settling
after a shift). Only its first high score is news; every later one is a duplicate page for whoever
thresholds the score stream (the hub, a dashboard, NAB, which counts the first detection of a window and
penalises every false one). So a reported score passes only if it beats the highest score of the last
`refractory_points` points; a stronger second event still shows at once. The gate keeps judging the raw
scores, so the baseline stays protected from the whole event, not just its first point.
"""

from __future__ import annotations

import numpy as np

from shared.detect.columns import Column, Columns, Rows


class Refractory:
    """Per series: the last reported peak and how many points ago it was (8 bytes per series)."""

    def __init__(self, points: int) -> None:
        self.points = points
        self.columns = Columns({"peak": Column(np.float32), "age": Column(np.int32)})

    def shape(self, rows: Rows, scores: np.ndarray) -> np.ndarray:
        """The reported scores: `scores` where they beat the live peak, else 0; updates the peaks.

        Args:
            rows: the series of `scores`, each at most once.
            scores: raw scores of these rows' points, in [0, 1].
        """
        if self.points == 0:
            return scores
        c = self.columns.a
        age = c["age"][rows] + 1
        live = np.where(age <= self.points, c["peak"][rows], np.float32(0.0))
        news = scores.astype(np.float32) > live  # compared as stored, so an equal score is an echo
        c["peak"][rows] = np.where(news, scores, live)
        c["age"][rows] = np.where(news, 0, np.minimum(age, self.points + 1))
        return np.where(news, scores, 0.0).astype(scores.dtype, copy=False)

    @property
    def row_nbytes(self) -> int:
        return self.columns.row_nbytes
