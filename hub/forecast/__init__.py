"""Forecasting: point forecasts and honest bands per series, time to a threshold, predictive alerts.

`base` (the `Forecaster` protocol), `naive` and `smoothing` (the fast numpy methods), `prophet` (optional
extra), `methods` (the registry), `select` (rolling back-test selection and bands), `crossing` (time to
threshold and the raise/resolve state), `thresholds`, `history` (store points onto a regular grid),
`service` (series in, forecasts out) and `jobs` (the refit scheduler).
"""
