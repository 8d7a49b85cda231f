"""The issue's predictive-alert fixtures: hourly, 28 days, threshold 100 (values in % of it)."""

from __future__ import annotations

import numpy as np

from shared.model import F64Array

HOURS = 28 * 24
THRESHOLD = 100.0


def sawtooth(seed: int = 1) -> F64Array:
    """A log-rotation sawtooth: fills from 10 % to 70 % over a day, then drops back (a little noise)."""
    rng = np.random.default_rng(seed)
    phase = np.arange(HOURS) % 24
    return 10.0 + 60.0 * phase / 23 + rng.normal(0, 0.5, HOURS)


def growing(seed: int = 2) -> F64Array:
    """Starts at 40 % and grows by 2 % a day, with a daily cycle of +-10 % and 3 % noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(HOURS)
    return 40.0 + 2.0 * t / 24 + 10.0 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 3.0, HOURS)


def flat(seed: int = 3) -> F64Array:
    """Flat at 60 % with 3 % noise."""
    rng = np.random.default_rng(seed)
    return 60.0 + rng.normal(0, 3.0, HOURS)


def cleaned_up(seed: int = 4) -> F64Array:
    """Grows by 3 % a day from 40 % for two weeks, then a clean-up drops it to 30 %, flat after."""
    rng = np.random.default_rng(seed)
    t = np.arange(HOURS)
    level = np.where(t < 14 * 24, 40.0 + 3.0 * t / 24, 30.0)
    return level + 5.0 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 2.0, HOURS)
