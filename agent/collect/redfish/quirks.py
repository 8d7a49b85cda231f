"""Vendor workarounds, each a named opt-in (`quirks: [ilo4-thermal]`), applied here and nowhere else.

Every quirk names the firmware that needs it. Resource quirks rewrite the vendor's resource into the
standard shape before the collector reads it, so the collector itself stays vendor-neutral; the one
login quirk picks how the session authenticates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

Resource = dict[str, Any]


def _ilo4_thermal(thermal: Resource) -> Resource:
    """HPE iLO 4 (firmware 2.x) predates Thermal 1.1: fans carry `FanName`/`CurrentReading` with
    `Units: "Percent"`, temperatures carry `CurrentReading` instead of `ReadingCelsius`."""
    fans = []
    for fan in thermal.get("Fans", []):
        fan = dict(fan)
        fan.setdefault("Name", fan.get("FanName"))
        fan.setdefault("Reading", fan.get("CurrentReading"))
        fan.setdefault("ReadingUnits", fan.get("Units"))
        fans.append(fan)
    temps = []
    for t in thermal.get("Temperatures", []):
        t = dict(t)
        t.setdefault("ReadingCelsius", t.get("CurrentReading"))
        temps.append(t)
    return {**thermal, "Fans": fans, "Temperatures": temps}


# quirk name -> (resource kind it rewrites, rewrite)
QUIRKS: dict[str, tuple[str, Callable[[Resource], Resource]]] = {
    "ilo4-thermal": ("Thermal", _ilo4_thermal),
}


def apply(kind: str, resource: Resource, enabled: Sequence[str]) -> Resource:
    """Runs every enabled quirk that rewrites resources of `kind` ("Thermal", "Power", ...)."""
    for name in enabled:
        target, rewrite = QUIRKS.get(name, ("", None))
        if target == kind and rewrite is not None:
            resource = rewrite(resource)
    return resource


def login_method(enabled: Sequence[str]) -> Literal["basic", "session"]:
    """`no-sessions`: BMCs whose SessionService is missing or refuses to create sessions (sushy-tools'
    emulator 2.x has none; some older BMC firmware lists it but answers POST with an error) get HTTP
    basic auth on every request instead of one session token."""
    return "basic" if "no-sessions" in enabled else "session"
