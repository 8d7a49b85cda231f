"""The agent's own health and metrics: Prometheus text on /metrics, JSON on /healthz, served by aiohttp.

Two kinds of series share one registry per agent: counters the stages bump as events happen
(`AgentMetrics`), and `LiveCollector`, which reads the counters the stages already keep (scheduler
target stats, detector rejects, trap sink failures, spool quarantine) when Prometheus scrapes, so the
hot path never copies them. aiohttp is already the Redfish client's library; its keep-alive timeout is
armed from the moment a connection opens, so a client that never completes a request is cut off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from agent.collect.base import Counted
from agent.collect.scheduler import TargetStats
from agent.collect.syslog.server import SyslogStats
from agent.collect.traps import TrapStats
from shared.buildinfo import build_labels
from shared.logging import UpDown

# `*_created` samples double the exposition for no operational value.
disable_created_metrics()

log = logging.getLogger(__name__)
# aiohttp logs every malformed request with a traceback, so anyone who can reach the port could fill the
# log; bad client input is answered 400 and otherwise ignored, and the handlers catch their own failures.
_http_log = logging.getLogger(__name__ + ".http")
_http_log.setLevel(logging.CRITICAL)

REQUEST_TIMEOUT_S = 5.0


class AgentMetrics:
    """Counters for per-item events; one registry per agent instance."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        Info("outpost_build", "The running agent's version", registry=r).info(build_labels("agent"))
        self.samples = Counter("outpost_agent_samples", "Samples collected", ["target"], registry=r)
        self.collect_errors = Counter(
            "outpost_agent_collect_errors", "Polls with errors", ["target"], registry=r
        )
        self.batches = Counter("outpost_agent_batches", "Batches by delivery result", ["result"], registry=r)
        self.points_sent = Counter("outpost_agent_points_sent", "Points acknowledged by the hub", registry=r)
        self.dropped = Counter(
            "outpost_agent_dropped_batches", "Batches dropped", ["class", "reason"], registry=r
        )
        self.outbox_pending = Gauge(
            "outpost_agent_outbox_pending", "Envelopes waiting for the hub", registry=r
        )
        self.hub_connected = Gauge(
            "outpost_agent_hub_connected", "1 when the last send succeeded", registry=r
        )
        self.internal_errors = Counter(
            "outpost_agent_internal_errors", "Failures caught inside a running stage", ["stage"], registry=r
        )
        self.anomaly_events = Counter("outpost_agent_anomaly_events", "Anomaly onsets emitted", registry=r)
        self.spool_bytes = Gauge(
            "outpost_agent_spool_bytes", "Bytes of batches waiting in the spool", registry=r
        )
        self.spool_oldest_age = Gauge(
            "outpost_agent_spool_oldest_age_seconds", "Age of the oldest batch in the spool", registry=r
        )
        self.backfill_bytes = Gauge(
            "outpost_agent_backfill_bytes", "Spooled bytes still to replay in the backfill lane", registry=r
        )
        self.backfill_progress = Gauge(
            "outpost_agent_backfill_progress", "Share of the current backfill delivered (0..1)", registry=r
        )


class _Scorer(Protocol):
    def rejected_points(self) -> dict[str, int]: ...


@dataclass(frozen=True, slots=True)
class LiveSources:
    """The live objects whose own counters are read at scrape time (the agent's stages, not copies)."""

    targets: Mapping[str, TargetStats]
    traps: TrapStats
    scorer: _Scorer
    spool_quarantined_segments: Callable[[], int]
    spool_skipped_records: Callable[[], int]
    collectors: Sequence[object] = ()  # those that are `Counted` export their per-item counters
    syslog: SyslogStats | None = None


