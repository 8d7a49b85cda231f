"""What every rule puts on an alert: the agent, its site, the device."""

from __future__ import annotations


def site_of(agent: str) -> str:
    """Agent identities are `site/name` (from the certificate); the site is the part before the slash."""
    return agent.split("/", 1)[0] if "/" in agent else ""


def base_labels(alertname: str, agent: str, device: str) -> dict[str, str]:
    return {"alertname": alertname, "agent": agent, "site": site_of(agent), "device": device}
