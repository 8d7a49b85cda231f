"""Alert value types: what a rule observed (`Signal`) and the alert the engine keeps (`Alert`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

Labels = tuple[tuple[str, str], ...]


class AlertStatus(Enum):
    """Where an alert is in its life. Suppressed: firing, but inside a silence or maintenance window."""

    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    SUPPRESSED = "suppressed"
    RESOLVED = "resolved"


SEVERITIES = ("info", "warning", "critical")


def severity_rank(severity: str) -> int:
    """info < warning < critical; unknown severities rank as warning."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else 1


def labels_of(mapping: dict[str, str]) -> Labels:
    """The canonical label tuple: sorted by name, empty values dropped (as Prometheus does)."""
    return tuple(sorted((k, v) for k, v in mapping.items() if v != ""))


@dataclass(frozen=True, slots=True)
class Signal:
    """One observation by a rule: the alert with these labels fires (or has ended) at `ts_ms`.

    `fingerprint` is kept as is when a source supplies one (external alerts); otherwise the engine
    derives it from the configured label set. `resolve_after_ms` auto-resolves an alert that no
    source ever ends (a SEL entry): it resolves that long after it was last seen.
    """

    labels: Labels
    firing: bool
    ts_ms: int
    severity: str = "warning"
    annotations: Labels = ()
    source: str = ""
    fingerprint: str | None = None
    links: Labels = ()
    resolve_after_ms: int | None = None
    # The hub's confirmation of an edge onset (`hub.confirm`): a dismissed alert never pages.
    verdict: str | None = None
    verdict_features: Labels = ()


@dataclass(slots=True, eq=False)
class Alert:
    """The engine's mutable view of one alert row (`models.alerts`)."""

    id: str
    fingerprint: str
    labels: Labels
    annotations: Labels
    severity: str
    source: str
    status: AlertStatus
    starts_ms: int
    first_seen_ms: int
    last_seen_ms: int
    count: int = 1
    ends_ms: int | None = None
    # The condition itself, whatever the status says: a flapping alert stays open while it flips.
    active: bool = True
    flapping: bool = False
    transitions: list[int] = field(default_factory=list)
    links: Labels = ()
    resolve_after_ms: int | None = None
    # No notification before this time: an onset replayed late waits a moment for its end.
    eligible_ms: int = 0
    # Receivers that were told this alert is firing, and those already told it resolved.
    notified: set[str] = field(default_factory=set)
    resolved_notified: set[str] = field(default_factory=set)
    silenced_by: str | None = None
    ack_by: str | None = None
    ack_ms: int | None = None
    resolved_by: str | None = None
    incident_id: str | None = None
    verdict: str | None = None  # confirmed / dismissed / unscored, for confirmed sources only
    verdict_features: Labels = ()  # (feature, share) that isolated the onset most

    def label(self, name: str) -> str:
        for k, v in self.labels:
            if k == name:
                return v
        return ""

    @property
    def is_open(self) -> bool:
        return self.status is not AlertStatus.RESOLVED
