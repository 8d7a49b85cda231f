"""The alerts component's own series, read at scrape time from the live engine (nothing on the hot path)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from hub.alerts.service import AlertService


class AlertsCollector:
    """A prometheus_client custom collector over an `AlertService`."""

    def __init__(self, service: AlertService) -> None:
        self._service = service

    def collect(self) -> Iterable[Metric]:
        svc = self._service
        engine = svc.core.engine
        signals = CounterMetricFamily(
            "outpost_hub_alert_signals",
            "Signals by what the engine did with them (created, deduplicated, inhibited, resolved...)",
            labels=["outcome"],
        )
        for outcome, n in sorted(engine.stats.items()):
            signals.add_metric([outcome], n)
        yield signals
        open_alerts = GaugeMetricFamily(
            "outpost_hub_alerts_open", "Open alerts by status and severity", labels=["status", "severity"]
        )
        by = Counter((a.status.value, a.severity) for a in engine.open.values())
        for (status, severity), n in sorted(by.items()):
            open_alerts.add_metric([status, severity], n)
        yield open_alerts
        yield GaugeMetricFamily(
            "outpost_hub_alerts_flapping",
            "Open alerts that are flapping",
            value=sum(1 for a in engine.open.values() if a.flapping),
        )
        incidents = len(svc.core.incidents.open)
        yield GaugeMetricFamily("outpost_hub_incidents_open", "Open incidents", value=incidents)
        yield GaugeMetricFamily(
            "outpost_hub_agents_offline", "Agents whose heartbeats stopped", value=len(svc.offline.offline())
        )
        yield CounterMetricFamily(
            "outpost_hub_alert_write_failures",
            "Alert steps the state database refused (retried)",
            value=svc.failed_writes,
        )
        yield CounterMetricFamily(
            "outpost_hub_alert_duplicate_messages",
            "Bus messages seen twice and skipped",
            value=svc.duplicate_messages,
        )
        yield CounterMetricFamily(
            "outpost_hub_alert_changes_unannounced",
            "Alert and incident changes written but not announced on the bus (it was down or closed)",
            value=svc.unannounced,
        )
