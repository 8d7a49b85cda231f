"""Edge anomaly detection: vectorized streaming detectors over every series an agent collects."""

from __future__ import annotations

from agent.detect.bank import DetectorBank, Observation
from agent.detect.config import DetectConfig, DetectRule
from agent.detect.detectors import DETECTORS

__all__ = ["DETECTORS", "DetectConfig", "DetectRule", "DetectorBank", "Observation"]
