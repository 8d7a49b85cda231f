"""Alert sources, one small module each: a bus message in, the `Signal`s it means out.

`RULES` maps a bus topic to its rule; the agent-offline rule also keeps time (heartbeats) and lives in
`agent_offline.py`. External alerts come from the API (`external.py`).
"""

from __future__ import annotations

from collections.abc import Callable

from hub.alerts.model import Signal
from hub.alerts.rules import anomaly, device_events, limits, predictive
from hub.bus.messages import (
    AnomalyReported,
    AnomalyVerdict,
    DeviceEvent,
    ForecastCrossing,
    LimitCrossed,
    Message,
)

Rule = Callable[[Message], list[Signal]]

RULES: dict[str, Rule] = {
    AnomalyReported.TOPIC: anomaly.signals,  # type: ignore[dict-item]
    DeviceEvent.TOPIC: device_events.signals,  # type: ignore[dict-item]
    LimitCrossed.TOPIC: limits.signals,  # type: ignore[dict-item]
    ForecastCrossing.TOPIC: predictive.signals,  # type: ignore[dict-item]
}

# With `confirm.enabled`: edge onsets become alerts once the hub's confirmation has judged them.
CONFIRMED_RULES: dict[str, Rule] = {
    **RULES,
    AnomalyReported.TOPIC: anomaly.ends,  # type: ignore[dict-item]
    AnomalyVerdict.TOPIC: anomaly.confirmed,  # type: ignore[dict-item]
}
