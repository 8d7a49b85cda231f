"""The hub's own counters, exported on /metrics in Prometheus text format.

Per-item events (batches, points, rejects) are counters here, never log lines.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from shared.buildinfo import build_labels

# `*_created` samples double the exposition for no operational value.
disable_created_metrics()


class HubMetrics:
    """One registry per hub process (tests run several hubs in one interpreter)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        Info("outpost_build", "The running hub's version", registry=r).info(build_labels("hub"))
        # result="duplicate" counts the hub state's batch-id decisions (hub/fleet/agents.py record_batch), the
        # same events as `duplicates` on /api/v1/agents (which also sums restarts and hubs sharing a DB).
        self.batches = Counter(
            "outpost_hub_ingest_batches",
            "Batches received, by result (stored: counted as new by the hub state; duplicate: seen before)",
            ["transport", "result"],
            registry=r,
        )
        self.points = Counter("outpost_hub_ingest_points", "Points stored", ["transport"], registry=r)
        self.rejected = Counter(
            "outpost_hub_ingest_rejected",
            "Envelopes rejected, by reason",
            ["transport", "reason"],
            registry=r,
        )
        self.rejected_points = Counter(
            "outpost_hub_ingest_rejected_points", "Points in rejected envelopes", ["transport"], registry=r
        )
        self.throttled = Counter(
            "outpost_hub_ingest_throttled",
            "Pushes answered with retry_after (overload)",
            ["transport"],
            registry=r,
        )
        self.events = Counter("outpost_hub_ingest_events", "Events stored", ["kind"], registry=r)
        # Webhook deliveries taken (refused ones are `rejected` by reason) and the alert signals they held;
        # their metric points are counted in `points` like every other transport's.
        self.webhook_deliveries = Counter(
            "outpost_hub_webhook_deliveries", "Webhook deliveries accepted", ["transport"], registry=r
        )
        self.webhook_signals = Counter(
            "outpost_hub_webhook_signals",
            "Alert signals in accepted webhook deliveries",
            ["transport"],
            registry=r,
        )
        self.seq_gaps = Gauge("outpost_hub_sequence_gaps", "Batches missing across all agents", registry=r)
        self.state_wal_frames = Gauge(
            "outpost_hub_state_wal_frames",
            "SQLite state database: log frames the last background checkpoint could not copy back yet",
            registry=r,
        )
        self.write_seconds = Histogram(
            "outpost_hub_store_write_seconds",
            "Durable store write latency per batch",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.store_errors = Counter(
            "outpost_hub_store_errors",
            "Store writes that failed (transient: retried by the agent)",
            ["kind"],
            registry=r,
        )
        self.retention_removed = Counter(
            "outpost_hub_retention_removed",
            "Values deleted by retention (raw points and rollup buckets)",
            registry=r,
        )
        self.notifications_pruned = Counter(
            "outpost_hub_notifications_pruned",
            "Sent and dead-lettered notifications deleted by retention",
            registry=r,
        )
        self.api_auth_failures = Counter(
            "outpost_hub_api_auth_failures", "Rejected API credentials", registry=r
        )
