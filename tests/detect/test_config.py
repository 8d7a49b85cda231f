"""Detection config: frozen, strict, and rules matched by metric glob in order."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.detect import DetectConfig, DetectRule

pytestmark = pytest.mark.unit


def test_default_config_is_valid_and_frozen() -> None:
    config = DetectConfig()
    assert config.default.detector == "robust"
    assert config.snapshot_interval_s == 300.0
    with pytest.raises(ValidationError):
        config.max_series = 3


def test_unknown_field_is_rejected_with_its_path() -> None:
    with pytest.raises(ValidationError) as err:
        DetectConfig.model_validate({"rules": [{"pattern": "cpu.*", "sensitivty": 0.9}]})
    assert err.value.errors()[0]["loc"] == ("rules", 0, "sensitivty")


def test_unknown_detector_is_rejected() -> None:
    with pytest.raises(ValidationError):
        DetectRule.model_validate({"detector": "prophet"})


def test_persistence_k_above_n_is_rejected() -> None:
    with pytest.raises(ValidationError):
        DetectRule(persistence_k=3, persistence_n=2)


def test_first_matching_rule_wins_and_default_catches_the_rest() -> None:
    fans = DetectRule(pattern="fan.*", seasonality="none")
    temps = DetectRule(pattern="*.temp*", sensitivity=0.2)
    config = DetectConfig(rules=[fans, temps, DetectRule(pattern="fan.speed", detector="ewma")])
    assert config.rule_for("fan.speed") is fans
    assert config.rule_for("chassis.temperature") is temps
    assert config.rule_for("if.in.octets") is config.default


def test_sensitivity_maps_linearly_to_threshold() -> None:
    assert DetectRule(sensitivity=0.0).threshold == pytest.approx(0.8)
    assert DetectRule(sensitivity=0.5).threshold == pytest.approx(0.6)
    assert DetectRule(sensitivity=1.0).threshold == pytest.approx(0.4)
