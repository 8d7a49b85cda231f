"""Edge anomaly onsets and ends → an `EdgeAnomaly` alert per series; severity from the edge score.

With confirmation on (`confirm.enabled`), onsets come from the hub's `AnomalyVerdict` instead of the
agent's `AnomalyReported`: the alert carries the verdict, and a dismissed one is recorded but not paged.
Ends still come from the agent.
"""

from __future__ import annotations

from hub.alerts.model import Labels, Signal, labels_of
from hub.alerts.rules.common import base_labels
from hub.bus.messages import AnomalyReported, AnomalyVerdict

# An onset whose end never arrives (the agent was replaced) must not page for ever.
RESOLVE_AFTER_MS = 6 * 3600 * 1000
_RESERVED = {"alertname", "agent", "site", "device", "metric"}


def severity_of(score: float, reported: str) -> str:
    """The agent's own level wins; a score of 0.99 or more is critical whatever it said."""
    return "critical" if score >= 0.99 or reported == "critical" else "warning"


def signals(msg: AnomalyReported) -> list[Signal]:
    return [_signal(msg, msg.phase == "onset", None, ())]


def ends(msg: AnomalyReported) -> list[Signal]:
    """The rule for `AnomalyReported` while onsets go through confirmation: ends only."""
    return signals(msg) if msg.phase == "end" else []


def confirmed(msg: AnomalyVerdict) -> list[Signal]:
    """An onset with the hub's verdict on it; features largest share first (the bus sorts label pairs by
    name; shares are fixed-width decimals, so their text sorts as their value)."""
    top = tuple(sorted(msg.top_features, key=lambda p: (p[1], p[0]), reverse=True))
    return [_signal(msg, True, msg.verdict, top)]


def _signal(
    msg: AnomalyReported | AnomalyVerdict, firing: bool, verdict: str | None, features: Labels
) -> Signal:
    labels = base_labels("EdgeAnomaly", msg.agent, msg.device) | {"metric": msg.metric}
    labels |= {k: v for k, v in msg.labels if k not in _RESERVED}
    series = msg.metric + "{" + ",".join(f'{k}="{v}"' for k, v in msg.labels) + "}"
    value = "" if msg.value is None else f"{msg.value:.6g}"
    annotations = {
        "summary": f"{msg.metric} anomalous on {msg.device or msg.agent}",
        "score": f"{msg.score:.3f}",
    }
    if value:
        annotations["value"] = value
    if isinstance(msg, AnomalyVerdict):
        annotations["confirm_score"] = f"{msg.confirm_score:.3f}"
    return Signal(
        labels_of(labels),
        firing,
        msg.ts_ms,
        severity=severity_of(msg.score, msg.severity),
        annotations=labels_of(annotations),
        source="edge-anomaly",
        links=(("series", series),),
        resolve_after_ms=RESOLVE_AFTER_MS,
        verdict=verdict,
        verdict_features=features,
    )
