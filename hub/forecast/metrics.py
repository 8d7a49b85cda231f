"""The forecast job's counters on the hub's /metrics: fits and their CPU cost, series deferred by the
budget, crossings published."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# CPU seconds of one fit + forecast: the default methods take milliseconds, Prophet about a second.
_FIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ForecastMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.fits = Counter(
            "outpost_hub_forecast_fits",
            "Series refitted by the forecast job, by result (ok; no_history: too little or none to fit)",
            ["result"],
            registry=registry,
        )
        self.fit_seconds = Histogram(
            "outpost_hub_forecast_fit_cpu_seconds",
            "CPU time of one series' fit and forecast (reading its history included)",
            buckets=_FIT_BUCKETS,
            registry=registry,
        )
        self.deferred = Counter(
            "outpost_hub_forecast_deferred",
            "Eligible series left for a later round because the round's CPU budget was spent",
            registry=registry,
        )
        self.failed = Counter(
            "outpost_hub_forecast_failed", "Fits that raised an unexpected error (logged)", registry=registry
        )
        self.eligible = Gauge(
            "outpost_hub_forecast_series",
            "Series with a known threshold, refitted in turn",
            registry=registry,
        )
        self.crossings = Counter(
            "outpost_hub_forecast_crossings",
            "Predictive crossing messages published, by phase (onset repeats at every refit)",
            ["phase"],
            registry=registry,
        )
