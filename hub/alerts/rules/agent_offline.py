"""Agents that stop heartbeating → exactly one `AgentOffline` alert naming the devices left unobserved.

Only agents that have sent a heartbeat are tracked (an agent too old to send them is never called
offline for its silence). An agent is offline after `missed_heartbeats` of its own intervals, never
later than `max_after_s`; while it is, the engine inhibits creation of alerts behind it, and its next
heartbeat resolves the offline alert.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.alerts.config import OfflineConfig
from hub.alerts.engine import OFFLINE_ALERTNAME
from hub.alerts.model import Signal, labels_of
from hub.alerts.rules.common import site_of
from hub.bus.messages import AgentSeen

_MAX_LISTED = 50


@dataclass(slots=True)
class _Agent:
    last_seen_ms: int
    heartbeat_s: float
    devices: tuple[str, ...]
    offline: bool = False


def offline_labels(agent: str) -> dict[str, str]:
    return {"alertname": OFFLINE_ALERTNAME, "agent": agent, "site": site_of(agent)}


class OfflineTracker:
    """Heartbeats in, offline/online transitions out (as signals), driven by the caller's clock."""

    def __init__(self, config: OfflineConfig) -> None:
        self._cfg = config
        self.agents: dict[str, _Agent] = {}

    def _limit_ms(self, a: _Agent) -> int:
        return int(min(self._cfg.missed_heartbeats * a.heartbeat_s, self._cfg.max_after_s) * 1000)

    def seen(self, msg: AgentSeen, now_ms: int) -> list[Signal]:
        """A heartbeat; returns the offline alert's end when the agent was offline."""
        devices = tuple(sorted(set(msg.targets_up) | set(msg.targets_down)))
        hb = msg.heartbeat_s if msg.heartbeat_s > 0 else self._cfg.default_heartbeat_s
        a = self.agents.get(msg.agent)
        # A heartbeat replayed from the spool says nothing about now; only the newest counts.
        seen_ms = max(msg.ts_ms, a.last_seen_ms if a else 0)
        if a is None:
            self.agents[msg.agent] = _Agent(seen_ms, hb, devices)
            return []
        a.last_seen_ms, a.heartbeat_s, a.devices = seen_ms, hb, devices or a.devices
        if a.offline and now_ms - a.last_seen_ms < self._limit_ms(a):
            a.offline = False
            labels = labels_of(offline_labels(msg.agent))
            return [Signal(labels, False, now_ms, "critical", source="heartbeat")]
        return []

    def check(self, now_ms: int) -> list[Signal]:
        """Agents whose heartbeats stopped: one firing signal each, on the transition only."""
        out = []
        for name, a in self.agents.items():
            if not a.offline and now_ms - a.last_seen_ms >= self._limit_ms(a):
                a.offline = True
                silent_s = (now_ms - a.last_seen_ms) / 1000
                listed = ", ".join(a.devices[:_MAX_LISTED]) + (" ..." if len(a.devices) > _MAX_LISTED else "")
                n = len(a.devices)
                summary = f"agent {name} offline, {n} device{'s' if n != 1 else ''} unobserved"
                annotations = {
                    "summary": summary,
                    "devices": listed,
                    "device_count": str(n),
                    "silent_for_s": f"{silent_s:.0f}",
                }
                out.append(
                    Signal(
                        labels_of(offline_labels(name)),
                        True,
                        a.last_seen_ms,
                        "critical",
                        labels_of(annotations),
                        "heartbeat",
                    )
                )
        return out

    def offline(self) -> dict[str, tuple[str, ...]]:
        return {name: a.devices for name, a in self.agents.items() if a.offline}

    def next_check_ms(self) -> int | None:
        dues = [a.last_seen_ms + self._limit_ms(a) for a in self.agents.values() if not a.offline]
        return min(dues) if dues else None
