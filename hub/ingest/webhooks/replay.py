"""A bounded memory of delivery ids seen within a signature's time window, so a captured request
cannot be replayed while its timestamp is still accepted."""

from __future__ import annotations

from collections import OrderedDict


class ReplayCache:
    """Ids remembered for `window_ms`; at most `max_entries`, the oldest forgotten first.

    A forgotten id is still refused by the timestamp window once the window has passed, so the cap
    only matters for a flood of distinct ids inside one window. Used on the event loop only.
    """

    def __init__(self, window_ms: int, max_entries: int) -> None:
        self._window_ms = window_ms
        self._max = max_entries
        self._seen: OrderedDict[str, int] = OrderedDict()

    def first_time(self, ident: str, now_ms: int) -> bool:
        """True the first time `ident` is offered within the window (and remembers it)."""
        while self._seen and next(iter(self._seen.values())) <= now_ms - self._window_ms:
            self._seen.popitem(last=False)
        if ident in self._seen:
            return False
        self._seen[ident] = now_ms
        if len(self._seen) > self._max:
            self._seen.popitem(last=False)
        return True

    def forget(self, ident: str) -> None:
        """Forgets `ident`, so the sender's retry of a delivery the hub could not take (503) is accepted."""
        self._seen.pop(ident, None)
