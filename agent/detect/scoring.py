"""Edge scoring: one DetectorBank per target, so each poll's key tuple is stable and state is per device.

Why per target: a bank skips all per-key work when a poll brings the same keys as the previous one,
which holds for one device's polls but not across devices; and a removed device's state goes with it.
Snapshots live in `<data_dir>/detect/<target>.npz`, restored on start, saved periodically and on stop.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from shared.detect import DetectConfig, DetectorBank, Observation
from shared.detect.snapshot import file_name
from shared.model import CollectResult

log = logging.getLogger(__name__)


class EdgeScorer:
    """Scores every sample of a poll and returns the scores plus any anomaly onsets."""

    def __init__(self, config: DetectConfig, state_dir: Path) -> None:
        self._config = config
        self._dir = state_dir
        self._banks: dict[str, DetectorBank] = {}

    def score(self, result: CollectResult, monotonic_s: float) -> Observation:
        bank = self._banks.get(result.target)
        if bank is None:
            self._dir.mkdir(parents=True, exist_ok=True)
            bank = DetectorBank.load(self._dir / file_name(result.target), self._config)
            self._banks[result.target] = bank
        samples = result.samples
        keys = tuple(s.key for s in samples)
        ts = np.fromiter((s.ts_ms for s in samples), dtype=np.int64, count=len(samples))
        values = np.fromiter((s.value for s in samples), dtype=np.float64, count=len(samples))
        obs = bank.observe_rounds(keys, ts, values, result.limits or None)
        try:
            bank.maybe_save(self._dir / file_name(result.target), monotonic_s)
        except OSError as exc:  # a full disk costs the snapshot, never the poll; the next interval retries
            log.warning("could not save detector state of %s: %s", result.target, exc.strerror)
        return obs

    def states(self) -> dict[str, int]:
        """Series per detector state (learning/active/stale) across all targets."""
        total: dict[str, int] = {}
        for bank in self._banks.values():
            for state, n in bank.states().items():
                total[state] = total.get(state, 0) + n
        return total

    def rejected_points(self) -> dict[str, int]:
        """Points each target's bank refused (NaN, inf, wrong kind) since start, for the agent's metrics."""
        return {target: bank.rejected_points for target, bank in list(self._banks.items())}

    def save_all(self) -> None:
        for target, bank in self._banks.items():
            try:
                bank.save(self._dir / file_name(target))
            except OSError as exc:
                log.warning("could not save detector state of %s: %s", target, exc.strerror)
