"""The auth package's counters on the hub's registry: logins, refreshes, refusals and rate limiting."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from hub.auth.principal import PrincipalKind

AUTH_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)


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
        self.seconds = Histogram(
            "outpost_hub_api_auth_seconds",
            "Time an API request spent in authentication (rate limits, credential check), by kind",
            ["kind"],
            buckets=AUTH_BUCKETS,
            registry=registry,
        )
        # Bound once: `.labels()` hashes and locks on every call, and this is observed on every request.
        self.seconds_by_kind = {kind: self.seconds.labels(kind.value) for kind in PrincipalKind}
        self.audit_failures = Counter(
            "outpost_hub_audit_write_failures",
            "Changes made through the API whose audit entry could not be written (the database failed)",
            registry=registry,
        )
