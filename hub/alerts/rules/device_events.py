"""Device events → alerts: SNMP link traps (linkDown fires, linkUp resolves), Redfish SEL entries by
severity (they never end by themselves: resolved after a timeout), and any warning or critical trap."""

from __future__ import annotations

from hub.alerts.model import Signal, labels_of
from hub.alerts.rules.common import base_labels
from hub.bus.messages import DeviceEvent

# IF-MIB ifIndex as it arrives in linkDown/linkUp varbinds (ifIndex.N = N).
IF_INDEX_OID = "1.3.6.1.2.1.2.2.1.1"
SEL_RESOLVE_AFTER_MS = 24 * 3600 * 1000
TRAP_RESOLVE_AFTER_MS = 3600 * 1000
_LINK = {"linkDown": True, "linkUp": False}


def _if_index(attributes: dict[str, str]) -> str:
    for oid, value in attributes.items():
        if oid.startswith(IF_INDEX_OID + "."):
            return value
    return ""


def signals(msg: DeviceEvent) -> list[Signal]:
    if msg.kind == "snmp.trap" and msg.message in _LINK:
        labels = base_labels("LinkDown", msg.agent, msg.device) | {"ifIndex": _if_index(dict(msg.attributes))}
        severity = "critical" if msg.severity == "critical" else "warning"
        return [_signal(msg, labels, _LINK[msg.message], severity, "snmp-trap")]
    if msg.severity not in ("warning", "critical"):
        return []
    if msg.kind == "redfish.sel":
        labels = base_labels("BmcEvent", msg.agent, msg.device) | {"message": msg.message[:200]}
        return [_signal(msg, labels, True, msg.severity, "redfish-sel", SEL_RESOLVE_AFTER_MS)]
    if msg.kind == "snmp.trap":
        labels = base_labels("SnmpTrap", msg.agent, msg.device) | {"trap": msg.message[:200]}
        return [_signal(msg, labels, True, msg.severity, "snmp-trap", TRAP_RESOLVE_AFTER_MS)]
    return []


def _signal(
    msg: DeviceEvent,
    labels: dict[str, str],
    firing: bool,
    severity: str,
    source: str,
    resolve_after_ms: int | None = None,
) -> Signal:
    """The event's signal: its message as the summary, linked to the event it came from."""
    return Signal(
        labels_of(labels),
        firing,
        msg.ts_ms,
        severity,
        labels_of({"summary": msg.message[:500]}),
        source,
        links=(("event", msg.id),),
        resolve_after_ms=resolve_after_ms,
    )
