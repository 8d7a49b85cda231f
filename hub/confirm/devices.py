"""Each device's context model: loaded from disk or fitted from the store, refitted when stale, and the
verdicts of that device's onsets from it.

Blocking (store reads, fits); the confirmation job calls it from one worker thread at a time.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hub.bus.messages import AnomalyReported
from hub.confirm import features, iforest, state
from hub.confirm.config import ConfirmConfig
from hub.confirm.history import read_history, series_name
from hub.confirm.verdict import UNSCORED, Judgement, judge
from hub.store.base import Store

log = logging.getLogger(__name__)

DeviceKey = tuple[str, str]  # (agent, device)
# A device found with too little history is looked at again after this long at the earliest.
RETRY_MS = 600_000


@dataclass(slots=True)
class _Entry:
    model: state.SavedModel | None
    next_fit_ms: int  # refit (or first fit) due


class DeviceModels:
    """Models by device, in memory and (with `model_dir`) one file each on disk."""

    def __init__(self, config: ConfirmConfig, store: Store, model_dir: Path | None) -> None:
        self._config = config
        self._store = store
        self._dir = model_dir
        self._entries: dict[DeviceKey, _Entry] = {}
        self.fits = 0
        self.fit_failures = 0
        self.too_little_history = 0
        self.unreadable_files = 0

    def model(self, key: DeviceKey, now_ms: int) -> state.SavedModel | None:
        """The device's model from memory or its file; None when it has none (yet)."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(self._load(key), now_ms)
            if entry.model is not None:
                entry.next_fit_ms = entry.model.fitted_ms + int(self._config.refit_s * 1000)
        return entry.model

    def fit_due(self, key: DeviceKey, now_ms: int) -> bool:
        entry = self._entries.get(key)
        return entry is None or entry.next_fit_ms <= now_ms

    def stale(self, now_ms: int) -> list[DeviceKey]:
        """Devices whose model (or whose retry after too little history) is due, oldest first."""
        due = [(e.next_fit_ms, k) for k, e in self._entries.items() if e.next_fit_ms <= now_ms]
        return [k for _, k in sorted(due)]

    def fit(self, key: DeviceKey, now_ms: int) -> state.SavedModel | None:
        """Fits the device's forest on its last `history_s` (its own past only) and saves it; None when
        it has too little history (tried again after RETRY_MS) or the fit failed (logged, counted)."""
        cfg = self._config
        entry = self._entries.setdefault(key, _Entry(None, now_ms))
        entry.next_fit_ms = now_ms + int(cfg.refit_s * 1000)
        agent, device = key
        try:
            hist = read_history(
                self._store, agent, device, max(0, now_ms - int(cfg.history_s * 1000)), now_ms, cfg.max_series
            )
            ctx = features.context(hist.series, hist.values, hist.step_ms) if hist is not None else None
            if hist is None or ctx is None or ctx.rows.shape[0] - ctx.ready < cfg.min_rows:
                self.too_little_history += 1
                entry.next_fit_ms = now_ms + min(RETRY_MS, int(cfg.refit_s * 1000))
                return entry.model
            rows = ctx.rows[ctx.ready :]
            forest = iforest.fit(rows, ctx.names, cfg.quantile, seed=_seed(key))
        except (ValueError, OSError) as exc:
            self.fit_failures += 1
            log.warning("confirmation model for %s/%s not fitted: %s", agent, device, exc)
            return entry.model
        self.fits += 1
        entry.model = state.SavedModel(forest, hist.series, hist.step_ms, now_ms, int(rows.shape[0]))
        if self._dir is not None:
            state.save(self._path(key), entry.model)
        return entry.model

    def judge(
        self, key: DeviceKey, model: state.SavedModel, onsets: Sequence[AnomalyReported]
    ) -> list[Judgement]:
        """Verdicts of one device's onsets, from one read of its recent history and one forest pass."""
        agent, device = key
        ts = [o.ts_ms for o in onsets]
        lookback = features.lookback_steps(model.step_ms) * model.step_ms
        hist = read_history(
            self._store, agent, device, max(0, min(ts) - lookback), max(ts), self._config.max_series,
            series=model.series, step_ms=model.step_ms,
        )  # fmt: skip
        columns = {name: k for k, name in enumerate(model.series)}
        unscored = Judgement(UNSCORED, 0.0, ())
        if hist is None:
            return [unscored for _ in onsets]
        known = [series_name(o.metric, o.labels) in columns for o in onsets]
        steps = np.array([hist.column_of(t) for t in ts], dtype=np.intp)
        ctx = features.context(model.series, hist.values, model.step_ms, at=steps)
        judged = iter(judge(model.forest, ctx.rows[np.flatnonzero(known)]))
        return [next(judged) if k else unscored for k in known]

    def _load(self, key: DeviceKey) -> state.SavedModel | None:
        if self._dir is None:
            return None
        path = self._path(key)
        try:
            return state.load(path)
        except FileNotFoundError:
            return None
        except (OSError, state.ModelStateError) as exc:
            self.unreadable_files += 1
            log.warning("confirmation model %s not loaded, refitting: %s", path.name, exc)
            return None

    def _path(self, key: DeviceKey) -> Path:
        assert self._dir is not None
        return self._dir / f"{_digest(key)}.npz"


def _digest(key: DeviceKey) -> str:
    """A file name for any agent and device text (no separators or length from the device itself)."""
    return hashlib.sha256("\0".join(key).encode()).hexdigest()[:32]


def _seed(key: DeviceKey) -> int:
    """The same device always grows the same trees from the same history (reproducible verdicts)."""
    return int(_digest(key)[:8], 16)
