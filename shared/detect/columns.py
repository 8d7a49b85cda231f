"""Per-series state as named numpy columns, one row per series, grown by doubling and compacted on demand.

Why: a Python object per series costs ~70x more per update than a row in a column; every detector and the
gate keep their state here so growth, compaction and snapshots are written once.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Rows = npt.NDArray[np.intp] | slice


@dataclass(frozen=True, slots=True)
class Column:
    """One state column: dtype, per-row shape (() for a scalar) and the value a fresh row starts with."""

    dtype: type[np.generic]
    fill: float = 0.0
    shape: tuple[int, ...] = ()


class Columns:
    """Named arrays sharing a row count; `a[name][rows]` reads and writes state in place."""

    def __init__(self, spec: Mapping[str, Column], capacity: int = 16) -> None:
        self.spec = dict(spec)
        self.n = 0
        self.a: dict[str, np.ndarray] = {
            name: np.full((capacity, *c.shape), c.fill, dtype=c.dtype) for name, c in self.spec.items()
        }

    @property
    def capacity(self) -> int:
        return int(next(iter(self.a.values())).shape[0]) if self.a else 0

    @property
    def row_nbytes(self) -> int:
        """Bytes of state one series costs."""
        return sum(int(np.dtype(c.dtype).itemsize * int(np.prod(c.shape))) for c in self.spec.values())

    def grow(self, count: int) -> npt.NDArray[np.intp]:
        """Appends `count` fresh rows and returns their indices; capacity doubles so growth is amortised."""
        start, end = self.n, self.n + count
        if end > self.capacity:
            cap = max(end, 2 * self.capacity, 16)
            for name, c in self.spec.items():
                new = np.full((cap, *c.shape), c.fill, dtype=c.dtype)
                new[: self.n] = self.a[name][: self.n]
                self.a[name] = new
        self.n = end
        return np.arange(start, end, dtype=np.intp)

    def take(self, keep: npt.NDArray[np.intp]) -> None:
        """Keeps only rows `keep` (in that order) and resets the freed tail to fresh values."""
        k = int(keep.shape[0])
        for name, c in self.spec.items():
            arr = self.a[name]
            arr[:k] = arr[keep]
            arr[k : self.n] = c.fill
        self.n = k

    def export(self) -> dict[str, np.ndarray]:
        """The live rows of every column (copies), for snapshots."""
        return {name: arr[: self.n].copy() for name, arr in self.a.items()}

    def restore(self, arrays: Mapping[str, np.ndarray], added: Collection[str] = ()) -> None:
        """Replaces the state with exported arrays.

        Args:
            added: columns newer than some snapshots; when absent their rows start with fresh values, so
                an upgrade keeps the state instead of relearning every series.

        Raises:
            ValueError: a column is missing or has the wrong dtype or row shape.
        """
        lengths = {int(arrays[name].shape[0]) for name in self.spec if name in arrays}
        missing = sorted(set(self.spec) - set(arrays) - set(added))
        if missing or len(lengths) > 1:
            raise ValueError(f"snapshot columns missing or ragged: {missing or sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        for name, c in self.spec.items():
            if name not in arrays:
                continue
            arr = arrays[name]
            if arr.dtype != np.dtype(c.dtype) or arr.shape[1:] != c.shape:
                raise ValueError(f"snapshot column {name} has {arr.dtype}{arr.shape[1:]}, want {c.shape}")
        self.n = 0
        self.grow(n)
        for name in self.spec:
            if name in arrays:
                self.a[name][:n] = arrays[name]
            else:
                self.a[name][:n] = self.spec[name].fill


class Scratch:
    """Reusable work buffers, so a hot path does not allocate (and page-fault in) fresh arrays per call.

    Why: a fresh 800 KB temporary costs ~0.5 ms of first-touch page faults, ten times the arithmetic on
    it. A buffer returned by `get` is valid until the next `get` of the same name.
    """

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type[np.generic] = np.float64) -> np.ndarray:
        """A buffer of `shape` (contents undefined), reusing the last one of that name when large enough."""
        size = math.prod(shape)
        buf = self._bufs.get(name)
        if buf is None or buf.size < size or buf.dtype != np.dtype(dtype):
            buf = np.empty(max(size, 2 * (buf.size if buf is not None else 0)), dtype=dtype)
            self._bufs[name] = buf
        return buf[:size] if len(shape) == 1 else buf[:size].reshape(shape)
