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
    attrs = dict(msg.attributes)
    annotations = labels_of({"summary": msg.message[:500]})
    if msg.kind == "snmp.trap" and msg.message in _LINK:
        labels = base_labels("LinkDown", msg.agent, msg.device) | {"ifIndex": _if_index(attrs)}
        severity = "critical" if msg.severity == "critical" else "warning"
        return [
            Signal(
                labels_of(labels),
                _LINK[msg.message],
                msg.ts_ms,
                severity,
                annotations,
                "snmp-trap",
                links=(("event", msg.id),),
            )
        ]
    if msg.severity not in ("warning", "critical"):
        return []
    if msg.kind == "redfish.sel":
        labels = base_labels("BmcEvent", msg.agent, msg.device) | {"message": msg.message[:200]}
        return [
            Signal(
                labels_of(labels),
                True,
                msg.ts_ms,
                msg.severity,
                annotations,
                "redfish-sel",
                links=(("event", msg.id),),
                resolve_after_ms=SEL_RESOLVE_AFTER_MS,
            )
        ]
    if msg.kind == "snmp.trap":
        labels = base_labels("SnmpTrap", msg.agent, msg.device) | {"trap": msg.message[:200]}
        return [
            Signal(
                labels_of(labels),
                True,
                msg.ts_ms,
                msg.severity,
                annotations,
                "snmp-trap",
                links=(("event", msg.id),),
                resolve_after_ms=TRAP_RESOLVE_AFTER_MS,
            )
        ]
    return []
