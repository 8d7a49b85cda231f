"""When a forecast crosses a threshold (p10 / p50 / p90 of the time to it), and whether that is worth an
alert: raised while the pessimistic band crosses within the horizon, resolved only after it stays clear
for a few evaluations in a row, so a band grazing the threshold does not page and clear every refit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
import numpy.typing as npt

from hub.forecast.select import Prediction

# Evaluations in a row without a crossing before a raised predictive alert ends.
RESOLVE_AFTER = 3


class Direction(Enum):
    """Which side of the threshold is trouble: `above` (a disk filling), `below` (a battery draining)."""

    ABOVE = "above"
    BELOW = "below"


@dataclass(frozen=True, slots=True)
class TimeToThreshold:
    """Steps ahead (1 = the first forecast step) at which the threshold is crossed, None beyond the horizon.

    `p10` is the early, pessimistic estimate (the band's far edge crosses first), `p90` the late one.
    """

    p10: int | None
    p50: int | None
    p90: int | None


def _first(beyond: npt.NDArray[np.bool_]) -> int | None:
    hits = np.flatnonzero(beyond)
    return int(hits[0]) + 1 if hits.shape[0] else None


def time_to_threshold(pred: Prediction, threshold: float, direction: Direction) -> TimeToThreshold:
    """When `pred` crosses `threshold`; a value equal to it is not a crossing."""
    if direction is Direction.ABOVE:
        return TimeToThreshold(
            _first(pred.p90 > threshold), _first(pred.yhat > threshold), _first(pred.p10 > threshold)
        )
    return TimeToThreshold(
        _first(pred.p10 < threshold), _first(pred.yhat < threshold), _first(pred.p90 < threshold)
    )


class Phase(Enum):
    ONSET = "onset"
    END = "end"


@dataclass(slots=True)
class _State:
    raised: bool = False
    clear: int = 0


class CrossingTracker:
    """Per series: whether its predictive alert is raised, with hysteresis on the way down.

    Not thread-safe: one forecast job owns it.
    """

    def __init__(self, resolve_after: int = RESOLVE_AFTER) -> None:
        self._resolve_after = resolve_after
        self._states: dict[str, _State] = {}

    def update(self, series: str, crossing: bool) -> Phase | None:
        """The phase to publish after an evaluation of `series`: ONSET while crossing (repeats refresh the
        alert), END once when it stayed clear long enough, None otherwise."""
        state = self._states.setdefault(series, _State())
        if crossing:
            state.raised, state.clear = True, 0
            return Phase.ONSET
        if not state.raised:
            self._states.pop(series, None)
            return None
        state.clear += 1
        if state.clear < self._resolve_after:
            return None
        del self._states[series]
        return Phase.END

    def forget(self, series: str) -> None:
        """Drops a series that vanished."""
        self._states.pop(series, None)

    def raised(self) -> set[str]:
        return {k for k, s in self._states.items() if s.raised}
