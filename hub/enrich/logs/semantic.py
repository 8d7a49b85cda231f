"""Semantic search wired into the hub: log templates and incidents kept in the `SemanticIndex`, searched
by the API and by the LLM enrichment's context.

The index is a cache of the state database, rebuilt from it whenever it lacks something, so it lives in
each process that answers searches (roles `all` and `api`, under that process's data dir):

- templates: the log intake tells `offer_templates` each stored batch's templates on the ingest thread;
  only new ones and those whose text changed are queued (bounded, coalesced by id, drops counted) for a
  background task, so indexing never delays an acknowledgement. Role `api` mines nothing: it has the
  resync only.
- incidents: a bus consumer (own group) queues every incident the alert engine opens, grows or resolves
  (role `all`, where the engine runs); the task reads its title, labels and alerts and indexes them.
- resync: at start (progress logged) and every `resync_interval_s`, what the log store and the newest
  incidents hold but the index lacks (or holds with another text or status) is indexed, which also
  recovers whatever a full queue dropped.

chromadb is optional (the `semantic` extra): without it, or with `enabled: false`, the hub starts, this
logs once why, and `unavailable` says why to the API, which answers 503.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge

from hub.alerts.repository import AlertRepository
from hub.bus.base import Bus
from hub.bus.job import JobTasks
from hub.bus.messages import IncidentChanged, Message
from hub.enrich.logs.config import SemanticConfig
from hub.enrich.logs.embed import EMBEDDERS, Embedder
from hub.enrich.logs.store import LogStore
from shared.clock import Clock
from shared.logging import UpDown

if TYPE_CHECKING:
    from hub.enrich.logs.search import SemanticIndex

log = logging.getLogger(__name__)

GROUP = "semantic"
MAX_RESYNC_TEMPLATES = 200_000
UPSERT_CHUNK = 500  # items per chromadb upsert: bounds the lock hold time a search may wait behind
MAX_ALERTS = 20  # alerts of one incident in its indexed text
SIMILAR_IN_PROMPT = 3
DISABLED = "semantic search is disabled (logs.semantic.enabled: false)"
NO_CHROMADB = "semantic search needs chromadb, which is not installed (pip install 'outpost[semantic]')"


@dataclass(frozen=True, slots=True)
class TemplateHit:
    """A template found by a search and its cosine similarity to the query (higher is nearer), with its
    store row's count and last time (None: no longer in the store)."""

    template_id: str
    template: str
    score: float
    count: int | None
    last_seen_ms: int | None


@dataclass(frozen=True, slots=True)
class IncidentHit:
    """A past incident near the asked one, by the cosine similarity of their texts (higher is nearer)."""

    incident_id: str
    title: str
    status: str
    score: float


@dataclass(frozen=True, slots=True)
class IncidentDoc:
    """What an incident is indexed and queried by."""

    incident_id: str
    title: str
    labels: dict[str, str]
    summary: str
    status: str


class SemanticMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.indexed = Counter(
            "outpost_hub_semantic_indexed",
            "Items written into the semantic index",
            ["kind"],
            registry=registry,
        )
        self.dropped = Counter(
            "outpost_hub_semantic_dropped",
            "Items not queued for the semantic index: queue full (the next resync indexes them)",
            ["kind"],
            registry=registry,
        )
        self.failures = Counter(
            "outpost_hub_semantic_failures",
            "Semantic index writes or reads that failed (kind: templates, incidents, resync, similar)",
            ["kind"],
            registry=registry,
        )
        self.pending = Gauge(
            "outpost_hub_semantic_pending", "Items queued for the semantic index", registry=registry
        )
        self.searches = Counter(
            "outpost_hub_semantic_searches",
            "Semantic searches answered (kind: templates, incidents)",
            ["kind"],
            registry=registry,
        )


