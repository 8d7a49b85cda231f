"""From forest scores to verdicts: confirmed above the device's own threshold or well outside the
envelope of its history (`iforest` says why both are needed), else dismissed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hub.confirm.iforest import Forest, score
from shared.model import F64Array

CONFIRMED = "confirmed"
DISMISSED = "dismissed"
UNSCORED = "unscored"  # the device has no model yet (too little history): the onset pages as it did
TOP_FEATURES = 3
# Envelope widths beyond the history's envelope that make an onset novel whatever its forest score.
NOVELTY = 0.5


@dataclass(frozen=True, slots=True)
class Judgement:
    """One onset's verdict, its forest score and the features that isolated it most (name, share)."""

    verdict: str
    score: float
    top: tuple[tuple[str, str], ...]


def judge(
    forest: Forest, rows: F64Array, top: int = TOP_FEATURES, novelty: float = NOVELTY
) -> list[Judgement]:
    """Verdicts of a batch of context rows, scored in one pass. A novel row's top features are those
    furthest outside the envelope (their share of its total excess), else those that isolated it."""
    if rows.shape[0] == 0:
        return []
    scored = score(forest, rows)
    novel = scored.novelty.max(axis=1) > novelty
    excess = scored.novelty / np.maximum(scored.novelty.sum(axis=1, keepdims=True), 1e-12)
    why = np.where(novel[:, None], excess, scored.contributions)
    order = np.argsort(-why, axis=1, kind="stable")[:, :top]
    out = []
    for s, is_novel, shares, best in zip(scored.scores.tolist(), novel.tolist(), why, order, strict=True):
        features = tuple((forest.features[j], f"{shares[j]:.2f}") for j in best.tolist())
        confirmed = is_novel or s > forest.threshold
        out.append(Judgement(CONFIRMED if confirmed else DISMISSED, s, features))
    return out
