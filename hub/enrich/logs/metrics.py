"""The log store's counters on the hub's /metrics (per line and per prune, never log lines)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class LogMetrics:
    """Registered once per hub process, on its registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.stored = Counter("outpost_hub_logs_stored", "Log lines stored", registry=registry)
        self.duplicate = Counter(
            "outpost_hub_logs_duplicate", "Log lines of re-sent batches, stored before", registry=registry
        )
        self.rejected = Counter(
            "outpost_hub_logs_rejected",
            "Log lines not stored, by reason (field: a value out of range; refused: the database refused"
            " the batch for good)",
            ["reason"],
            registry=registry,
        )
        self.truncated = Counter(
            "outpost_hub_logs_truncated", "Log lines stored cut to logs.max_message_chars", registry=registry
        )
        self.pruned = Counter(
            "outpost_hub_logs_pruned",
            "Log lines deleted by retention, by reason (age: past retention_days; rows: beyond max_rows)",
            ["reason"],
            registry=registry,
        )
        self.template_points = Counter(
            "outpost_hub_logs_template_points",
            "log_template_count points written into the series store",
            registry=registry,
        )
        self.template_minutes_dropped = Counter(
            "outpost_hub_logs_template_minutes_dropped",
            "Minutes of lines left uncounted in log_template_count: too many waiting to be counted",
            registry=registry,
        )
        self.template_series_capped = Counter(
            "outpost_hub_logs_template_series_capped",
            "log_template_count points not written: a new series past logs.max_template_series",
            registry=registry,
        )
