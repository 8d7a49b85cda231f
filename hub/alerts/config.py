"""Alerting configuration: fingerprints, flap detection, late replays, offline agents, routes and timers.

In hub.yaml:

    alerts:
      group_by: [site, device]          # incidents and notification groups
      timers:                           # Alertmanager semantics
        group_wait_s: 30
        group_interval_s: 300
        repeat_interval_s: 14400
      routes:
        - matchers: ['severity="critical"']
          receiver: noc-webhook
        - receiver: alertmanager        # no matchers: everything
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.matchers import parse_matchers


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Timers(_Frozen):
    """When a group notifies: first after `group_wait_s`, changes at most every `group_interval_s`,
    an unchanged firing group again after `repeat_interval_s`."""

    group_wait_s: float = Field(default=30.0, ge=0, le=86_400)
    group_interval_s: float = Field(default=300.0, gt=0, le=86_400)
    repeat_interval_s: float = Field(default=4 * 3600.0, gt=0, le=30 * 86_400)


class RouteConfig(_Frozen):
    """Alerts matching every matcher go to `receiver`; the first matching route wins unless `continue_`."""

    matchers: tuple[str, ...] = ()
    receiver: str = Field(min_length=1, max_length=128)
    group_by: tuple[str, ...] | None = None  # default: alerts.group_by
    timers: Timers | None = None  # default: the alerts-level timers
    continue_: bool = Field(default=False, alias="continue")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @field_validator("matchers")
    @classmethod
    def _parse(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        parse_matchers(list(v))  # raises ValueError with the reason
        return v


class FlapConfig(_Frozen):
    """`transitions` state changes within `window_s` make an alert flapping: it stays open and notifies
    once instead of on every flip; it stops flapping when fewer than half that many remain in the window."""

    transitions: int = Field(default=4, ge=2, le=1000)
    window_s: float = Field(default=600.0, gt=0, le=86_400)


class OfflineConfig(_Frozen):
    """An agent is offline after `missed_heartbeats` heartbeat intervals without one, never later than
    `max_after_s` (the NOC's promise: an agent that died is known within 45 s)."""

    missed_heartbeats: float = Field(default=3.0, ge=1.5, le=20)
    max_after_s: float = Field(default=45.0, gt=0, le=3600)
    # Until an agent's first heartbeat says otherwise.
    default_heartbeat_s: float = Field(default=10.0, gt=0, le=3600)


class AlertsConfig(_Frozen):
    """Top-level `alerts:` section."""

    # Labels that identify an alert; None = all labels. A source-supplied fingerprint is kept as is.
    fingerprint_labels: tuple[str, ...] | None = None
    group_by: tuple[str, ...] = ("site", "device")
    timers: Timers = Timers()
    routes: tuple[RouteConfig, ...] = ()
    flap: FlapConfig = FlapConfig()
    offline: OfflineConfig = OfflineConfig()
    # Alerts no source resolves (external ones without an end) resolve after this long unseen.
    resolve_timeout_s: float = Field(default=3600.0, gt=0, le=30 * 86_400)
    # A signal this much older than its arrival is a replay; its alert notifies only if still active
    # `late_settle_s` later (the replay's end usually follows within a second or two).
    late_after_s: float = Field(default=60.0, gt=0)
    late_settle_s: float = Field(default=10.0, ge=0, le=600)
    # Open alerts kept; beyond it new alerts are refused and counted (a storm must not exhaust memory).
    max_open_alerts: int = Field(default=100_000, ge=100)
