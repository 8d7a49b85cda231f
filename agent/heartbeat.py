"""What an agent's heartbeat says: version, interval, spool depth, certificate expiry, per-target state.

The hub calls an agent offline after 3 missed heartbeat intervals (capped at 45 s), and shows from the
heartbeat which devices the agent can reach and when its certificate runs out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509

from agent.collect.scheduler import TargetStats
from shared.buildinfo import version
from shared.model import Heartbeat, TargetState


class CertExpiry:
    """The client certificate's not_after in unix ms, re-read only when the file changes (renewal)."""

    def __init__(self, cert_file: Path) -> None:
        self._path = cert_file
        self._stamp: tuple[int, int] | None = None
        self._not_after_ms = 0

    def not_after_ms(self) -> int:
        """0 when the file cannot be read or parsed (the heartbeat still goes out)."""
        try:
            st = os.stat(self._path)
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                cert = x509.load_pem_x509_certificate(self._path.read_bytes())
                self._not_after_ms = int(cert.not_valid_after_utc.timestamp() * 1000)
                self._stamp = stamp
        except (OSError, ValueError):
            self._stamp, self._not_after_ms = None, 0
        return self._not_after_ms


def build_heartbeat(
    now_ms: int,
    interval_s: float,
    spool_records: int,
    spool_bytes: int,
    cert_not_after_ms: int,
    targets: Mapping[str, TargetStats],
) -> Heartbeat:
    """The heartbeat for this moment; targets sorted by name so equal states encode equally."""
    states = tuple(
        TargetState(name, stats.up, int(stats.last_duration_s * 1000))
        for name, stats in sorted(targets.items())
    )
    return Heartbeat(
        now_ms, version(), int(interval_s * 1000), spool_records, spool_bytes, cert_not_after_ms, states
    )
