"""Roles and the named scopes they bundle: what each caller may do is a set of scopes, never a role check.

A route declares the one scope it needs (`hub.api.auth.require`); a role is only a name for a bundle, so
an API key can be narrowed to fewer scopes than its role holds, never more.
"""

from __future__ import annotations

from enum import StrEnum

# Reading: every GET of the v1 API and the OpenAPI document needs one of these.
READ_SCOPES = frozenset(
    {
        "agents:read",
        "series:read",
        "events:read",
        "logs:read",
        "alerts:read",
        "incidents:read",
        "silences:read",
        "maintenance:read",
        "docs:read",
    }
)
# Operating: acknowledging, resolving, silencing, maintenance windows, incidents, external alerts in,
# and metrics pushed by other tools (InfluxDB line protocol).
OPERATE_SCOPES = frozenset(
    {
        "alerts:write",
        "alerts:ingest",
        "ingest:write",
        "incidents:write",
        "silences:write",
        "maintenance:write",
    }
)
# Administering identities, webhook sources (their secrets sign what other tools push), and reading who
# changed what.
ADMIN_SCOPES = frozenset(
    {"users:read", "users:write", "keys:read", "keys:write", "webhooks:read", "webhooks:write", "audit:read"}
)
ALL_SCOPES = READ_SCOPES | OPERATE_SCOPES | ADMIN_SCOPES


class Role(StrEnum):
    """What a user or API key is; ordered from least to most."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.VIEWER: READ_SCOPES,
    Role.OPERATOR: READ_SCOPES | OPERATE_SCOPES,
    Role.ADMIN: ALL_SCOPES,
}


def scopes_of(role: str, narrowed_to: frozenset[str] | None = None) -> frozenset[str]:
    """The scopes a credential holds: its role's bundle, cut down to `narrowed_to` when given.

    An unknown role (a row written by a newer hub) holds nothing rather than failing the request.
    """
    try:
        bundle = ROLE_SCOPES[Role(role)]
    except ValueError:
        return frozenset()
    return bundle if narrowed_to is None else bundle & narrowed_to
