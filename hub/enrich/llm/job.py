"""The enrichment job: incident changes in, an explanation per incident stored and announced out.

Runs in every process that runs jobs (roles `all` and `worker`), subscribed with its own group, so on
NATS the workers share the incidents. The bus handler only queues the incident id (bounded: a full queue
drops and counts; the incident is asked about again at its next change), so the alert engine, which
publishes the change after its step is written and its notifications handed out, never waits for a model.
`concurrency` tasks take ids off the queue: read the incident's facts in a thread, ask the model (redacted,
cached per prompt), store the answer and publish `IncidentEnriched`, which the /ws incidents topic carries.

An incident is in the queue or being asked about at most once at a time; a change arriving meanwhile asks
again afterwards (its alerts may have changed). A stored explanation of the same alerts is not asked again,
after a restart too: the key is the incident's own title and alerts, so a moved series value or a newly
similar incident alone does not cost another request. No answer at all (server down, breaker open,
budget spent) stores nothing: the explanation is absent until the model is back and the incident
changes. The model going away and coming back is logged once each.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from dataclasses import dataclass

import sqlalchemy as sa

from hub.alerts.repository import AlertRepository
from hub.bus.base import Bus
from hub.bus.errors import BusError
from hub.bus.job import JobTasks
from hub.bus.messages import IncidentChanged, IncidentEnriched, Message
from hub.enrich.llm import repository
from hub.enrich.llm.client import ChatClient, LlmError
from hub.enrich.llm.config import LlmConfig
from hub.enrich.llm.context import ContextReader
from hub.enrich.llm.redact import Redactor
from hub.enrich.llm.service import IncidentEnricher
from hub.enrich.logs.store import LogStore
from hub.store.base import Store
from shared.clock import Clock
from shared.logging import UpDown

log = logging.getLogger(__name__)

GROUP = "enrich"
_SEEN_IDS = 100_000


@dataclass(slots=True)
class EnrichStats:
    """What the job counted since start, for /metrics (read and written on the event loop)."""

    enriched: int = 0  # explanations stored (model answers and fallbacks)
    fallbacks: int = 0  # stored explanations that are the deterministic summary
    unanswered: int = 0  # incidents left without an explanation: no answer came at all
    unchanged: int = 0  # not asked: the stored explanation is of the same alerts
    dropped: int = 0  # queue full
    coalesced: int = 0  # a change for an incident already queued
    duplicates: int = 0
    failures: int = 0  # reading the incident or storing the answer failed
    publish_failures: int = 0


class EnrichJob:
    """`start` subscribes and starts the askers; `aclose` stops them (safe unstarted, safe twice)."""

    name = "llm enrichment"

    def __init__(
        self,
        config: LlmConfig,
        db: sa.Engine,
        store: Store,
        logs: LogStore | None,
        bus: Bus,
        clock: Clock,
    ) -> None:
        self.config = config
        self.stats = EnrichStats()
        self.client = ChatClient(config)
        self.enricher = IncidentEnricher(self.client, Redactor.build(config.redact))
        self.context = ContextReader(AlertRepository(db), store, logs, int(config.context_s * 1000))
        self._db = db
        self._bus = bus
        self._clock = clock
        self._queue: deque[str] = deque()
        self._queued: set[str] = set()
        self._asking: set[str] = set()
        self._again: set[str] = set()
        self._ready = asyncio.Event()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._running = JobTasks()
        self._health = UpDown(log, f"LLM server {config.model!r}", clock)
        self._db_health = UpDown(log, "LLM enrichment state database", clock)

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def start(self) -> None:
        self._running.subscribe(self._bus, IncidentChanged.TOPIC, GROUP, self.handle)
        for i in range(self.config.concurrency):
            self._running.spawn(f"llm-enrich-{i}", self._ask_loop())

    async def aclose(self) -> None:
        await self._running.stop()
        await self.client.aclose()

    async def handle(self, msg: Message) -> None:
        """Queues the incident of a change the alert engine made; operator actions and resolved
        incidents are not asked about (notes and acks change nothing the model reads)."""
        if not isinstance(msg, IncidentChanged) or msg.change == "operator" or msg.status == "resolved":
            return
        if msg.id in self._seen:
            self.stats.duplicates += 1
            return
        self._seen[msg.id] = None
        while len(self._seen) > _SEEN_IDS:
            self._seen.popitem(last=False)
        self._offer(msg.incident_id)

    def _offer(self, incident_id: str) -> None:
        if incident_id in self._queued:
            self.stats.coalesced += 1
        elif incident_id in self._asking:
            self._again.add(incident_id)  # asked again once the answer in flight is stored
        elif len(self._queue) >= self.config.queue:
            self.stats.dropped += 1
        else:
            self._queue.append(incident_id)
            self._queued.add(incident_id)
            self._ready.set()

    async def _ask_loop(self) -> None:
        while True:
            while not self._queue:
                self._ready.clear()
                await self._ready.wait()
            incident_id = self._queue.popleft()
            self._queued.discard(incident_id)
            self._asking.add(incident_id)
            try:
                await self.enrich(incident_id)
            except Exception as exc:  # the state database away: this incident waits for its next change
                self.stats.failures += 1
                self._db_health.down(f"{type(exc).__name__}: {exc}; incidents not enriched")
            else:
                self._db_health.up()
            finally:
                self._asking.discard(incident_id)
            if incident_id in self._again:
                self._again.discard(incident_id)
                self._offer(incident_id)

    async def enrich(self, incident_id: str) -> bool:
        """Asks about one incident, stores and announces the answer; True when one was stored.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the incident could not be read or the answer not stored.
        """
        facts = await asyncio.to_thread(self.context.read, incident_id, self._clock.now_ms())
        if facts is None:
            return False
        key = self.enricher.cache_key(facts.title, facts.alerts)
        stored = await asyncio.to_thread(repository.load, self._db, incident_id)
        if stored is not None and stored.provenance.prompt_sha256 == key and not stored.enrichment.fallback:
            self.stats.unchanged += 1
            return False
        try:
            enrichment, prov = await self.enricher.enrich(facts.title, facts.alerts, facts.context)
        except LlmError as exc:
            self.stats.unanswered += 1
            self._health.down(f"{exc}; incidents go without an explanation until it answers")
            return False
        self._health.up()
        await asyncio.to_thread(repository.save, self._db, incident_id, enrichment, prov)
        self.stats.enriched += 1
        self.stats.fallbacks += enrichment.fallback
        msg = IncidentEnriched.create(
            incident_id=incident_id,
            model=prov.model,
            prompt_sha256=prov.prompt_sha256,
            source="fallback" if enrichment.fallback else "llm",
            ts_ms=prov.ts_ms,
        )
        try:
            await self._bus.publish(msg)
        except BusError:  # stored: a client sees it at its next read of the incident
            self.stats.publish_failures += 1
        return True
