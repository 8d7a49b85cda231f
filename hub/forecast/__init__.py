"""Forecasting: point forecasts and honest bands per series, time to a threshold, predictive alerts.

`base` (the `Forecaster` protocol and errors), `naive`, `smoothing` and `combine` (the numpy methods),
`prophet` (the optional extra), `methods` (the registry), `select` (rolling back-test selection and
bands), `crossing` (time to threshold, raise/resolve hysteresis), `thresholds` (device limits and family
rules), `history` (store points onto a regular grid), `service` (series in, forecasts out), `jobs` (the
refit scheduler), `metrics` and `config`.
"""
