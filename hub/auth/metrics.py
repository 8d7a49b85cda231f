"""The auth package's counters on the hub's registry: logins, refreshes, refusals and rate limiting."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class AuthMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.logins = Counter(
            "outpost_hub_auth_logins",
            "Login attempts by outcome (ok, failed, limited)",
            ["outcome"],
            registry=registry,
        )
        self.refreshes = Counter(
            "outpost_hub_auth_refreshes",
            "Refresh-token presentations by outcome (rotated, unknown, reused, ended)",
            ["outcome"],
            registry=registry,
        )
        self.forbidden = Counter(
            "outpost_hub_api_forbidden",
            "Authenticated requests refused for a missing scope",
            ["scope"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "outpost_hub_api_rate_limited",
            "Requests answered 429, by route group and what was limited (ip, principal, user)",
            ["group", "by"],
            registry=registry,
        )
