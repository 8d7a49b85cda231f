"""All series that share one rule: their detector(s), gate, score shaping and keys, row-aligned."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from shared.detect.columns import Rows
from shared.detect.config import DetectRule
from shared.detect.detectors import DETECTORS, Detector
from shared.detect.gate import ADDED_COLUMNS, Gate, Verdict
from shared.detect.refractory import Refractory
from shared.detect.river_hst import DeviceHalfSpaceTrees
from shared.model import SeriesKey


class Group:
    """Row r of every component belongs to `keys[r]`; rows are appended, and compacted by `take`."""

    def __init__(self, rule: DetectRule) -> None:
        self.rule = rule
        self.detector = _build(rule.detector, rule)
        self.second = _build(rule.second_opinion, rule) if rule.second_opinion else None
        self.gate = Gate(rule)
        self.refractory = Refractory(rule.refractory_points)
        self.keys: list[SeriesKey] = []

    @property
    def label(self) -> str:
        """Detector name(s) as shown in event attributes."""
        return self.rule.detector + (f"+{self.rule.second_opinion}" if self.rule.second_opinion else "")

    def _parts(self) -> list[Detector]:
        return [self.detector] if self.second is None else [self.detector, self.second]

    def add(self, keys: list[SeriesKey]) -> npt.NDArray[np.intp]:
        """Appends fresh rows for new series and returns their row indices."""
        start = len(self.keys)
        self.keys.extend(keys)
        for part in self._parts():
            part.grow(len(keys))
        self.gate.columns.grow(len(keys))
        self.refractory.columns.grow(len(keys))
        self._bind()
        return np.arange(start, start + len(keys), dtype=np.intp)

    def take(self, keep: npt.NDArray[np.intp]) -> None:
        """Keeps only rows `keep`, in that order."""
        for part in self._parts():
            part.take(keep)
        self.gate.columns.take(keep)
        self.refractory.columns.take(keep)
        self.keys = [self.keys[i] for i in keep.tolist()]
        self._bind()

    def _bind(self) -> None:
        """Tells device-level detectors which device each row now belongs to."""
        for part in self._parts():
            if isinstance(part, DeviceHalfSpaceTrees):
                part.bind(self.keys)

    def step(
        self, rows: Rows, ts_ms: npt.NDArray[np.int64], x: npt.NDArray[np.float64]
    ) -> tuple[np.ndarray, np.ndarray, Verdict]:
        """Scores, judges, then learns one point per row (score-then-learn, River's order).

        Returns:
            The raw scores (what the gate judged), the reported scores (refractory-shaped) and the verdict.
        """
        scores = self.detector.score_many(rows, ts_ms, x)
        if self.second is not None:
            scores = 0.5 * (scores + self.second.score_many(rows, ts_ms, x))
        verdict = self.gate.judge(rows, ts_ms, x, scores)
        reported = self.refractory.shape(rows, scores)
        for part in self._parts():
            part.learn_many(rows, ts_ms, x, verdict.accept)
        return scores, reported, verdict

    def export(self) -> dict[str, np.ndarray]:
        """Every column of every component, named `<component>.<column>`."""
        out = {f"gate.{k}": v for k, v in self.gate.columns.export().items()}
        out.update({f"refr.{k}": v for k, v in self.refractory.columns.export().items()})
        out.update({f"det.{k}": v for k, v in self.detector.export().items()})
        if self.second is not None:
            out.update({f"second.{k}": v for k, v in self.second.export().items()})
        return out

    def restore(self, keys: list[SeriesKey], arrays: dict[str, np.ndarray]) -> None:
        """Inverse of `export`.

        Raises:
            ValueError: the arrays do not fit this rule's components or the number of keys.
        """
        parts: dict[str, Callable[[dict[str, np.ndarray]], None]] = {
            "gate": functools.partial(self.gate.columns.restore, added=ADDED_COLUMNS),
            "refr": self.refractory.columns.restore,
            "det": self.detector.restore,
        }
        if self.second is not None:
            parts["second"] = self.second.restore
        for prefix, restore in parts.items():
            sub = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.split(".", 1)[0] == prefix}
            restore(sub)
        if self.gate.columns.n != len(keys):
            raise ValueError(f"snapshot has {self.gate.columns.n} rows for {len(keys)} keys")
        self.keys = list(keys)
        self._bind()

    @property
    def row_nbytes(self) -> int:
        own = self.gate.columns.row_nbytes + self.refractory.row_nbytes
        return own + sum(p.row_nbytes for p in self._parts())


def _build(name: str, rule: DetectRule) -> Detector:
    """The rule's detector called `name`; hst with `group_by` is the device-vector variant."""
    if name == "hst" and rule.group_by is not None:
        return DeviceHalfSpaceTrees(rule)
    return DETECTORS[name](rule)
