"""The forest against scikit-learn itself, and its saved form: round trip, 0600, and refusal of files
that are not a model this version reads."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import numpy as np
import pytest

from hub.confirm import iforest, state
from hub.confirm.verdict import CONFIRMED, DISMISSED, judge

pytestmark = pytest.mark.unit

NAMES = ("a", "b", "c", "d")


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return np.random.default_rng(7).normal(size=(1500, len(NAMES)))


@pytest.fixture(scope="module")
def forest(rows: np.ndarray) -> iforest.Forest:
    return iforest.fit(rows, NAMES, 0.995, seed=3)


def test_scores_from_our_node_arrays_equal_sklearns_own(rows: np.ndarray, forest: iforest.Forest) -> None:
    probe = np.random.default_rng(8).normal(size=(300, len(NAMES))) * 2.5
    ours = iforest.score(forest, probe).scores
    assert np.allclose(ours, iforest.reference_scores(rows, probe, seed=3), rtol=0, atol=1e-12)


def test_the_threshold_leaves_the_chosen_share_of_history_above_it(
    rows: np.ndarray, forest: iforest.Forest
) -> None:
    above = (iforest.score(forest, rows).scores > forest.threshold).mean()
    assert 0.002 <= above <= 0.008


def test_a_point_far_outside_the_history_is_confirmed_and_names_its_feature(forest: iforest.Forest) -> None:
    inside, outside = np.zeros(len(NAMES)), np.array([0.0, 0.0, 40.0, 0.0])
    normal, novel = judge(forest, np.stack([inside, outside]))
    assert normal.verdict == DISMISSED and novel.verdict == CONFIRMED
    assert novel.top[0] == ("c", "1.00")
    assert sum(float(share) for _, share in normal.top) <= 1.0 + 1e-9


def test_a_saved_model_loads_identical_and_is_private(
    tmp_path: Path, forest: iforest.Forest, rows: np.ndarray
) -> None:
    path = tmp_path / "models" / "dev.npz"
    state.save(path, state.SavedModel(forest, ("s1",), 60_000, 123, rows.shape[0]))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    back = state.load(path)
    assert (back.series, back.step_ms, back.fitted_ms, back.rows) == (("s1",), 60_000, 123, 1500)
    probe = rows[:50] * 3
    assert np.array_equal(iforest.score(back.forest, probe).scores, iforest.score(forest, probe).scores)
    assert back.forest.threshold == forest.threshold


def _rewrite(data: bytes, **changes: object) -> bytes:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(bytes(arrays["header"]).decode())
    for k, v in changes.items():
        if k in header:
            header[k] = v
        else:
            arrays[k] = v  # type: ignore[assignment]
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "version 2"),
        ({"format": "other"}, "not a outpost.confirm.iforest file"),
        ({"left": np.array([5, -1], dtype=np.int64)}, "differ in length"),
        ({"feature": np.zeros(3, dtype=np.float32)}, "int64"),
        ({"threshold": 3.0}, "threshold"),
        ({"series": []}, "series"),
    ],
)
def test_a_damaged_or_foreign_file_is_refused_with_why(
    forest: iforest.Forest, change: dict, message: str
) -> None:
    good = state.encode(state.SavedModel(forest, ("s1",), 60_000, 1, 10))
    with pytest.raises(state.ModelStateError, match=message):
        state.decode(_rewrite(good, **change))


def test_children_pointing_backwards_are_refused(forest: iforest.Forest) -> None:
    good = state.encode(state.SavedModel(forest, ("s1",), 60_000, 1, 10))
    left = forest.left.copy()
    left[forest.roots[0]] = 0  # the root's child is the root: a cycle
    with pytest.raises(state.ModelStateError, match="not a forest"):
        state.decode(_rewrite(good, left=left))


def test_bytes_that_are_not_an_archive_are_refused() -> None:
    with pytest.raises(state.ModelStateError, match="npz"):
        state.decode(b"\x80\x04 not a model")
