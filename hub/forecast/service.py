"""Series in, forecasts out: reads a series' history from the store onto a regular grid, finds its
threshold and forecasts it, for the API and the forecast job alike. Blocking; call it from a thread.
Safe in several threads at once (the forecasters are stateless, the store is thread-safe)."""

from __future__ import annotations

from dataclasses import dataclass

from hub.forecast.base import Forecaster, ForecastError
from hub.forecast.config import ForecastConfig, ThresholdRule
from hub.forecast.crossing import TimeToThreshold, time_to_threshold
from hub.forecast.history import regular
from hub.forecast.methods import candidates
from hub.forecast.select import Prediction, forecast
from hub.forecast.thresholds import DeviceLimits, Threshold, from_rule
from hub.matchers import Matcher, MatchOp
from hub.store.base import TIME_MIN_MS, RangeQuery, SeriesResult, Store
from shared.model import SeriesKey

_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class SeriesForecast:
    """One series' forecast, or why there is none (`error`, e.g. too little history)."""

    key: SeriesKey
    step_ms: int
    first_ms: int  # time of the first forecast step
    last_value: float
    history_points: int
    prediction: Prediction | None
    threshold: Threshold | None
    crossing: TimeToThreshold | None
    error: str = ""

    def crossing_ms(self, steps: int | None) -> int:
        """Epoch ms of a crossing `steps` ahead; 0 for none within the horizon."""
        return 0 if steps is None else self.first_ms + (steps - 1) * self.step_ms


def periods_of(step_ms: int) -> tuple[int, ...]:
    """The seasonal periods in steps: a day and a week (when a day is at least two steps)."""
    day = _DAY_MS // step_ms
    return (day, 7 * day) if day >= 2 else (7,)


class ForecastService:
    def __init__(self, store: Store, config: ForecastConfig, limits: DeviceLimits | None = None) -> None:
        self.store = store
        self.config = config
        self.limits = limits or DeviceLimits()
        self.step_ms = config.step_s * 1000
        self.periods = periods_of(self.step_ms)
        self._rules: dict[str, ThresholdRule] = {r.metric: r for r in config.thresholds}

    @property
    def horizon_steps(self) -> int:
        return max(1, int(self.config.horizon_days * _DAY_MS) // self.step_ms)

    @property
    def min_history_steps(self) -> int:
        return int(self.config.min_history_days * _DAY_MS) // self.step_ms

    def metrics(self) -> tuple[str, ...]:
        """Metric families with a configured threshold rule."""
        return tuple(self._rules)

    def threshold(self, key: SeriesKey, now_ms: int) -> Threshold | None:
        """The device's limit for `key`, else its family's rule, else None."""
        device = self.limits.get(key)
        if device is not None:
            return device
        rule = self._rules.get(key.metric)
        if rule is None:
            return None
        return from_rule(self.store, rule, key, self._start(now_ms), now_ms)

    def query(
        self,
        metric: str,
        matchers: tuple[Matcher, ...],
        now_ms: int,
        horizon_steps: int | None = None,
        method: str | None = None,
        max_series: int | None = None,
    ) -> tuple[list[SeriesForecast], int]:
        """Forecasts of the series of `metric` matching `matchers` (at most `max_series`, by key text),
        and how many matched.

        Raises:
            ValueError: a bad query bound (see `RangeQuery`).
            UnknownMethod: `method` is not known.
        """
        methods = candidates(method or self.config.method)
        q = RangeQuery(metric, self._start(now_ms), now_ms, matchers, step_ms=self.step_ms)
        results = self.store.query(q)
        most = max_series or self.config.max_series
        out = [self._one(r, now_ms, horizon_steps, methods) for r in results[:most]]
        return out, len(results)

    def series(self, key: SeriesKey, now_ms: int) -> SeriesForecast | None:
        """The forecast of exactly `key` with the configured method and horizon; None without points."""
        matchers = tuple(Matcher(k, MatchOp.EQ, v) for k, v in key.labels)
        q = RangeQuery(key.metric, self._start(now_ms), now_ms, matchers, step_ms=self.step_ms)
        found = [r for r in self.store.query(q) if r.key == key]
        if not found:
            return None
        return self._one(found[0], now_ms, None, candidates(self.config.method))

    def _start(self, now_ms: int) -> int:
        return max(TIME_MIN_MS, now_ms - int(self.config.lookback_days * _DAY_MS))

    def _one(
        self, r: SeriesResult, now_ms: int, horizon_steps: int | None, methods: tuple[Forecaster, ...]
    ) -> SeriesForecast:
        first_ms, history = regular(r.timestamps_ms, r.values, self.step_ms)
        n = history.shape[0]
        start = first_ms + n * self.step_ms
        last = float(history[-1]) if n else float("nan")
        threshold = self.threshold(r.key, now_ms)
        try:
            pred = forecast(history, horizon_steps or self.horizon_steps, self.periods, methods)
        except ForecastError as exc:
            return SeriesForecast(r.key, self.step_ms, start, last, n, None, threshold, None, str(exc))
        crossing = None
        if threshold is not None:
            crossing = time_to_threshold(pred, threshold.value, threshold.direction)
        return SeriesForecast(r.key, self.step_ms, start, last, n, pred, threshold, crossing)
