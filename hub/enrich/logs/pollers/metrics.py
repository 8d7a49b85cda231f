"""The log pollers' counters on the hub's /metrics, by poller name (per page and line, never lines)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class PollerMetrics:
    """Registered once per hub process that runs the pollers."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.lines = Counter(
            "outpost_hub_log_poller_lines",
            "Lines a poller handed to the log store",
            ["poller"],
            registry=registry,
        )
        self.duplicates = Counter(
            "outpost_hub_log_poller_duplicates",
            "Events a poller skipped: stored before (window overlap, a page fetched again)",
            ["poller"],
            registry=registry,
        )
        self.pages = Counter(
            "outpost_hub_log_poller_pages",
            "Pages (Datadog) or stored chunks of a stream (Splunk) a poller read",
            ["poller"],
            registry=registry,
        )
        self.errors = Counter(
            "outpost_hub_log_poller_errors",
            "Poller failures by kind (connect, timeout, auth, status, parse, search, store, state: the poll"
            " is retried with backoff; internal: a bug, logged with its traceback, retried; cursor: the"
            " window is read again from its start; malformed, too_long, refused: that event or line is"
            " skipped)",
            ["poller", "kind"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "outpost_hub_log_poller_rate_limited_waits",
            "Waits for the source's rate limit to reset (a 429, or X-RateLimit-Remaining at 0)",
            ["poller"],
            registry=registry,
        )
        self.seen_evicted = Counter(
            "outpost_hub_log_poller_seen_evicted",
            "Event ids forgotten past max_seen_ids (that event could be stored twice if fetched again)",
            ["poller"],
            registry=registry,
        )
