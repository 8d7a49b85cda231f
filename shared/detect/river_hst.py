"""River's HalfSpaceTrees as an opt-in second opinion: the only module that imports river.

River is imported when the first such detector is built, so agents that never configure it do not pay its
~75 MB. It needs features in [0, 1]: each series' value and step are scaled by that series' running
range. Two shapes: one model per series on (value, step), or, with the rule's `group_by` label, one model
per device on the vector of its series' scaled values (a fault that shows only jointly, such as fans
speeding up while the temperature holds, is unusual as a vector though each series alone is not).
River models are Python objects with no format but pickle, so they are not snapshotted: after a
restart these rows learn again; a fresh model scores 0 until its first window fills, so it cannot page
while relearning.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from shared.detect.columns import Column, Columns, Rows
from shared.detect.config import DetectRule
from shared.model import SeriesKey

N_TREES = 10
HEIGHT = 6
SEED = 42


class HalfSpaceTreesDetector:
    """One river `HalfSpaceTrees` per series on (value, step) scaled to [0, 1] by the running range."""

    name: ClassVar[str] = "hst"
    SPEC: ClassVar[dict[str, Column]] = {
        "lo": Column(np.float64, np.inf),
        "hi": Column(np.float64, -np.inf),
        "prev": Column(np.float64, np.nan),
    }

    def __init__(self, rule: DetectRule) -> None:
        import river.anomaly  # optional dependency, imported at first use on purpose

        self._anomaly: Any = river.anomaly
        self.window = max(rule.warmup_points, 10)
        self.columns = Columns(self.SPEC)
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
        self._remember(idx, x, feats)

    def _remember(self, idx: npt.NDArray[np.intp], x: npt.NDArray[np.float64], feats: np.ndarray) -> None:
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


class DeviceHalfSpaceTrees(HalfSpaceTreesDetector):
    """One river `HalfSpaceTrees` per device on the vector of its series' values, each scaled to [0, 1].

    `bind` maps rows to devices by the `group_by` label of their keys (a key without it is a device of
    its own). A device's vector holds the current value of its series in this poll and the last scaled
    value of the others; all its series get the device's score. The model learns a vector only if the gate
    accepted every point of the device in the poll.
    """

    SPEC: ClassVar[dict[str, Column]] = {
        **HalfSpaceTreesDetector.SPEC,
        "last": Column(np.float64, np.nan),  # last scaled value, the series' coordinate between its polls
    }

    def __init__(self, rule: DetectRule) -> None:
        super().__init__(rule)
        self.label = rule.group_by or ""
        self.device_models: dict[str, Any] = {}
        self.devices: list[str] = []  # per row
        self.names: list[str] = []  # per row: the series' feature name in its device's vector
        self.members: dict[str, list[int]] = {}

    def bind(self, keys: list[SeriesKey]) -> None:
        """Assigns row r to the device of `keys[r]`; call whenever rows were added, compacted or restored."""
        self.names = [str(k) for k in keys]
        self.devices = [dict(k.labels).get(self.label, str(k)) for k in keys]
        self.members = {}
        for row, device in enumerate(self.devices):
            self.members.setdefault(device, []).append(row)
        self.device_models = {d: m for d, m in self.device_models.items() if d in self.members}

    def _vectors(
        self, idx: npt.NDArray[np.intp], scaled: npt.NDArray[np.float64]
    ) -> dict[str, dict[str, float]]:
        """The feature vector of every device with a point in this poll."""
        now = dict(zip(idx.tolist(), scaled.tolist(), strict=True))
        last = self.columns.a["last"]
        out: dict[str, dict[str, float]] = {}
        for row in now:
            device = self.devices[row]
            if device in out:
                continue
            vec = {}
            for member in self.members[device]:
                v = now.get(member, float(last[member]))
                if v == v:  # a series not seen yet has no coordinate; HST walks around a missing feature
                    vec[self.names[member]] = v
            out[device] = vec
        return out

    def score_many(
        self, rows: Rows, ts_ms: npt.NDArray[np.int64], x: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        idx, feats = self._features(rows, x)
        per_device = {
            d: float(self.device_models[d].score_one(v)) if d in self.device_models else 0.0
            for d, v in self._vectors(idx, feats[:, 0]).items()
        }
        return np.array([per_device[self.devices[r]] for r in idx.tolist()], dtype=np.float64)

    def learn_many(
        self,
        rows: Rows,
        ts_ms: npt.NDArray[np.int64],
        x: npt.NDArray[np.float64],
        accept: npt.NDArray[np.bool_],
    ) -> None:
        idx, feats = self._features(rows, x)
        rejected = {self.devices[r] for r, ok in zip(idx.tolist(), accept.tolist(), strict=True) if not ok}
        for device, vec in self._vectors(idx, feats[:, 0]).items():
            if device not in rejected:
                model = self.device_models.get(device)
                if model is None:
                    model = self.device_models[device] = self._new_model()
                model.learn_one(vec)
        self._remember(idx, x, feats)

    def _remember(self, idx: npt.NDArray[np.intp], x: npt.NDArray[np.float64], feats: np.ndarray) -> None:
        super()._remember(idx, x, feats)
        self.columns.a["last"][idx] = feats[:, 0]

    def grow(self, count: int) -> None:
        self.columns.grow(count)

    def take(self, keep: npt.NDArray[np.intp]) -> None:
        self.columns.take(keep)

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.columns.restore(arrays)
        self.device_models = {}
