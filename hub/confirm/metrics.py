"""The confirmation job's series, read at scrape time from its counters (nothing on the hot path)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from hub.confirm.jobs import VERDICTS, ConfirmJob, rate


class ConfirmCollector:
    """A prometheus_client custom collector over a `ConfirmJob`."""

    def __init__(self, job: ConfirmJob) -> None:
        self._job = job

    def collect(self) -> Iterable[Metric]:
        job, stats = self._job, self._job.stats
        verdicts = CounterMetricFamily(
            "outpost_hub_confirm_verdicts", "Edge onsets judged, by detector and verdict",
            labels=["detector", "verdict"],
        )  # fmt: skip
        detectors: dict[str, Counter[str]] = {}
        for (detector, verdict), n in sorted(stats.by_detector.items()):
            verdicts.add_metric([detector, verdict], n)
            detectors.setdefault(detector, Counter())[verdict] = n
        yield verdicts
        by_detector = GaugeMetricFamily(
            "outpost_hub_confirm_rate", "Share of judged onsets confirmed, by detector", labels=["detector"]
        )
        for detector, counts in sorted(detectors.items()):
            r = rate(counts)
            if r is not None:
                by_detector.add_metric([detector], r)
        yield by_detector
        device_verdicts = CounterMetricFamily(
            "outpost_hub_confirm_device_verdicts", "Edge onsets judged, by device and verdict",
            labels=["agent", "device", "verdict"],
        )  # fmt: skip
        by_device = GaugeMetricFamily(
            "outpost_hub_confirm_device_rate", "Share of judged onsets confirmed, by device",
            labels=["agent", "device"],
        )  # fmt: skip
        for (agent, device), counts in sorted(stats.by_device.items()):
            for verdict in VERDICTS:
                if counts[verdict]:
                    device_verdicts.add_metric([agent, device, verdict], counts[verdict])
            r = rate(counts)
            if r is not None:
                by_device.add_metric([agent, device], r)
        yield device_verdicts
        yield by_device
        models = job.models
        for name, help_text, value in (
            ("outpost_hub_confirm_dropped", "Onsets dropped: the confirmation queue was full", stats.dropped),
            ("outpost_hub_confirm_duplicates", "Onsets seen twice and skipped", stats.duplicates),
            (
                "outpost_hub_confirm_deferred",
                "Onsets that waited a tick for their device's first fit",
                stats.deferred,
            ),
            (
                "outpost_hub_confirm_failed_ticks",
                "Ticks that failed (their onsets were queued again)",
                stats.failed_ticks,
            ),
            (
                "outpost_hub_confirm_publish_failures",
                "Verdicts the bus refused (judged again)",
                stats.publish_failures,
            ),
            ("outpost_hub_confirm_fits", "Device models fitted", models.fits),
            ("outpost_hub_confirm_fit_failures", "Device model fits that failed", models.fit_failures),
            (
                "outpost_hub_confirm_too_little_history",
                "Fits skipped: too little history",
                models.too_little_history,
            ),
            (
                "outpost_hub_confirm_unreadable_models",
                "Model files that did not load (refitted)",
                models.unreadable_files,
            ),
            ("outpost_hub_confirm_tick_seconds", "Time spent judging batches", stats.tick_seconds),
        ):
            yield CounterMetricFamily(name, help_text, value=value)
        yield GaugeMetricFamily(
            "outpost_hub_confirm_queued", "Onsets waiting for the next tick", value=job.queued
        )
