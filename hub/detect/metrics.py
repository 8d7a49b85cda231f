"""The push scoring job's series, read at scrape time from its counters (nothing on the hot path)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from hub.detect.service import RESULTS, PushScoringJob

_PREFIX = "outpost_hub_detect"


class DetectCollector:
    """A prometheus_client custom collector over a `PushScoringJob`."""

    def __init__(self, job: PushScoringJob) -> None:
        self._job = job

    def collect(self) -> Iterable[Metric]:
        job, stats = self._job, self._job.stats
        points = CounterMetricFamily(
            f"{_PREFIX}_points", "Pushed points, by what scoring did with them", labels=["result"]
        )
        counts = dict(stats.points)
        for result in RESULTS:
            points.add_metric([result], counts.get(result, 0))
        yield points
        anomalies = CounterMetricFamily(
            f"{_PREFIX}_anomalies", "Anomaly onsets and ends of pushed series published", labels=["phase"]
        )
        for phase, n in sorted(dict(stats.anomalies).items()):
            anomalies.add_metric([phase], n)
        yield anomalies
        series = GaugeMetricFamily(
            f"{_PREFIX}_series", "Pushed series held by the detector banks, by state", labels=["state"]
        )
        for state, n in sorted(dict(stats.series).items()):
            series.add_metric([state], n)
        yield series
        for name, help_text, value in (
            ("duplicate_messages", "Pushed-point messages seen twice and skipped", stats.duplicate_messages),
            ("malformed_messages", "Pushed-point messages whose columns disagree", stats.malformed_messages),
            ("refused_anomalies", "Anomalies the bus refuses a field of", stats.refused_anomalies),
            ("publish_failures", "Anomalies the bus did not take (retried)", stats.publish_failures),
            ("unsent_dropped", "Anomalies dropped: too many waiting for the bus", stats.unsent_dropped),
            ("snapshot_failures", "Detector state saves that failed", stats.snapshot_failures),
            ("failed_ticks", "Scoring ticks that failed", stats.failed_ticks),
            ("yielded_ticks", "Scoring ticks that waited for ingest", stats.yielded_ticks),
            ("tick_seconds", "Time spent scoring pushed points", stats.tick_seconds),
        ):
            yield CounterMetricFamily(f"{_PREFIX}_{name}", help_text, value=value)
        yield GaugeMetricFamily(f"{_PREFIX}_sources", "Pushing sources being scored", value=stats.sources)
        yield GaugeMetricFamily(
            f"{_PREFIX}_queued_points", "Pushed points waiting for the next tick", value=job.queued_points
        )
