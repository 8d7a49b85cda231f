"""The log template classification job: the log store's templates get a severity and a category from the
model (`TemplateClassifier`, cached per template), the keyword classes while it gives none.

Run once across processes (`hub.db.locks`): every `classify_interval_s` it reads the log store's templates
(its `templates()` service function), classifies at most `classify_per_tick` of those the model has not
classified yet, never-classified ones first, and stores the classes. A keyword class stored while the
model was down or over budget is asked about again at a later tick; one the model answered invalidly is
not (the classifier keeps it), so a template costs at most one request per process.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import sqlalchemy as sa

from hub.bus.job import JobTasks
from hub.enrich.llm import repository
from hub.enrich.llm.classify import TemplateClass, TemplateClassifier
from hub.enrich.llm.client import ChatClient
from hub.enrich.llm.config import LlmConfig
from hub.enrich.llm.redact import Redactor
from hub.enrich.logs.store import LogStore
from shared.clock import Clock
from shared.logging import UpDown

log = logging.getLogger(__name__)

# Templates read per tick (most lines first): the miner's templates are bounded, this bounds a tick.
MAX_TEMPLATES = 10_000


@dataclass(slots=True)
class ClassifyStats:
    by_llm: int = 0  # classes stored that the model gave
    by_keywords: int = 0  # keyword classes stored (no valid answer, or none yet)
    failed_ticks: int = 0


class TemplateClassJob:
    """`start` begins ticking, `aclose` stops (safe unstarted, safe twice); the client is the enrichment
    job's, so both share one breaker and one token budget."""

    name = "log template classification"

    def __init__(
        self, config: LlmConfig, db: sa.Engine, logs: LogStore, client: ChatClient, clock: Clock
    ) -> None:
        self.config = config
        self.stats = ClassifyStats()
        self.classifier = TemplateClassifier(client, Redactor.build(config.redact))
        self._db = db
        self._logs = logs
        self._clock = clock
        self._running = JobTasks()
        self._health = UpDown(log, "log template classification", clock)

    async def start(self) -> None:
        self._running.spawn("llm-classify", self._loop())

    async def aclose(self) -> None:
        await self._running.stop()

    async def _loop(self) -> None:
        while True:
            await self._clock.sleep(self.config.classify_interval_s)
            try:
                await self.tick()
            except Exception as exc:  # the state database away: the next tick tries again
                self.stats.failed_ticks += 1
                self._health.down(f"{type(exc).__name__}: {exc}")
            else:
                self._health.up()

    async def tick(self) -> int:
        """Classifies the next templates and stores their classes; returns how many were stored."""
        templates = await asyncio.to_thread(self._logs.templates, MAX_TEMPLATES)
        known = await asyncio.to_thread(repository.classes, self._db, [t.template_id for t in templates])
        todo = [t for t in templates if t.template_id not in known]
        todo += [t for t in templates if t.template_id in known and known[t.template_id].source != "llm"]
        changed: dict[str, TemplateClass] = {}
        for t in todo[: self.config.classify_per_tick]:
            got = await self.classifier.classify_template(t.template)
            if known.get(t.template_id) != got:
                changed[t.template_id] = got
        await asyncio.to_thread(repository.save_classes, self._db, changed, self._clock.now_ms())
        llm = sum(1 for c in changed.values() if c.source == "llm")
        self.stats.by_llm += llm
        self.stats.by_keywords += len(changed) - llm
        return len(changed)
