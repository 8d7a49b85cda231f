"""Edge scoring: one DetectorBank per target, so each poll's key tuple is stable and state is per device.

Why per target: a bank skips all per-key work when a poll brings the same keys as the previous one,
which holds for one device's polls but not across devices; and a removed device's state goes with it.
Snapshots live in `<data_dir>/detect/<target>.npz`, restored on start, saved periodically and on stop.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import numpy as np

from shared.detect import DetectConfig, DetectorBank, Observation
from shared.model import CollectResult, SeriesKey

log = logging.getLogger(__name__)


def _file_name(target: str) -> str:
    """A filesystem-safe, collision-free name for a target (names may contain '/', ':' or spaces)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", target)[:80]
    return f"{safe}-{hashlib.blake2b(target.encode(), digest_size=4).hexdigest()}.npz"


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
            bank = DetectorBank.load(self._dir / _file_name(result.target), self._config)
            self._banks[result.target] = bank
        samples = result.samples
        keys = tuple(s.key for s in samples)
        ts = np.fromiter((s.ts_ms for s in samples), dtype=np.int64, count=len(samples))
        values = np.fromiter((s.value for s in samples), dtype=np.float64, count=len(samples))
        if len(set(keys)) == len(keys):
            obs = bank.observe(keys, ts, values, result.limits or None)
        else:
            obs = _observe_in_rounds(bank, keys, ts, values, result)
        try:
            bank.maybe_save(self._dir / _file_name(result.target), monotonic_s)
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
                bank.save(self._dir / _file_name(target))
            except OSError as exc:
                log.warning("could not save detector state of %s: %s", target, exc.strerror)


def _observe_in_rounds(
    bank: DetectorBank, keys: tuple[SeriesKey, ...], ts: np.ndarray, values: np.ndarray, result: CollectResult
) -> Observation:
    """Scores a poll that carries several points of one series (a backlog, a multi-tick source).

    A bank takes one point per series per step, so the k-th point of every series goes into step k, in
    the order the collector produced them; scores are put back in sample order.
    """
    seen: dict[SeriesKey, int] = {}
    rounds: list[list[int]] = []
    for i, key in enumerate(keys):
        k = seen.get(key, 0)
        seen[key] = k + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(i)
    scores = np.zeros(len(keys), dtype=np.float32)
    events = []
    for idx in rounds:
        sel = np.asarray(idx)
        obs = bank.observe(tuple(keys[i] for i in idx), ts[sel], values[sel], result.limits or None)
        scores[sel] = obs.scores
        events.extend(obs.events)
    return Observation(scores, events)
