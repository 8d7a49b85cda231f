"""The saved form of a device's forest: node arrays in an .npz with a JSON header, never pickle.

One file per model key, written atomically and 0600 (it describes what is normal for a device). The
header names the format and its version, the feature columns, when and on how many rows it was fitted;
`load` checks the version, every array's dtype and shape, and that every child index and split column is
in range, so a corrupt or foreign file is a `ModelStateError`, never a crash while scoring.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hub.confirm.iforest import LEAF, Forest

FORMAT = "outpost.confirm.iforest"
VERSION = 1
MAX_FILE_BYTES = 64 * 1024 * 1024
_INT_ARRAYS = ("roots", "left", "right", "feature")
_FLOAT_ARRAYS = ("split", "samples")
_ENVELOPE_ARRAYS = ("low", "high")


class ModelStateError(ValueError):
    """Raised by `load`/`decode` for a file that is not a model this version can read (the message says
    what is wrong; the caller refits)."""


@dataclass(frozen=True, slots=True)
class SavedModel:
    """A device's forest with what the header says about it: the series of its context (in column
    order), the grid step they were read on, when and on how many rows it was fitted."""

    forest: Forest
    series: tuple[str, ...]
    step_ms: int
    fitted_ms: int
    rows: int


def encode(model: SavedModel) -> bytes:
    """The .npz bytes of `model`."""
    f = model.forest
    header = {
        "format": FORMAT,
        "version": VERSION,
        "features": list(f.features),
        "max_samples": f.max_samples,
        "max_depth": f.max_depth,
        "threshold": f.threshold,
        "series": list(model.series),
        "step_ms": model.step_ms,
        "fitted_ms": model.fitted_ms,
        "rows": model.rows,
    }
    buf = io.BytesIO()
    arrays = {name: getattr(f, name) for name in (*_INT_ARRAYS, *_FLOAT_ARRAYS, *_ENVELOPE_ARRAYS)}
    np.savez(buf, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
    return buf.getvalue()


def decode(data: bytes) -> SavedModel:
    """The model in `data`.

    Raises:
        ModelStateError: not an npz of this format and version, or its arrays are inconsistent.
    """
    if len(data) > MAX_FILE_BYTES:
        raise ModelStateError(f"{len(data)} bytes, more than {MAX_FILE_BYTES}")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ModelStateError(f"not an npz archive: {exc}") from None
    try:
        header = json.loads(bytes(arrays.pop("header")).decode())
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelStateError(f"no readable header: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelStateError(f"not a {FORMAT} file")
    if header.get("version") != VERSION:
        raise ModelStateError(f"version {header.get('version')!r}, this hub reads {VERSION}")
    series = header.get("series")
    if not isinstance(series, list) or not series or not all(isinstance(s, str) for s in series):
        raise ModelStateError("header series: expected a non-empty list of names")
    step_ms = _int(header, "step_ms")
    if step_ms < 1:
        raise ModelStateError("header step_ms: expected at least 1")
    return SavedModel(
        _forest(header, arrays), tuple(series), step_ms, _int(header, "fitted_ms"), _int(header, "rows")
    )


def save(path: Path, model: SavedModel) -> None:
    """Writes `model` to `path` atomically (a crash leaves the old file or the new one), mode 0600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(encode(model))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load(path: Path) -> SavedModel:
    """The model saved at `path`.

    Raises:
        OSError: the file cannot be read.
        ModelStateError: see `decode`.
    """
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ModelStateError(f"{path.name}: larger than {MAX_FILE_BYTES} bytes")
    return decode(path.read_bytes())


def _int(header: dict[str, Any], name: str) -> int:
    v = header.get(name)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ModelStateError(f"header {name}: expected a non-negative integer, got {v!r}")
    return v


def _forest(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> Forest:
    features = header.get("features")
    if not isinstance(features, list) or not features or not all(isinstance(s, str) for s in features):
        raise ModelStateError("header features: expected a non-empty list of names")
    threshold = header.get("threshold")
    if not isinstance(threshold, float) or not 0.0 < threshold <= 1.0:
        raise ModelStateError(f"header threshold: expected a score in (0, 1], got {threshold!r}")
    missing = [n for n in (*_INT_ARRAYS, *_FLOAT_ARRAYS, *_ENVELOPE_ARRAYS) if n not in arrays]
    if missing:
        raise ModelStateError(f"arrays missing: {missing}")
    for name in _INT_ARRAYS:
        if arrays[name].dtype != np.int64 or arrays[name].ndim != 1:
            raise ModelStateError(f"{name}: expected a 1-d int64 array")
    for name in _FLOAT_ARRAYS:
        if arrays[name].dtype != np.float64 or arrays[name].ndim != 1:
            raise ModelStateError(f"{name}: expected a 1-d float64 array")
    for name in _ENVELOPE_ARRAYS:
        a = arrays[name]
        if a.dtype != np.float64 or a.shape != (len(features),) or not np.isfinite(a).all():
            raise ModelStateError(f"{name}: expected {len(features)} finite float64 values")
    nodes = arrays["left"].shape[0]
    if any(arrays[n].shape[0] != nodes for n in ("right", "feature", "split", "samples")):
        raise ModelStateError("node arrays differ in length")
    roots, left, right = arrays["roots"], arrays["left"], arrays["right"]
    inner = left != LEAF
    if (
        roots.shape[0] == 0
        or not ((roots >= 0) & (roots < nodes)).all()
        or not ((left[inner] > np.flatnonzero(inner)) & (left[inner] < nodes)).all()
        or not ((right[inner] > np.flatnonzero(inner)) & (right[inner] < nodes)).all()
        or (right[~inner] != LEAF).any()
        or not ((arrays["feature"][inner] >= 0) & (arrays["feature"][inner] < len(features))).all()
        or not (arrays["samples"] >= 1).all()
    ):
        raise ModelStateError("node arrays are not a forest over these features")
    max_depth = _int(header, "max_depth")
    max_samples = _int(header, "max_samples")
    if max_samples < 2:
        raise ModelStateError("header max_samples: expected at least 2")
    return Forest(
        tuple(features), roots, left, right, arrays["feature"], arrays["split"], arrays["samples"],
        max_samples, max_depth, threshold, arrays["low"], arrays["high"],
    )  # fmt: skip
