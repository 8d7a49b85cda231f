"""River's HalfSpaceTrees as an opt-in second opinion: the only module that imports river.

River is imported when the first such detector is built, so agents that never configure it do not pay its
~75 MB. It needs features in [0, 1]: each series' value and step are scaled by that series' running
range. River models are Python objects with no format but pickle, so they are not snapshotted: after a
restart these rows learn again; a fresh model scores 0 until its first window fills, so it cannot page
while relearning.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from agent.detect.columns import Column, Columns, Rows
from agent.detect.config import DetectRule

N_TREES = 10
HEIGHT = 6
SEED = 42


class HalfSpaceTreesDetector:
    """One river `HalfSpaceTrees` per series on (value, step) scaled to [0, 1] by the running range."""

    name: ClassVar[str] = "hst"

    def __init__(self, rule: DetectRule) -> None:
        import river.anomaly  # optional dependency, imported at first use on purpose

        self._anomaly: Any = river.anomaly
        self.window = max(rule.warmup_points, 10)
        self.columns = Columns(
            {
                "lo": Column(np.float64, np.inf),
                "hi": Column(np.float64, -np.inf),
                "prev": Column(np.float64, np.nan),
            }
        )
        self.models: list[Any] = []

    def _new_model(self) -> Any:
        return self._anomaly.HalfSpaceTrees(
            n_trees=N_TREES, height=HEIGHT, window_size=self.window, seed=SEED
        )

    def _features(self, rows: Rows, x: npt.NDArray[np.float64]) -> tuple[np.ndarray, np.ndarray]:
        c = self.columns.a
        idx = np.arange(self.columns.n)[rows] if isinstance(rows, slice) else rows
        lo, hi = np.minimum(c["lo"][idx], x), np.maximum(c["hi"][idx], x)
        span = np.maximum(hi - lo, 1e-12)
        prev = c["prev"][idx]
        step = np.where(np.isnan(prev), 0.0, x - prev)
        feats = np.stack([(x - lo) / span, np.clip(0.5 + step / (2 * span), 0.0, 1.0)], axis=1)
        return idx, feats

    def score_many(
        self, rows: Rows, ts_ms: npt.NDArray[np.int64], x: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        idx, feats = self._features(rows, x)
        out = np.empty(idx.shape[0])
        for j, (r, f) in enumerate(zip(idx.tolist(), feats.tolist(), strict=True)):
            out[j] = self.models[r].score_one({"v": f[0], "d": f[1]})
        return out

    def learn_many(
        self,
        rows: Rows,
        ts_ms: npt.NDArray[np.int64],
        x: npt.NDArray[np.float64],
        accept: npt.NDArray[np.bool_],
    ) -> None:
        idx, feats = self._features(rows, x)
        for r, f, ok in zip(idx.tolist(), feats.tolist(), accept.tolist(), strict=True):
            if ok:
                self.models[r].learn_one({"v": f[0], "d": f[1]})
        c = self.columns.a
        c["lo"][idx] = np.minimum(c["lo"][idx], x)
        c["hi"][idx] = np.maximum(c["hi"][idx], x)
        c["prev"][idx] = x

    def grow(self, count: int) -> None:
        self.columns.grow(count)
        self.models.extend(self._new_model() for _ in range(count))

    def take(self, keep: npt.NDArray[np.intp]) -> None:
        self.columns.take(keep)
        self.models = [self.models[i] for i in keep.tolist()]

    def export(self) -> dict[str, np.ndarray]:
        return self.columns.export()

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.columns.restore(arrays)
        self.models = [self._new_model() for _ in range(self.columns.n)]

    @property
    def row_nbytes(self) -> int:
        return self.columns.row_nbytes
