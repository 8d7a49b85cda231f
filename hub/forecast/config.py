"""The `forecast:` section of hub.yaml: what is forecast, against which thresholds, within what budget."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.forecast.methods import AUTO, FORECASTERS

_METRIC = r"^[A-Za-z_:][A-Za-z0-9_:]{0,255}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ThresholdRule(_Frozen):
    """The threshold of one metric family: a fixed `value`, or `fraction` of the latest value of a
    companion `capacity_metric` with the same labels (a filesystem's size, an interface's speed).

    Device-reported limits (a Redfish upper critical, a PDU's load threshold) need no rule: they are
    learnt from the limit states ingest publishes and win over a rule's threshold.
    """

    metric: str = Field(pattern=_METRIC)
    value: float | None = None
    capacity_metric: str | None = Field(default=None, pattern=_METRIC)
    fraction: float = Field(default=1.0, gt=0, le=1000)
    direction: Literal["above", "below"] = "above"

    @model_validator(mode="after")
    def _one_source(self) -> ThresholdRule:
        if (self.value is None) == (self.capacity_metric is None):
            raise ValueError("give exactly one of value or capacity_metric")
        return self


DEFAULT_THRESHOLDS: tuple[ThresholdRule, ...] = (
    ThresholdRule(metric="device_storage_used_bytes", capacity_metric="device_storage_size_bytes"),
    ThresholdRule(metric="host_disk_utilization_percent", value=100.0),
    ThresholdRule(metric="host_memory_used_bytes", capacity_metric="host_memory_total_bytes"),
    # A power supply's output against its rating (Redfish PowerCapacityWatts).
    ThresholdRule(metric="hw_psu_output_watts", capacity_metric="hw_psu_capacity_watts"),
    # Interface rates are bytes/s, their speed bits/s.
    ThresholdRule(
        metric="net_if_receive_bytes_per_second",
        capacity_metric="net_if_speed_bits_per_second",
        fraction=0.125,
    ),
    ThresholdRule(
        metric="net_if_transmit_bytes_per_second",
        capacity_metric="net_if_speed_bits_per_second",
        fraction=0.125,
    ),
)


class ForecastConfig(_Frozen):
    """Forecasting and predictive alerts (hub/forecast). Series are read on a grid of `step_s`; a day
    and a week of it are the seasonal periods."""

    enabled: bool = True
    # The scheduler refits eligible series (a threshold known) this often, oldest fit first...
    interval_s: float = Field(default=300.0, ge=1.0, le=86_400)
    # ...spending at most this share of one core on it (thread CPU time); the rest waits a round.
    cpu_share: float = Field(default=0.05, gt=0, le=1.0)
    step_s: int = Field(default=3600, ge=60, le=86_400)
    lookback_days: float = Field(default=28.0, gt=0, le=366)
    horizon_days: float = Field(default=30.0, gt=0, le=366)
    # History needed before a predictive alert may be raised, in days (two daily periods).
    min_history_days: float = Field(default=2.0, ge=1.0, le=366)
    method: str = Field(default="auto", pattern=r"^[a-z_]{1,40}$")
    max_series: int = Field(default=10_000, ge=1, le=1_000_000)
    thresholds: tuple[ThresholdRule, ...] = DEFAULT_THRESHOLDS

    @model_validator(mode="after")
    def _known_method(self) -> ForecastConfig:
        if self.method != AUTO and self.method not in FORECASTERS:
            raise ValueError(f"method must be {AUTO} or one of {', '.join(FORECASTERS)}")
        return self
