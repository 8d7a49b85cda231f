"""`/api/v1/forecast`: forecasts of the series of a metric, with bands, method, back-test error and the
time to their threshold.

Every parameter is bounded and a bad one is a counted 400: the metric name, matchers, `horizon` (one
step .. 366 days), `method` (`auto` or a registered method; Prophet only when installed), `max_series`
(1 .. 100, 1 .. 5 with Prophet: a series costs a few milliseconds, seconds with Prophet). Fits run on
the API's query pool under its CPU share, like any other store read.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from hub.api.auth import require
from hub.api.deps import Ctx
from hub.api.routes.params import parse_int, parse_metric
from hub.api.timeparse import parse_duration_ms
from hub.forecast import prophet
from hub.forecast.methods import AUTO, FORECASTERS
from hub.forecast.service import ForecastService, SeriesForecast
from hub.matchers import parse_matchers

router = APIRouter(prefix="/api/v1", dependencies=[require("series:read")], tags=["forecast"])

MAX_HORIZON_MS = 366 * 86_400_000
MAX_SERIES = 100
DEFAULT_SERIES = 20
# Prophet takes about a second a fit, three fits a series with the back-test.
PROPHET_MAX_SERIES = 5


def _floats(values: Any) -> list[float | None]:
    """JSON has no NaN: non-finite values become null."""
    return [v if math.isfinite(v) else None for v in values.tolist()]


def _series_json(f: SeriesForecast) -> dict[str, Any]:
    out: dict[str, Any] = {
        "metric": f.key.metric,
        "labels": dict(f.key.labels),
        "history_points": f.history_points,
        "last_value": f.last_value if math.isfinite(f.last_value) else None,
        "start_ms": f.first_ms,
        "step_ms": f.step_ms,
        "error": f.error,
        "threshold": None,
        "time_to_threshold": None,
    }
    if f.threshold is not None:
        t = f.threshold
        out["threshold"] = {"value": t.value, "source": t.source, "direction": t.direction.value}
    if f.crossing is not None:
        c = f.crossing
        out["time_to_threshold"] = {
            "p10_ms": f.crossing_ms(c.p10),
            "p50_ms": f.crossing_ms(c.p50),
            "p90_ms": f.crossing_ms(c.p90),
        }
    p = f.prediction
    if p is not None:
        out |= {
            "method": p.method,
            "backtest": {
                "mase": p.backtest_mase,
                "steps": p.backtest_steps,
                "origins": p.origins,
                "candidates": dict(p.errors),
            },
            "yhat": _floats(p.yhat),
            "p10": _floats(p.p10),
            "p90": _floats(p.p90),
        }
    return out


def service_of(ctx: Ctx) -> ForecastService:
    if ctx.forecast is None:
        raise HTTPException(503, "forecasting is disabled on this hub (forecast.enabled: false)")
    return ctx.forecast


@router.get("/forecast")
async def forecast(
    ctx: Ctx,
    metric: str | None = None,
    match: Annotated[list[str] | None, Query()] = None,
    horizon: str | None = None,
    method: str = AUTO,
    max_series: str | None = None,
) -> dict[str, Any]:
    """Forecasts of every series of `metric` matching `match` (repeatable, e.g. `match=device=pdu1`).

    Each series carries `yhat`, `p10` and `p90` per step from `start_ms` every `step_ms`, the method the
    back-test chose and its error (MASE; per candidate too), its threshold and where it comes from, and
    the time to it (epoch ms at p10 / p50 / p90; 0 when not within the horizon). A series with too little
    history has an `error` instead of a forecast.
    """
    service = service_of(ctx)
    try:
        name = parse_metric(metric)
        if name is None:
            raise ValueError("metric is required")
        matchers = parse_matchers(match)
        steps = None
        if horizon is not None:
            ms = parse_duration_ms(horizon)
            if not service.step_ms <= ms <= MAX_HORIZON_MS:
                raise ValueError(f"horizon must be {service.step_ms} ms (one step) .. {MAX_HORIZON_MS} ms")
            steps = ms // service.step_ms
        if method != AUTO and method not in FORECASTERS:
            raise ValueError(f"method must be {AUTO} or one of {', '.join(FORECASTERS)}")
        if method == "prophet" and not prophet.available():
            raise ValueError("method prophet needs the optional extra: pip install 'outpost[forecast]'")
        cap = PROPHET_MAX_SERIES if method == "prophet" else MAX_SERIES
        most = parse_int("max_series", max_series, min(DEFAULT_SERIES, cap), 1, cap)
    except ValueError as exc:
        raise ctx.queries.bad_request("forecast", str(exc)) from None
    now = ctx.clock.now_ms()
    found, total = await ctx.queries.run("forecast", service.query, name, matchers, now, steps, method, most)
    return {
        "metric": name,
        "now_ms": now,
        "horizon_steps": steps or service.horizon_steps,
        "total": total,
        "series": [_series_json(f) for f in found],
    }
