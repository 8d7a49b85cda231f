"""Edge anomaly detection: vectorized streaming detectors over every series an agent collects."""

from __future__ import annotations

from shared.detect.bank import DetectorBank, Observation
from shared.detect.config import DetectConfig, DetectRule
from shared.detect.detectors import DETECTORS

__all__ = ["DETECTORS", "DetectConfig", "DetectRule", "DetectorBank", "Observation"]
