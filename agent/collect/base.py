"""The Collector protocol every target kind implements."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, Protocol, TypeVar, runtime_checkable

from shared.model import CollectResult


class TargetConfig(Protocol):
    """What every device config has: a unique name and a poll interval."""

    @property
    def name(self) -> str: ...

    @property
    def interval_s(self) -> float: ...


class Collector(Protocol):
    """One pollable target. `aclose` is safe without `start` and safe twice.

    `collect` never raises for device trouble: a partial poll is a CollectResult with `errors`.
    It may raise asyncio.TimeoutError/CancelledError when the scheduler's deadline cancels it.
    """

    @property
    def target(self) -> str:
        """Stable name used in logs, metrics and phase hashing (e.g. `host`, `sw1`, `bmc-r12`)."""
        ...

    @property
    def interval_s(self) -> float: ...

    async def start(self) -> None: ...

    async def collect(self) -> CollectResult: ...

    async def aclose(self) -> None: ...


C = TypeVar("C", bound=TargetConfig)


class ConfiguredTarget(Generic[C]):
    """Gives a collector its `target` and `interval_s` from its config (`name`, `interval_s`)."""

    _config: C

    @property
    def target(self) -> str:
        return self._config.name

    @property
    def interval_s(self) -> float:
        return self._config.interval_s


@runtime_checkable
class Counted(Protocol):
    """A collector that counts per-item events of its polls (a Redfish document that was not JSON, a
    reading dropped as a duplicate): the poll's errors say what happened, these say how often, and the
    agent's /metrics reads them at scrape time."""

    @property
    def target(self) -> str: ...

    def counters(self) -> Mapping[str, int]: ...


@runtime_checkable
class Resumable(Protocol):
    """A source that can replay from a point in time (e.g. a deterministic sequence).

    After a crash the runtime tells it the newest timestamp already on disk, so it re-emits exactly
    what was lost with the batch that was still in memory.
    """

    def resume_after(self, watermark_ms: int) -> None: ...
