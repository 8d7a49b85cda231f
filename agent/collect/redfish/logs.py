"""Log services (the system's SEL, the manager's own BMC log) as events: only entries not seen before.

The first read of a log is history from before we watched: remembered, not announced. Each log remembers
at most MAX_REMEMBERED entry ids (oldest forgotten first), so a BMC that never clears its log cannot
grow the agent's memory; a forgotten id would only come back if the BMC listed it again.
"""

from __future__ import annotations

from agent.collect.redfish.readings import Resource
from shared.model import Event, Severity

SEVERITY = {"OK": Severity.INFO, "Warning": Severity.WARNING, "Critical": Severity.CRITICAL}
ATTRIBUTES = ("Id", "Created", "EntryType", "SensorType", "MessageId")
MAX_REMEMBERED = 10_000


class LogWatch:
    """Which entries of each log (keyed by its Entries path) this collector has already seen."""

    def __init__(self, max_remembered: int = MAX_REMEMBERED) -> None:
        self._max = max_remembered
        self._seen: dict[str, dict[str, None]] = {}

    def known(self, entries_path: str) -> bool:
        """True once a log has been read (its entries from then on are news)."""
        return entries_path in self._seen

    def news(
        self,
        entries_path: str,
        entries: list[Resource],
        announce: bool,
        now_ms: int,
        source: str,
        log_id: str,
    ) -> list[Event]:
        """Remembers `entries`; returns events for the ones not seen before when `announce`."""
        seen = self._seen.setdefault(entries_path, {})
        out: list[Event] = []
        for entry in entries:
            entry_id = str(entry.get("Id") or entry.get("@odata.id") or "")
            if not entry_id or entry_id in seen:
                continue
            seen[entry_id] = None
            if len(seen) > self._max:
                del seen[next(iter(seen))]
            if not announce:
                continue
            severity = SEVERITY.get(str(entry.get("Severity")), Severity.INFO)
            attrs = {k: str(entry[k]) for k in ATTRIBUTES if entry.get(k) is not None}
            attrs["log"] = log_id
            message = str(entry.get("Message", ""))
            out.append(Event.of(now_ms, "redfish.sel", severity, source, message, attrs))
        return out
