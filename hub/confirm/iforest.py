"""IsolationForest over context features: fitted with scikit-learn, scored from our own node arrays.

scikit-learn is imported here only. `fit` grows the trees with `sklearn.ensemble.IsolationForest` and
copies every tree's nodes into flat numpy arrays (`Forest`); scoring walks those arrays for a whole batch
of rows at once, so a tick's onsets cost one vectorized pass instead of ~5 ms of sklearn overhead per
call, and a saved model (`hub.confirm.state`) is plain arrays that load without sklearn or pickle.
The score is sklearn's: 2^(-E[h(x)] / c(max_samples)), in (0, 1], higher = easier to isolate.

A forest cannot tell how far outside its training range a row lies: every split threshold falls inside
the range, so a row beyond the most extreme training row is isolated no faster than that row. The
forest therefore keeps each feature's envelope (a low and a high quantile of the training rows), and
`novelty` says by how many envelope widths a row leaves it: a temperature jump ten times the biggest
seen is novel whatever its path length.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.model import F64Array, I64Array

LEAF = -1
N_TREES = 100
MAX_SAMPLES = 256
ENVELOPE = (0.001, 0.999)  # training quantiles each feature's envelope spans
# Euler-Mascheroni constant, for the average path length of an unsuccessful BST search.
_EULER = 0.5772156649015329


@dataclass(frozen=True, slots=True, eq=False)
class Forest:
    """Every tree's nodes concatenated; children and roots are indices into these arrays.

    `threshold` is the score above which a row is anomalous: a high quantile of the training rows'
    own scores, so each device's forest flags what is rare for that device, whatever its spread.
    """

    features: tuple[str, ...]
    roots: I64Array  # (trees,) int64
    left: I64Array  # (nodes,) int64, LEAF at leaves
    right: I64Array
    feature: I64Array  # (nodes,) int64 column split on (meaningless at leaves)
    split: F64Array  # (nodes,) float64: a row goes left when x[feature] <= split
    samples: F64Array  # (nodes,) training rows that reached the node
    max_samples: int
    max_depth: int
    threshold: float
    low: F64Array  # (features,) the envelope of the training rows
    high: F64Array

    @property
    def trees(self) -> int:
        return int(self.roots.shape[0])


@dataclass(frozen=True, slots=True, eq=False)
class Scored:
    """Scores of a batch of rows and, per row, each feature's share of what isolated it (rows sum to 1)
    and how far outside the envelope it is (0 inside, else envelope widths beyond its nearer edge)."""

    scores: F64Array  # (rows,)
    contributions: F64Array  # (rows, features)
    novelty: F64Array  # (rows, features)


def fit(
    rows: F64Array,
    features: tuple[str, ...],
    quantile: float,
    seed: int = 0,
    trees: int = N_TREES,
) -> Forest:
    """Grows a forest on `rows` (one row per point of history, one column per feature).

    Args:
        rows: (n, len(features)) finite values, n >= 2.
        quantile: the training score quantile above which a row is anomalous (e.g. 0.99).
        seed: makes the fit reproducible (a refit of the same history gives the same forest).

    Raises:
        ValueError: too few rows, a width that does not match `features`, or non-finite values.
    """
    if rows.ndim != 2 or rows.shape[1] != len(features) or rows.shape[0] < 2:
        raise ValueError(f"need (n >= 2, {len(features)}) rows, got {rows.shape}")
    if not np.isfinite(rows).all():
        raise ValueError("rows hold non-finite values")
    model = _forest(trees, rows.shape[0], seed)
    model.fit(rows)
    roots, left, right, feature, split, samples = [], [], [], [], [], []
    offset = 0
    for tree, columns in zip(model.estimators_, model.estimators_features_, strict=True):
        t = tree.tree_
        is_leaf = t.children_left == LEAF
        roots.append(offset)
        left.append(np.where(is_leaf, LEAF, t.children_left + offset))
        right.append(np.where(is_leaf, LEAF, t.children_right + offset))
        feature.append(np.where(is_leaf, 0, np.asarray(columns)[np.maximum(t.feature, 0)]))
        split.append(t.threshold)
        samples.append(t.n_node_samples)
        offset += t.node_count
    forest = Forest(
        features=features,
        roots=np.array(roots, dtype=np.int64),
        left=np.concatenate(left).astype(np.int64),
        right=np.concatenate(right).astype(np.int64),
        feature=np.concatenate(feature).astype(np.int64),
        split=np.concatenate(split).astype(np.float64),
        samples=np.concatenate(samples).astype(np.float64),
        max_samples=int(model.max_samples_),
        max_depth=max(int(e.tree_.max_depth) for e in model.estimators_),
        threshold=1.0,
        low=np.quantile(rows, ENVELOPE[0], axis=0),
        high=np.quantile(rows, ENVELOPE[1], axis=0),
    )
    own = score(forest, rows).scores
    return with_threshold(forest, float(np.quantile(own, quantile)))


def with_threshold(forest: Forest, threshold: float) -> Forest:
    """The same trees with another anomaly threshold."""
    return dataclasses.replace(forest, threshold=threshold)


def score(forest: Forest, rows: F64Array) -> Scored:
    """Scores every row in one pass over all trees (rows x trees walked level by level).

    A split's credit is the share of the node's training rows it sent the other way: features whose
    splits peeled most of the data away from the row are what made it easy to isolate.
    """
    n, width = rows.shape[0], len(forest.features)
    if rows.ndim != 2 or rows.shape[1] != width:
        raise ValueError(f"need (n, {width}) rows, got {rows.shape}")
    # Trees compare float32 copies of the inputs (sklearn's DTYPE), so scores match sklearn's exactly.
    x = rows.astype(np.float32).astype(np.float64)
    node = np.broadcast_to(forest.roots, (n, forest.trees)).copy()
    depth = np.zeros((n, forest.trees))
    credit = np.zeros(n * width)
    row_of = np.broadcast_to(np.arange(n)[:, None], node.shape)
    for _ in range(forest.max_depth + 1):
        inner = forest.left[node] != LEAF
        if not inner.any():
            break
        at, rows_at = node[inner], row_of[inner]
        column = forest.feature[at]
        goes_left = x[rows_at, column] <= forest.split[at]
        child = np.where(goes_left, forest.left[at], forest.right[at])
        credit += np.bincount(
            rows_at * width + column,
            weights=1.0 - forest.samples[child] / forest.samples[at],
            minlength=n * width,
        )
        node[inner] = child
        depth[inner] += 1.0
    depth += average_path_length(forest.samples[node])
    scores = 2.0 ** (-depth.mean(axis=1) / average_path_length(np.array([forest.max_samples]))[0])
    shares = credit.reshape(n, width)
    totals = shares.sum(axis=1, keepdims=True)
    span = np.maximum(forest.high - forest.low, 1e-9)
    novelty = np.maximum(np.maximum(rows - forest.high, forest.low - rows), 0.0) / span
    return Scored(scores, np.divide(shares, totals, out=np.zeros_like(shares), where=totals > 0), novelty)


def average_path_length(n: F64Array) -> F64Array:
    """c(n): the average depth an unsuccessful search reaches in a BST of n rows (sklearn's formula)."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + _EULER) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def reference_scores(rows: F64Array, probe: F64Array, seed: int = 0, trees: int = N_TREES) -> F64Array:
    """sklearn's own scores (`-score_samples`) of `probe` for a forest fitted like `fit` does: the
    conformance reference `Forest` scoring is tested against."""
    model = _forest(trees, rows.shape[0], seed)
    return np.asarray(-model.fit(rows).score_samples(probe), dtype=np.float64)


def _forest(trees: int, rows: int, seed: int) -> Any:
    """An unfitted sklearn IsolationForest. sklearn is imported here, at the first fit, not with the
    module: it costs ~2.5 s, and every hub process and CLI command imports this package, while only a
    hub with `confirm.enabled` ever fits a forest (scoring and saved models need none of it)."""
    from sklearn.ensemble import IsolationForest

    return IsolationForest(n_estimators=trees, max_samples=min(MAX_SAMPLES, rows), random_state=seed)
