"""Prophet behind the optional `forecast` extra: skipped when it is not installed (the default suite
needs it nowhere else), quiet under warnings-as-errors, and answering through the same selection."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from hub.forecast import prophet
from hub.forecast.methods import candidates
from hub.forecast.select import forecast

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(not prophet.available(), reason="needs the extra: pip install 'outpost[forecast]'"),
]


def test_prophet_forecasts_a_daily_cycle_through_the_back_test_without_warnings_or_log_lines(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(3)
    t = np.arange(24 * 14)
    x = 100 + 20 * np.sin(2 * np.pi * t / 24) + 0.1 * t + rng.normal(0, 2, t.shape[0])
    with caplog.at_level(logging.INFO):
        p = forecast(x, 48, (24, 168), candidates("prophet"), origins=1)
    assert p.method == "prophet" and p.yhat.shape == (48,) and np.isfinite(p.yhat).all()
    t_next = np.arange(t.shape[0], t.shape[0] + 48)
    truth = 100 + 20 * np.sin(2 * np.pi * t_next / 24) + 0.1 * t_next
    assert np.mean(np.abs(p.yhat - truth)) < 4.0
    assert p.backtest_mase < 1.5
    assert [r for r in caplog.records if r.name.startswith(("prophet", "cmdstanpy"))] == []
    out, err = capfd.readouterr()
    assert "cmdstanpy" not in out + err and "plotly" not in out + err