class LiveCollector:
    """A prometheus_client custom collector: `collect()` runs on each scrape and reads `LiveSources`."""

    def __init__(self, sources: LiveSources) -> None:
        self._s = sources

    def collect(self) -> Iterable[Metric]:
        s = self._s
        up = GaugeMetricFamily(
            "outpost_agent_target_up", "1 while the target answers polls", labels=["target"]
        )
        duration = GaugeMetricFamily(
            "outpost_agent_poll_duration_seconds", "Duration of the target's last poll", labels=["target"]
        )
        lateness = GaugeMetricFamily(
            "outpost_agent_poll_lateness_seconds", "Lateness of the target's last poll", labels=["target"]
        )
        polls = CounterMetricFamily("outpost_agent_polls", "Polls started", labels=["target"])
        timeouts = CounterMetricFamily(
            "outpost_agent_collect_timeouts", "Polls cut off at their deadline", labels=["target"]
        )
        for target, t in list(s.targets.items()):
            up.add_metric([target], 1.0 if t.up else 0.0)
            duration.add_metric([target], t.last_duration_s)
            lateness.add_metric([target], t.lateness_s)
            polls.add_metric([target], t.polls)
            timeouts.add_metric([target], t.timeouts)
        yield from (up, duration, lateness, polls, timeouts)
        rejected = CounterMetricFamily(
            "outpost_agent_detect_rejected_points",
            "Points the edge detectors refused (NaN, inf, wrong kind); logged once per kind",
            labels=["target"],
        )
        for target, n in s.scorer.rejected_points().items():
            rejected.add_metric([target], n)
        yield rejected
        yield CounterMetricFamily(
            "outpost_agent_traps_received", "SNMP traps received", value=s.traps.received
        )
        yield CounterMetricFamily(
            "outpost_agent_trap_sink_failures",
            "Traps lost because handing them on failed (logged when it starts and stops)",
            value=s.traps.sink_failures,
        )
        items = CounterMetricFamily(
            "outpost_agent_collect_item_events",
            "Per-item events of polls (Redfish: bad, malformed, missing documents, duplicate readings...)",
            labels=["target", "event"],
        )
        for c in s.collectors:
            if isinstance(c, Counted):
                for event, n in c.counters().items():
                    items.add_metric([c.target, event], n)
        yield items
        if s.syslog is not None:
            yield from _syslog_metrics(s.syslog)
        yield CounterMetricFamily(
            "outpost_agent_spool_quarantined_segments",
            "Damaged spool segments set aside since start (their valid records were salvaged)",
            value=s.spool_quarantined_segments(),
        )
        yield CounterMetricFamily(
            "outpost_agent_spool_skipped_records",
            "Damaged spool records skipped on start (the records around them were kept)",
            value=s.spool_skipped_records(),
        )


def _labelled(name: str, doc: str, label: str, counts: Mapping[str, int]) -> CounterMetricFamily:
    """A counter family with one sample per key of `counts`."""
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, n in counts.items():
        family.add_metric([key], n)
    return family


def _syslog_metrics(st: SyslogStats) -> Iterable[Metric]:
    yield _labelled(
        "outpost_agent_syslog_messages_received", "Syslog messages received", "transport", st.received
    )
    yield _labelled(
        "outpost_agent_syslog_messages_dropped",
        "Syslog messages dropped (rate_limited: sender over its limit; queue_full: batcher behind)",
        "reason",
        st.dropped,
    )
    yield _labelled(
        "outpost_agent_syslog_connections_refused",
        "Syslog TCP/TLS connections refused (max_connections, tls_handshake)",
        "reason",
        st.refused_connections,
    )
    yield _labelled(
        "outpost_agent_syslog_connections_closed",
        "Syslog connections the agent closed (idle, framing_error)",
        "reason",
        st.closed_connections,
    )
    yield CounterMetricFamily(
        "outpost_agent_syslog_messages_truncated",
        "Syslog messages cut at max_message_bytes",
        value=st.truncated,
    )
    yield GaugeMetricFamily(
        "outpost_agent_syslog_connections_open", "Syslog TCP/TLS connections open", value=st.open_connections
    )


class TelemetryServer:
    """Serves /metrics and /healthz; `health()` supplies the JSON body (503 when it lists dead stages)."""

    def __init__(
        self,
        listen: str,
        metrics: AgentMetrics,
        health: Callable[[], dict[str, Any]],
        *,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        """`timeout_s` closes a connection that sends no complete request (or none after the last) in time."""
        self._host, port = listen.rsplit(":", 1)
        self._port = int(port)
        self._metrics = metrics
        self._health = health
        self._timeout_s = timeout_s
        self._health_probe = UpDown(log, "health report")
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    @property
    def port(self) -> int:
        if self._runner is not None and self._runner.addresses:
            return int(self._runner.addresses[0][1])
        return self._port

    async def start(self) -> None:
        # Both endpoints are GETs: a body has no business being larger than a request line.
        app = web.Application(client_max_size=4096)
        app.router.add_get("/metrics", self._serve_metrics)
        app.router.add_get("/healthz", self._serve_health)
        runner = web.AppRunner(
            app, access_log=None, logger=_http_log, keepalive_timeout=self._timeout_s, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner, self._site = runner, site
        log.info("agent telemetry on http://%s:%d/metrics", self._host, self.port)

    async def _serve_metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self._metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _serve_health(self, request: web.Request) -> web.Response:
        try:
            body = self._health()
        except Exception as exc:  # a bug in a health probe must not look like a healthy agent
            self._health_probe.down(f"{type(exc).__name__}: {exc}", logging.ERROR, exc_info=True)
            return web.json_response({"status": "error", "error": type(exc).__name__}, status=500)
        self._health_probe.up()
        return web.json_response(body, status=503 if body.get("dead_stages") else 200)

    async def aclose(self) -> None:
        """Safe without start and safe twice."""
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = self._site = None