class SemanticSearch:
    """The index, its queue and its resync as one component (`aclose` safe without start and twice)."""

    name = "semantic search"

    def __init__(
        self,
        config: SemanticConfig,
        data_dir: Path,
        logs: LogStore,
        db: sa.Engine,
        bus: Bus | None,
        registry: CollectorRegistry,
        clock: Clock,
    ) -> None:
        self.config = config
        self.metrics = SemanticMetrics(registry)
        self._data_dir = data_dir
        self._path = self._under_data(config.path)
        self._logs = logs
        self._repo = AlertRepository(db)
        self._bus = bus  # None: no incident consumer (role api); the resync keeps incidents current
        self._clock = clock
        self._index: SemanticIndex | None = None
        self.unavailable: str | None = DISABLED if not config.enabled else None
        # Touched by ingest threads and the event loop: guarded by `_lock`.
        self._lock = threading.Lock()
        self._known: dict[str, str] = {}  # template id -> the text last queued or indexed
        self._templates: dict[str, tuple[str, str]] = {}  # pending: id -> (text, agent)
        self._incidents: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._running = JobTasks()
        self._health = UpDown(log, "semantic index", clock)
        self.metrics.pending.set_function(self._pending)

    @property
    def index(self) -> SemanticIndex | None:
        return self._index

    async def start(self) -> None:
        """Opens the index and starts the indexer and the resync; never fails the hub's start."""
        if not self.config.enabled:
            log.info("%s", DISABLED)
            return
        try:  # the optional dependency: the only place this package imports it
            from hub.enrich.logs.search import SemanticIndex
        except ImportError as exc:
            self.unavailable = NO_CHROMADB
            log.warning("%s: %s", NO_CHROMADB, exc)
            return
        try:
            embedder = await asyncio.to_thread(self._embedder)
            index = SemanticIndex(self._path, embedder)
            await index.start()
        except Exception as exc:  # a broken index or missing model files cost the search, not the hub
            self.unavailable = f"semantic index {self._path} ({self.config.embedder}) cannot be opened: {exc}"
            log.warning("%s", self.unavailable)
            return
        self._index = index
        self._loop = asyncio.get_running_loop()
        if self._bus is not None:
            self._running.subscribe(self._bus, IncidentChanged.TOPIC, GROUP, self.handle)
        self._running.spawn("semantic-index", self._index_loop(index))
        self._running.spawn("semantic-resync", self._resync_loop(index))

    def _embedder(self) -> Embedder:
        if self.config.embedder == "minilm":  # optional: onnxruntime, tokenizers and the model's files
            from hub.enrich.logs.minilm import MiniLmEmbedder

            return MiniLmEmbedder(self._under_data(self.config.model_dir))
        return EMBEDDERS[self.config.embedder]()

    def _under_data(self, path: Path) -> Path:
        return path if path.is_absolute() else self._data_dir / path

    async def aclose(self) -> None:
        await self._running.stop()
        if self._index is not None:
            await self._index.aclose()
            self._index = None
            self.unavailable = "semantic search stopped"

    # ---- what producers call -----------------------------------------------------------------------------

    def offer_templates(self, templates: Mapping[str, str], agent: str) -> None:
        """Queues the templates that are new or whose text changed (any thread; never blocks on I/O)."""
        if self._index is None:
            return
        queued = 0
        with self._lock:
            if len(self._known) > MAX_RESYNC_TEMPLATES:  # pruned ids pile up; forgetting costs re-upserts
                self._known.clear()
            for template_id, text in templates.items():
                if self._known.get(template_id) == text:
                    continue
                if template_id not in self._templates and self._pending() >= self.config.queue:
                    self.metrics.dropped.labels("templates").inc()
                    continue
                self._known[template_id] = text
                self._templates[template_id] = (text, agent)
                queued += 1
        if queued:
            self._notify()

    async def handle(self, msg: Message) -> None:
        """Queues the incident of a change (operator notes and acks change nothing indexed)."""
        if not isinstance(msg, IncidentChanged) or msg.change == "operator":
            return
        with self._lock:
            if msg.incident_id not in self._incidents and self._pending() >= self.config.queue:
                self.metrics.dropped.labels("incidents").inc()
                return
            self._incidents.add(msg.incident_id)
        self._notify()

    def _pending(self) -> int:
        return len(self._templates) + len(self._incidents)

    def _notify(self) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._wake.set)

    # ---- what readers call (blocking: the API's query pool, the enrichment's thread) --------------------

    def search(self, q: str, k: int) -> list[TemplateHit]:
        """The `k` templates nearest to `q`, with their counts from the log store.

        Raises:
            RuntimeError: the index is not open (`unavailable` says why).
        """
        hits = self._open().query("log_templates", q, k)
        self.metrics.searches.labels("templates").inc()
        stats = self._logs.template_stats([h.id for h in hits])
        out = []
        for h in hits:
            row = stats.get(h.id)
            out.append(
                TemplateHit(
                    h.id,
                    h.text,
                    round(h.score, 6),
                    row.count if row else None,
                    row.last_seen_ms if row else None,
                )
            )
        return out

    def similar(self, incident_id: str, k: int) -> list[IncidentHit] | None:
        """Indexed incidents nearest to this one (never itself), by its current text; None: no such incident.

        Raises:
            RuntimeError: the index is not open.
        """
        index = self._open()
        doc = self._read_incident(incident_id)
        if doc is None:
            return None
        hits = index.nearest_incidents(incident_id, doc.title, doc.labels, doc.summary, k)
        self.metrics.searches.labels("incidents").inc()
        return [
            IncidentHit(h.id, str(h.meta.get("title", "")), str(h.meta.get("status", "")), round(h.score, 6))
            for h in hits
        ]

    def similar_lines(self, incident_id: str) -> list[str]:
        """Similar past incidents as prompt lines for the LLM enrichment; [] when search is off or fails."""
        if self._index is None:
            return []
        try:
            hits = self.similar(incident_id, SIMILAR_IN_PROMPT) or []
        except Exception as exc:  # the prompt goes without them
            self.metrics.failures.labels("similar").inc()
            log.debug("similar incidents for the prompt not read: %s: %s", type(exc).__name__, exc)
            return []
        return [f"similar past incident ({h.status}, similarity {h.score:.2f}): {h.title}" for h in hits]

    def _open(self) -> SemanticIndex:
        if self._index is None:
            raise RuntimeError(self.unavailable or "semantic search is not running")
        return self._index

    def _read_incident(self, incident_id: str) -> IncidentDoc | None:
        found = self._repo.incident(incident_id)
        if found is None:
            return None
        inc = found[0]
        alerts = sorted(self._repo.alerts_by_ids(sorted(inc.alert_ids)), key=lambda a: (a.starts_ms, a.id))
        parts = []
        for a in alerts[:MAX_ALERTS]:
            summary = next((v for k, v in a.annotations if k == "summary"), "")
            parts.append(" ".join(p for p in (a.label("alertname"), summary) if p))
        return IncidentDoc(inc.id, inc.title, dict(inc.labels), "; ".join(parts), inc.status.value)

    # ---- the background tasks ----------------------------------------------------------------------------

    async def _index_loop(self, index: SemanticIndex) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            with self._lock:
                templates, self._templates = self._templates, {}
                incidents, self._incidents = self._incidents, set()
            await self._index_templates(index, templates)
            for incident_id in sorted(incidents):
                await self._index_incident(index, incident_id)

    async def _index_templates(self, index: SemanticIndex, templates: Mapping[str, tuple[str, str]]) -> None:
        by_agent: dict[str, dict[str, str]] = {}
        for template_id, (text, agent) in templates.items():
            by_agent.setdefault(agent, {})[template_id] = text
        for agent, group in sorted(by_agent.items()):
            ids = sorted(group)
            for at in range(0, len(ids), UPSERT_CHUNK):
                chunk = {i: group[i] for i in ids[at : at + UPSERT_CHUNK]}
                try:
                    await index.index_templates(chunk, source=agent)
                except Exception as exc:  # forgotten, so the next offer or resync indexes them
                    self.metrics.failures.labels("templates").inc(len(chunk))
                    self._health.down(f"{type(exc).__name__}: {exc}")
                    with self._lock:
                        for i in chunk:
                            self._known.pop(i, None)
                    continue
                self._health.up()
                self.metrics.indexed.labels("templates").inc(len(chunk))

    async def _index_incident(self, index: SemanticIndex, incident_id: str) -> None:
        try:
            doc = await asyncio.to_thread(self._read_incident, incident_id)
            if doc is None:
                return
            await index.index_incident(doc.incident_id, doc.title, doc.labels, doc.summary, doc.status)
        except Exception as exc:  # the next change or resync indexes it
            self.metrics.failures.labels("incidents").inc()
            self._health.down(f"{type(exc).__name__}: {exc}")
            return
        self._health.up()
        self.metrics.indexed.labels("incidents").inc()

    async def _resync_loop(self, index: SemanticIndex) -> None:
        first = True
        while True:
            try:
                await self.resync(index, log_progress=first)
            except Exception as exc:  # tried again at the next interval
                self.metrics.failures.labels("resync").inc()
                self._health.down(f"resync: {type(exc).__name__}: {exc}")
            first = False
            await self._clock.sleep(self.config.resync_interval_s)

    async def resync(self, index: SemanticIndex, log_progress: bool = False) -> tuple[int, int]:
        """Indexes what the store and the newest incidents hold and the index lacks or holds differently.

        Returns:
            (templates, incidents) indexed.
        """
        rows = await asyncio.to_thread(self._logs.templates, MAX_RESYNC_TEMPLATES)
        have = await asyncio.to_thread(index.contents, "log_templates")
        todo = {r.template_id: r.template for r in rows if have.get(r.template_id, ("",))[0] != r.template}
        with self._lock:
            self._known.update((r.template_id, r.template) for r in rows)
        if log_progress:
            log.info("semantic index: %d templates in the store, %d to index", len(rows), len(todo))
        ids = sorted(todo)
        for at in range(0, len(ids), UPSERT_CHUNK):
            chunk = {i: todo[i] for i in ids[at : at + UPSERT_CHUNK]}
            await index.index_templates(chunk)
            self.metrics.indexed.labels("templates").inc(len(chunk))
            if log_progress:
                log.info("semantic index: %d of %d templates indexed", at + len(chunk), len(ids))
        incidents = await self._resync_incidents(index)
        if log_progress and (todo or incidents):
            log.info("semantic index: resync done (%d templates, %d incidents)", len(todo), incidents)
        return len(todo), incidents

    async def _resync_incidents(self, index: SemanticIndex) -> int:
        if self.config.resync_incidents == 0:
            return 0
        newest = await asyncio.to_thread(self._repo.incidents, [], None, self.config.resync_incidents)
        have = await asyncio.to_thread(index.contents, "incidents")
        stale = [i.id for i in newest if have.get(i.id, ("", {}))[1].get("status") != i.status.value]
        for incident_id in stale:
            await self._index_incident(index, incident_id)
        return len(stale)
