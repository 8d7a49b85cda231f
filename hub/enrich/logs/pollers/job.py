"""The log pollers as one hub job: every configured poller's loop, run in the one process holding the
`log-pollers` lock (two processes polling one source would store its lines twice; see `hub.db.locks`).

`SOURCES` maps a poller's `kind:` to its source. `start` reads each source's secrets (a missing or empty
secret file stops the hub with the field's path) before any loop starts; `aclose` stops the loops and
closes the sessions (safe without start and twice). A loop cancelled mid-page resumes from its cursor file.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from hub.enrich.logs.intake import LogIntake
from hub.enrich.logs.pollers.base import Poller, PollerConfig, Source
from hub.enrich.logs.pollers.datadog import DatadogSource
from hub.enrich.logs.pollers.metrics import PollerMetrics
from hub.enrich.logs.pollers.splunk import SplunkSource
from hub.enrich.logs.pollers.state import StateFile
from shared.clock import Clock

log = logging.getLogger(__name__)

SOURCES: dict[str, Callable[..., Source]] = {"datadog": DatadogSource, "splunk": SplunkSource}


class LogPollers:
    """Runs one `Poller` task per configured source."""

    name = "log pollers"

    def __init__(
        self,
        configs: Sequence[PollerConfig],
        intake: LogIntake,
        metrics: PollerMetrics,
        state_dir: Path,
        clock: Clock,
    ) -> None:
        self._configs = configs
        self._intake = intake
        self._metrics = metrics
        self._dir = state_dir
        self._clock = clock
        self.pollers: list[Poller] = []
        self._sources: list[Source] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for cfg in self._configs:
            source = SOURCES[cfg.kind](cfg, self._metrics, self._clock)
            self._sources.append(source)
            await source.start()
            state = StateFile(self._dir / f"{cfg.name}.json")
            self.pollers.append(Poller(cfg, source, self._intake, state, self._metrics, self._clock))
        for poller in self.pollers:
            self._tasks.append(asyncio.create_task(poller.run(), name=f"log-poller-{poller.config.name}"))
        log.info("log pollers running: %s", ", ".join(s.name for s in self._sources))

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for source in self._sources:
            await source.aclose()
        self._sources, self.pollers = [], []
