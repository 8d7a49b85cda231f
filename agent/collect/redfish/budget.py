"""What one poll may spend on a system's processors and memory: a request budget, and `$expand` to need less.

A host with 64 DIMM slots is 1 + 64 + 2 x 64 GETs (the collection, each module, its Metrics and its
EnvironmentMetrics); at two requests in flight and a few hundred milliseconds per answer, that alone
would outlast the poll's deadline and starve the chassis' sensors. So those reads draw on a fixed
number of requests per poll, and what the budget does not cover is counted and read on a later poll.
A service that advertises `$expand` in `ProtocolFeaturesSupported.ExpandQuery` answers a whole
collection, its members' Metrics included, in one request instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.collect.redfish.readings import Resource, number, obj

# Two levels: the members, and their Metrics / EnvironmentMetrics. Deeper levels would inline
# assemblies, certificates and the like that nothing here reads.
EXPAND_LEVELS = 2


@dataclass(slots=True)
class Budget:
    """Requests one poll may still make for per-part resources; refusals are counted."""

    left: int
    skipped: int = 0

    def take(self) -> bool:
        """One request, if any are left (else counted as skipped)."""
        if self.left > 0:
            self.left -= 1
            return True
        self.skipped += 1
        return False


def expand_query(root: Resource) -> str:
    """The `$expand` query this service root advertises ("" when none): `.` (no Links) where offered,
    else `*`; with `$levels` when the service takes levels, capped at its MaxLevels."""
    query = obj(obj(root, "ProtocolFeaturesSupported"), "ExpandQuery")
    if query.get("NoLinks") is True:
        symbol = "."
    elif query.get("ExpandAll") is True:
        symbol = "*"
    else:
        return ""
    if query.get("Levels") is not True:
        return f"?$expand={symbol}"
    levels = min(EXPAND_LEVELS, int(number(query.get("MaxLevels")) or 1))
    return f"?$expand={symbol}($levels={max(levels, 1)})"


def inline(ref: object) -> Resource | None:
    """A member or navigation property the service expanded in place, else None (only a link)."""
    if isinstance(ref, dict) and any(not str(k).startswith("@odata.") for k in ref):
        return ref
    return None
