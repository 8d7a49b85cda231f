"""Snapshot files of the exact samples a collector produced: `OUTPOST_UPDATE_SNAPSHOTS=1` rewrites them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from shared.model import CollectResult

SNAPSHOTS = Path(__file__).with_name("snapshots")


def render(result: CollectResult) -> list[list[object]]:
    """Samples (and limits) as sorted plain rows: [metric, labels, value, kind, unit, limits]."""
    rows = []
    for s in result.samples:
        lim = result.limits.get(s.key)
        limits = {k: v for k, v in vars_of(lim).items() if v is not None} if lim else {}
        rows.append([s.key.metric, dict(s.key.labels), round(s.value, 6), s.kind.name, s.unit, limits])
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


def vars_of(obj: object) -> dict[str, object]:
    return {name: getattr(obj, name) for name in getattr(obj, "__slots__", ())}


def assert_snapshot(name: str, result: CollectResult) -> None:
    """Compares with snapshots/<name>.json (written when missing or when asked to update)."""
    path = SNAPSHOTS / f"{name}.json"
    rows = render(result)
    if os.environ.get("OUTPOST_UPDATE_SNAPSHOTS") == "1" or not path.exists():
        path.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
    want = json.loads(path.read_text())
    if rows != want:
        got_only = [r for r in rows if r not in want]
        want_only = [r for r in want if r not in rows]
        raise AssertionError(f"{name}: unexpected rows {got_only[:10]}; missing rows {want_only[:10]}")
