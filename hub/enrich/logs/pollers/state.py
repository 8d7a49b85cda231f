"""A poller's cursor: where it is in the source's time line, saved as a small JSON file (0600) under
data_dir/logs/pollers after the lines of each page are durable in the log store.

It holds the window being read (and the source's page cursor in it), the watermark (where the last
finished window ended) and the ids of the events already stored that a later page or the next window's
overlap may return again. Written atomically: a crash leaves the previous cursor, whose page is then
fetched again and either skipped by its ids or refused by the log store's batch ledger (see base.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.private import write_private_atomic

log = logging.getLogger(__name__)

VERSION = 1


@dataclass(frozen=True, slots=True)
class Window:
    """Events with start_ms <= time < end_ms."""

    start_ms: int
    end_ms: int


@dataclass(slots=True)
class PollerState:
    """Read and written on the poller's task only."""

    watermark_ms: int | None = None  # end of the last finished window; None before the first poll
    window: Window | None = None  # the window being read, None between windows
    cursor: str | None = None  # the source's cursor of the next page in `window`
    seen: dict[str, int] = field(default_factory=dict)  # event id -> event time (ms), oldest first

    def to_json(self) -> bytes:
        w = self.window
        return json.dumps(
            {
                "version": VERSION,
                "watermark_ms": self.watermark_ms,
                "window": None if w is None else [w.start_ms, w.end_ms],
                "cursor": self.cursor,
                "seen": list(self.seen.items()),
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> PollerState:
        """Raises ValueError (incl. JSON errors), KeyError or TypeError for a file `to_json` did not write."""
        data: dict[str, Any] = json.loads(raw)
        if data.get("version") != VERSION:
            raise ValueError(f"unknown version {data.get('version')!r}")
        w = data["window"]
        watermark = data["watermark_ms"]
        cursor = data["cursor"]
        if cursor is not None and not isinstance(cursor, str):
            raise TypeError("cursor is not a string")
        return cls(
            watermark_ms=None if watermark is None else int(watermark),
            window=None if w is None else Window(int(w[0]), int(w[1])),
            cursor=cursor,
            seen={str(k): int(v) for k, v in data["seen"]},
        )


class StateFile:
    """One poller's cursor file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> PollerState:
        """The saved state; a fresh one when there is none, or when the file is unreadable (logged: the
        poller then starts from its initial lookback, which may store lines of that span again)."""
        try:
            return PollerState.from_json(self.path.read_bytes())
        except FileNotFoundError:
            return PollerState()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("poller cursor %s unreadable, starting afresh: %s", self.path, exc)
            return PollerState()

    def save(self, state: PollerState) -> None:
        """Raises OSError when it cannot be written (the caller retries the page later)."""
        write_private_atomic(self.path, state.to_json())
