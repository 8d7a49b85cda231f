"""The registry of forecasting methods, and the default candidates of the back-test selection."""

from __future__ import annotations

from hub.forecast.base import Forecaster, UnknownMethod
from hub.forecast.combine import MeanOf
from hub.forecast.naive import RobustTrend, SeasonalNaive, SeasonalProfile
from hub.forecast.prophet import ProphetForecaster
from hub.forecast.smoothing import HoltWinters

AUTO = "auto"

FORECASTERS: dict[str, Forecaster] = {
    "seasonal_naive": SeasonalNaive(),
    "seasonal_profile": SeasonalProfile(),
    "weekly_profile": SeasonalProfile(name="weekly_profile", season=1, keep=4),
    "robust_trend": RobustTrend(),
    "holt_winters": HoltWinters(),
    "naive_profile_mean": MeanOf("naive_profile_mean", (SeasonalNaive(), SeasonalProfile())),
    "prophet": ProphetForecaster(),
}

# Prophet is left out of `auto`: about half a second a fit, and it needs the optional extra.
DEFAULT_CANDIDATES: tuple[str, ...] = tuple(n for n in FORECASTERS if n != "prophet")


def candidates(method: str) -> tuple[Forecaster, ...]:
    """The methods `method` names: the default candidates for `auto`, else that one method.

    Raises:
        UnknownMethod: `method` is neither `auto` nor in FORECASTERS.
    """
    if method == AUTO:
        return tuple(FORECASTERS[n] for n in DEFAULT_CANDIDATES)
    if method not in FORECASTERS:
        raise UnknownMethod(f"unknown method {method!r}; known: {AUTO}, {', '.join(FORECASTERS)}")
    return (FORECASTERS[method],)
