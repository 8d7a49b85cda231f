"""Detection config: which detector, how sensitive and how long to learn, per metric-name pattern."""

from __future__ import annotations

from fnmatch import fnmatchcase
from importlib.util import find_spec
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DetectorName = Literal["robust", "ewma", "hst"]
Seasonality = Literal["none", "daily", "weekly"]


class DetectRule(BaseModel):
    """Settings for every series whose metric name matches `pattern` (a shell glob, case-sensitive).

    Counts are in points because a baseline's statistical memory is about how many samples it has seen;
    `warmup_s` adds a wall-time floor so a fast poller does not leave warm-up after a few minutes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    pattern: str = "*"
    detector: DetectorName = "robust"
    # A River model scored beside the primary detector; the two scores are averaged so that neither alone
    # decides. Opt-in because River costs ~75 MB and a Python object per series.
    second_opinion: DetectorName | None = None
    # Label naming a series' device (e.g. "device"): the hst detector then scores each device's vector of
    # this rule's series with one model per device instead of each series alone.
    group_by: str | None = None
    # 0 = page only on the most extreme points, 1 = page on anything unusual; maps linearly to `threshold`.
    sensitivity: float = Field(default=0.5, ge=0.0, le=1.0)
    critical_score: float = Field(default=0.97, gt=0.0, le=1.0)
    warmup_points: int = Field(default=120, ge=1)
    warmup_s: float = Field(default=900.0, ge=0.0)
    seasonality: Seasonality = "daily"
    # Baseline EWMA weight per point, and how many points the score-rarity histogram remembers.
    alpha: float = Field(default=0.01, gt=0.0, lt=1.0)
    memory_points: int = Field(default=1000, ge=10)
    # After a reported peak, scores not above it report 0 for this many points: one event, one high
    # score (0 = report raw scores). The gate still judges raw scores. 200 points (about 17 hours at
    # 5-minute polls) because a bursty series' episode lasts hours: at 100 its later bursts re-reported.
    refractory_points: int = Field(default=200, ge=0)
    # Consecutive points rejected as anomalous after which the baseline jumps to the new level.
    new_normal_points: int = Field(default=12, ge=1)
    # Smallest deviation (metric units) that can count as one unit of spread: keeps a nearly constant
    # series from paging on its last digit.
    min_scale: float = Field(default=0.0, ge=0.0)
    persistence_k: int = Field(default=1, ge=1, le=8)
    persistence_n: int = Field(default=1, ge=1, le=8)
    suppress_s: float = Field(default=900.0, ge=0.0)

    @model_validator(mode="after")
    def _k_within_n(self) -> DetectRule:
        if self.persistence_k > self.persistence_n:
            raise ValueError("persistence_k must not exceed persistence_n")
        if self.second_opinion == self.detector:
            raise ValueError("second_opinion must differ from detector")
        if self.group_by is not None and "hst" not in (self.detector, self.second_opinion):
            raise ValueError("group_by needs the hst detector (as detector or second_opinion)")
        return self

    @property
    def threshold(self) -> float:
        """Score at or above which a point is anomalous (sensitivity 0.5 -> 0.6)."""
        return 0.8 - 0.4 * self.sensitivity


class DetectConfig(BaseModel):
    """The detection stage of an agent; every field has a default so `DetectConfig()` is a working setup."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: list[DetectRule] = Field(default_factory=list)
    default: DetectRule = DetectRule()
    snapshot_interval_s: float = Field(default=300.0, gt=0.0)
    # A series not seen for stale_after_s is `stale`; after forget_after_s its row is freed.
    stale_after_s: float = Field(default=600.0, gt=0.0)
    forget_after_s: float = Field(default=6 * 3600.0, gt=0.0)
    max_series: int = Field(default=1_000_000, ge=1)

    @model_validator(mode="after")
    def _river_installed(self) -> DetectConfig:
        """An agent configured for River must have it: say so at start-up, not at the first poll."""
        rules = [self.default, *self.rules]
        if any("hst" in (r.detector, r.second_opinion) for r in rules) and find_spec("river") is None:
            raise ValueError("detector 'hst' needs River: pip install 'outpost[agent,ml]'")
        return self

    def rule_for(self, metric: str) -> DetectRule:
        """First rule whose pattern matches the metric name, else the default."""
        for rule in self.rules:
            if fnmatchcase(metric, rule.pattern):
                return rule
        return self.default
