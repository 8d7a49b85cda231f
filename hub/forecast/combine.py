"""A combination of methods: the mean of their forecasts. Averaging a noisy method (seasonal naive) with a
smooth one (the profile) often beats both, and costs only their sum."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hub.forecast.base import Forecaster
from shared.model import F64Array


@dataclass(frozen=True, slots=True)
class MeanOf:
    """The mean of `members`' forecasts."""

    name: str
    members: tuple[Forecaster, ...]

    @property
    def models_trend(self) -> bool:
        return all(m.models_trend for m in self.members)

    def min_history(self, periods: tuple[int, ...]) -> int:
        return max(m.min_history(periods) for m in self.members)

    def predict(self, history: F64Array, horizon: int, periods: tuple[int, ...]) -> F64Array:
        return np.mean([m.predict(history, horizon, periods) for m in self.members], axis=0)
