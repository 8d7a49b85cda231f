"""Sanity bounds per unit: a value outside them is a device quirk (a sentinel the MIB does not document,
a reading in 0.1 V where volts were promised, a 32-bit overflow), not a reading.

The collector counts what it rejects (`snmp_readings_rejected_total{reason}`) and stores none of it. A
profile metric may give its own `valid` range where the unit's is too wide or too narrow.
"""

from __future__ import annotations

from enum import Enum

# (low, high), inclusive, after scaling. Wide enough for any real device of the kind: a DC plant reports
# -48 V, a UPS overload 150 %, the fastest Ethernet port 800 Gb/s.
UNIT_BOUNDS: dict[str, tuple[float, float]] = {
    "celsius": (-60.0, 200.0),
    "percent": (0.0, 100.0),
    "volts": (-1000.0, 1000.0),
    "amperes": (-2000.0, 2000.0),
    "watts": (0.0, 10_000_000.0),
    "kWh": (0.0, 1e10),
    "rpm": (0.0, 100_000.0),
    "hertz": (0.0, 1e10),
    "seconds": (0.0, 1e10),
    "bytes": (0.0, 1e18),
    "bits/s": (0.0, 1.6e12),
    "bytes/s": (0.0, 2e11),
    "packets/s": (0.0, 2e9),
}


class Rejection(Enum):
    """Why a raw value was not stored: the label value of `snmp_readings_rejected_total`."""

    SENTINEL = "sentinel"
    OUT_OF_RANGE = "out_of_range"
    INCONSISTENT = "inconsistent"


def in_bounds(value: float, unit: str, valid: tuple[float, float] | None) -> bool:
    """Whether `value` (already scaled) is plausible for its unit; finite values only."""
    if value != value or value in (float("inf"), float("-inf")):
        return False
    low, high = valid or UNIT_BOUNDS.get(unit, (float("-inf"), float("inf")))
    return low <= value <= high
