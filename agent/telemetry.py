"""The agent's own health and metrics: Prometheus text on /metrics, JSON on /healthz.

A deliberately tiny HTTP server on asyncio streams: an agent on a jump host should not pull a web
framework for two read-only endpoints.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)

# `*_created` samples double the exposition for no operational value.
disable_created_metrics()

log = logging.getLogger(__name__)


class AgentMetrics:
    """Counters for per-item events; one registry per agent instance."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.samples = Counter("outpost_agent_samples", "Samples collected", ["target"], registry=r)
        self.collect_errors = Counter(
            "outpost_agent_collect_errors", "Polls with errors", ["target"], registry=r
        )
        self.collect_timeouts = Counter(
            "outpost_agent_collect_timeouts", "Polls cancelled at their deadline", ["target"], registry=r
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


class TelemetryServer:
    """Serves /metrics and /healthz; `health()` supplies the JSON body."""

    def __init__(self, listen: str, metrics: AgentMetrics, health: Callable[[], dict[str, Any]]) -> None:
        self._host, port = listen.rsplit(":", 1)
        self._port = int(port)
        self._metrics = metrics
        self._health = health
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)
        log.info("agent telemetry on http://%s:%d/metrics", self._host, self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request_line.decode("latin-1").split()
            path = parts[1].split("?", 1)[0] if len(parts) >= 2 else ""
            if path == "/metrics":
                status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, generate_latest(self._metrics.registry)
            elif path == "/healthz":
                status, ctype, body = "200 OK", "application/json", json.dumps(self._health()).encode()
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"not found\n"
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass
        finally:
            writer.close()

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
