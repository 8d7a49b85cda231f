"""Device limits crossed (a BMC's upper critical, a PDU's load threshold, Redfish health) → an alert per
series and limit; the series coming back inside its limit resolves it."""

from __future__ import annotations

from hub.alerts.model import Signal, labels_of
from hub.alerts.rules.common import base_labels
from hub.bus.messages import LimitCrossed

_CRITICAL = {"crit_high", "crit_low", "health_critical"}
_RESERVED = {"alertname", "agent", "site", "device", "metric", "limit"}


def signals(msg: LimitCrossed) -> list[Signal]:
    limit = msg.limit_name
    # One alert per series and direction (high / low / health): crossing crit after warn raises its
    # severity instead of opening a second alert.
    family = "health" if limit.startswith("health") else limit.rsplit("_", 1)[-1]
    labels = base_labels("LimitCrossed", msg.agent, msg.device) | {"metric": msg.metric, "limit": family}
    labels |= {k: v for k, v in msg.labels if k not in _RESERVED}
    series = msg.metric + "{" + ",".join(f'{k}="{v}"' for k, v in msg.labels) + "}"
    where = msg.device or msg.agent
    summary = f"{msg.metric} {msg.value:.6g} beyond {limit} {msg.limit_value:.6g} on {where}"
    return [
        Signal(
            labels_of(labels),
            msg.phase == "onset",
            msg.ts_ms,
            severity="critical" if limit in _CRITICAL else "warning",
            annotations=labels_of({"summary": summary, "value": f"{msg.value:.6g}", "limit": limit}),
            source="device-limit",
            links=(("series", series),),
        )
    ]
