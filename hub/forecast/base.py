"""What a forecaster is: a point forecast of a regular history, and the errors forecasting raises."""

from __future__ import annotations

from typing import Protocol

from shared.model import F64Array


class ForecastError(Exception):
    """Base of the forecast package's errors."""


class NotEnoughHistory(ForecastError):
    """Raised when a history is shorter than a method (or the selection) needs."""

    def __init__(self, have: int, need: int) -> None:
        super().__init__(f"{have} points of history, at least {need} needed")
        self.have = have
        self.need = need


class MethodUnavailable(ForecastError):
    """Raised when an optional method's package is not installed (`pip install outpost[forecast]`)."""


class UnknownMethod(ForecastError):
    """Raised when a method name is not in the registry (`hub.forecast.methods.FORECASTERS`)."""


class Forecaster(Protocol):
    """One forecasting method. Stateless: `predict` fits and forecasts in one call, so the same object
    serves every series and thread at once.

    `periods` are the seasonal periods in steps of the history, shortest first (24 and 168 for hourly
    points: a day and a week). `history` holds finite values only, oldest first.
    """

    @property
    def name(self) -> str:
        """The method's name in the registry and in API answers."""
        ...

    @property
    def models_trend(self) -> bool:
        """True when the forecast extrapolates the history's trend; the bands of a method that does not
        widen by the part of the trend that is clearly there (`select`)."""
        ...

    def min_history(self, periods: tuple[int, ...]) -> int:
        """The fewest points `predict` works with."""
        ...

    def predict(self, history: F64Array, horizon: int, periods: tuple[int, ...]) -> F64Array:
        """`horizon` point forecasts, one per step after the last point of `history`."""
        ...


def season_period(periods: tuple[int, ...], which: int) -> int:
    """The `which`-th seasonal period, or the longest one there is."""
    return periods[min(which, len(periods) - 1)]
