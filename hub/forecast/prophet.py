"""Prophet (the optional `forecast` extra) as a forecaster: the one module that imports `prophet`.

Prophet ships its own CmdStan model, so nothing is compiled or downloaded. It is imported on first use,
so the hub starts and every other method works without it. Calendar features are not assumed: the
history's steps become consecutive days for Prophet and each seasonal period (in steps) is one custom
seasonality, so the same code serves hourly and five-minute series.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import warnings
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from hub.forecast.base import ForecastError, MethodUnavailable
from shared.model import F64Array

_FOURIER = (10, 5, 3)
_import_lock = threading.Lock()
_module: list[ModuleType] = []


def _prophet() -> ModuleType:
    """The `prophet` module, imported once with its chatty loggers quietened.

    Raises:
        MethodUnavailable: the package is not installed.
    """
    with _import_lock:
        if not _module:
            # Before the import: it logs at ERROR that plotly is missing (only its plots need it)...
            logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)
            for name in ("prophet", "cmdstanpy"):
                logging.getLogger(name).setLevel(logging.ERROR)
            # ...and cmdstanpy, finding no handler, adds its own at DEBUG (two lines a fit): give it one.
            logging.getLogger("cmdstanpy").addHandler(logging.NullHandler())
            try:
                import prophet
            except ImportError:
                hint = "pip install 'outpost[forecast]'"
                raise MethodUnavailable(f"prophet is not installed ({hint})") from None
            _module.append(prophet)
        return _module[0]


def available() -> bool:
    """True when the `prophet` package is installed; cheap (it is not imported: that takes seconds)."""
    return bool(_module) or importlib.util.find_spec("prophet") is not None


@dataclass(frozen=True, slots=True)
class ProphetForecaster:
    """Prophet's trend plus one Fourier seasonality per period; about half a second a fit."""

    name: str = "prophet"
    models_trend: bool = True

    def min_history(self, periods: tuple[int, ...]) -> int:
        return 2 * periods[0]

    def predict(self, history: F64Array, horizon: int, periods: tuple[int, ...]) -> F64Array:
        prophet = _prophet()
        import pandas as pd  # a dependency of prophet, present whenever it is

        n = history.shape[0]
        days = pd.date_range("2000-01-01", periods=n + horizon, freq="D")
        model = prophet.Prophet(yearly_seasonality=False, weekly_seasonality=False, daily_seasonality=False)
        for p, order in zip(periods, _FOURIER, strict=False):
            if n >= 2 * p:
                model.add_seasonality(name=f"period_{p}", period=float(p), fourier_order=order)
        with warnings.catch_warnings():
            # pandas and cmdstanpy deprecation notices, which the test suite would turn into errors.
            warnings.simplefilter("ignore")
            try:
                model.fit(pd.DataFrame({"ds": days[:n], "y": history}))
                out = model.predict(pd.DataFrame({"ds": days[n:]}))
            except RuntimeError as exc:  # CmdStan's optimizer gave up: this series has no forecast
                raise ForecastError(f"prophet could not fit: {exc}") from None
        return np.asarray(out["yhat"].to_numpy(), dtype=np.float64)
