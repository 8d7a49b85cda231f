"""Forecast crossings → a `PredictedCrossing` alert per series and threshold, carrying the forecast that
raised it ("reaches 7.2e+03 (device crit_high) in about 6 days (p10 4, p90 9)"); its end resolves it.

The forecast job repeats the onset at every refit while the band crosses, so an alert whose job went
away (the series vanished, the job moved to a worker that no longer sees it) resolves by timeout.
"""

from __future__ import annotations

from urllib.parse import urlencode

from hub.alerts.model import Signal, labels_of
from hub.alerts.rules.common import base_labels
from hub.bus.messages import ForecastCrossing

RESOLVE_AFTER_MS = 6 * 3600 * 1000
# A crossing expected sooner than this (p50) is critical: there is about a day left to act.
CRITICAL_WITHIN_MS = 24 * 3600 * 1000
_RESERVED = {"alertname", "agent", "site", "device", "metric", "threshold"}
_DAY_MS = 86_400_000


def _days(ms: int, now_ms: int) -> str:
    """Time left in days, one decimal below ten; "beyond the horizon" for 0."""
    if ms <= 0:
        return "beyond the horizon"
    days = max(0.0, (ms - now_ms) / _DAY_MS)
    return f"{days:.1f} days" if days < 10 else f"{days:.0f} days"


def summary(msg: ForecastCrossing) -> str:
    """One line an operator can act on: what, where, which limit, when (p50, with p10 and p90)."""
    where = msg.device or msg.agent
    what = f"{msg.metric} on {where}"
    limit = f"{msg.threshold:.6g} ({msg.threshold_source})"
    p10, p90 = _days(msg.p10_ms, msg.ts_ms), _days(msg.p90_ms, msg.ts_ms)
    if msg.p50_ms <= 0:  # only the pessimistic band gets there
        return f"{what} may reach {limit} in {p10} (p10; p50 beyond the horizon)"
    return f"{what} reaches {limit} in about {_days(msg.p50_ms, msg.ts_ms)} (p10 {p10}, p90 {p90})"


def signals(msg: ForecastCrossing) -> list[Signal]:
    labels = base_labels("PredictedCrossing", msg.agent, msg.device) | {
        "metric": msg.metric,
        "threshold": msg.threshold_source,
    }
    labels |= {k: v for k, v in msg.labels if k not in _RESERVED}
    soon = 0 < msg.p50_ms <= msg.ts_ms + CRITICAL_WITHIN_MS
    annotations = {
        "summary": summary(msg),
        "value": f"{msg.value:.6g}",
        "threshold": f"{msg.threshold:.6g}",
        "direction": msg.direction,
        "crossing_p10_ms": str(msg.p10_ms),
        "crossing_p50_ms": str(msg.p50_ms),
        "crossing_p90_ms": str(msg.p90_ms),
        "horizon_ms": str(msg.horizon_ms),
        "method": msg.method,
        "backtest_mase": f"{msg.backtest_mase:.3f}",
    }
    query = [("metric", msg.metric)] + [("match", f"{k}={v}") for k, v in msg.labels]
    series = msg.metric + "{" + ",".join(f'{k}="{v}"' for k, v in msg.labels) + "}"
    return [
        Signal(
            labels_of(labels),
            msg.phase == "onset",
            msg.ts_ms,
            severity="critical" if soon else "warning",
            annotations=labels_of(annotations),
            source="forecast",
            links=(("forecast", "/api/v1/forecast?" + urlencode(query)), ("series", series)),
            resolve_after_ms=RESOLVE_AFTER_MS,
        )
    ]
