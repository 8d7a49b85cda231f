"""Notices a long-running agent task that ended while the agent runs, so /healthz can report it.

Every stage loop is written never to end (failures are caught by the runtime's guard), so a task that
finishes anyway — a bug that escaped, a BaseException, a cancellation nobody asked for — is a dead stage
that would otherwise go unnoticed while collection or delivery silently stops.
"""

from __future__ import annotations

import asyncio
import functools
import logging

log = logging.getLogger(__name__)


class Supervisor:
    """Records the stage of every watched task that ends before `stopping()` was called."""

    def __init__(self) -> None:
        self._dead: dict[str, str] = {}
        self._stopping = False

    def watch(self, stage: str, *tasks: asyncio.Task[None]) -> None:
        """Marks `stage` dead (logged once at ERROR) when any of `tasks` ends while the agent runs."""
        for task in tasks:
            task.add_done_callback(functools.partial(self._ended, stage))

    def stopping(self) -> None:
        """From now on tasks end because the agent shuts down: not a failure."""
        self._stopping = True

    @property
    def dead_stages(self) -> list[str]:
        return sorted(self._dead)

    def _ended(self, stage: str, task: asyncio.Task[None]) -> None:
        if self._stopping:
            return
        if task.cancelled():
            why = "cancelled"
        else:
            exc = task.exception()
            why = "returned" if exc is None else f"{type(exc).__name__}: {exc}"
        if stage not in self._dead:
            log.error("stage %s stopped (%s, task %s); /healthz reports it", stage, why, task.get_name())
        self._dead[stage] = why
