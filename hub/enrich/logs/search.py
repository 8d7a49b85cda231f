"""Semantic search of log templates and incidents in ChromaDB (the only module importing chromadb).

A persistent client under the hub's data dir, anonymized telemetry off (no outbound connection), and
vectors computed by our own offline embedder (`embed.py`) and handed to chromadb, so chromadb never
loads or downloads a model. chromadb's calls block on disk I/O: the async methods run them in a thread,
and one lock serializes them because the embedded client's docs make no thread-safety promise.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chromadb
from chromadb.config import Settings

from hub.enrich.logs.embed import Embedder, HashingEmbedder

TEMPLATES = "log_templates"
INCIDENTS = "incidents"
MAX_QUERY_LEN = 512
MAX_K = 50


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: the indexed id, its text, cosine similarity in [-1, 1] and its metadata."""

    id: str
    text: str
    score: float
    meta: Mapping[str, Any]


def client_settings() -> Settings:
    """What every client of ours runs with: no telemetry, no reset from the API."""
    return Settings(anonymized_telemetry=False, allow_reset=False)


def incident_text(title: str, labels: Mapping[str, str], summary: str = "") -> str:
    """The text an incident is indexed and queried by: its title, its labels, and a summary if any."""
    parts = [title, " ".join(f"{k} {v}" for k, v in sorted(labels.items())), summary]
    return " ".join(p for p in parts if p)


class SemanticIndex:
    """Templates and incidents, each a cosine collection keyed by its own id (re-indexing upserts)."""

    def __init__(self, path: Path, embedder: Embedder | None = None) -> None:
        self.path = path
        self.embedder = embedder or HashingEmbedder()
        self._lock = threading.Lock()
        self._client: Any = None
        self._collections: dict[str, Any] = {}

    def open(self) -> None:
        """Creates the store directory and the collections (blocking; call via `start`)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._client = chromadb.PersistentClient(path=str(self.path), settings=client_settings())
            for name in (TEMPLATES, INCIDENTS):
                # The embedder's name is part of the collection: vectors of two embedders never mix.
                self._collections[name] = self._client.get_or_create_collection(
                    f"{name}_{self.embedder.name}", embedding_function=None, metadata={"hnsw:space": "cosine"}
                )

    async def start(self) -> None:
        await asyncio.to_thread(self.open)

    async def aclose(self) -> None:
        """Drops the client (chromadb persists on write); safe without start and twice."""
        with self._lock:
            self._collections.clear()
            self._client = None

    def upsert(
        self, collection: str, ids: Sequence[str], texts: Sequence[str], metas: Sequence[Mapping[str, Any]]
    ) -> None:
        if not ids:
            return
        vectors = self.embedder.embed(texts)
        with self._lock:
            self._collections[collection].upsert(
                ids=list(ids),
                documents=list(texts),
                embeddings=vectors,
                metadatas=[dict(m) or None for m in metas],
            )

    def query(self, collection: str, text: str, k: int, exclude: str | None = None) -> list[Hit]:
        """The `k` nearest items to `text`; `exclude` leaves one id out (an incident is not its own match)."""
        text = text[:MAX_QUERY_LEN]
        k = max(1, min(k, MAX_K))
        [vector] = self.embedder.embed([text])
        with self._lock:
            coll = self._collections[collection]
            n = coll.count()
            if n == 0:
                return []
            got = coll.query(
                query_embeddings=[vector],
                n_results=min(n, k + (1 if exclude else 0)),
                include=["documents", "metadatas", "distances"],
            )
        hits = [
            Hit(id=i, text=doc or "", score=1.0 - float(dist), meta=meta or {})
            for i, doc, meta, dist in zip(
                got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0], strict=True
            )
            if i != exclude
        ]
        return hits[:k]

    def contents(self, collection: str) -> dict[str, tuple[str, Mapping[str, Any]]]:
        """Every indexed id with its text and metadata (what a resync compares the source with)."""
        with self._lock:
            got = self._collections[collection].get(include=["documents", "metadatas"])
        return {
            i: (doc or "", meta or {})
            for i, doc, meta in zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True)
        }

    def nearest_incidents(
        self, incident_id: str, title: str, labels: Mapping[str, str], summary: str, k: int
    ) -> list[Hit]:
        """The `k` indexed incidents nearest to this one as it is now (indexed or not), never itself."""
        return self.query(INCIDENTS, incident_text(title, labels, summary), k, incident_id)

    def get_text(self, collection: str, item_id: str) -> str | None:
        with self._lock:
            got = self._collections[collection].get(ids=[item_id], include=["documents"])
        docs = got["documents"] or []
        return docs[0] if docs else None

    # ---- the async service functions other packages call ------------------------------------------------

    async def index_templates(self, templates: Mapping[str, str], source: str = "") -> None:
        """Indexes template id -> template text (e.g. the miner's new templates)."""
        ids = sorted(templates)
        metas = [{"source": source} if source else {} for _ in ids]
        await asyncio.to_thread(self.upsert, TEMPLATES, ids, [templates[i] for i in ids], metas)

    async def search_templates(self, q: str, k: int = 10) -> list[Hit]:
        return await asyncio.to_thread(self.query, TEMPLATES, q, k)

    async def index_incident(
        self, incident_id: str, title: str, labels: Mapping[str, str], summary: str = "", status: str = ""
    ) -> None:
        meta = {"title": title, "status": status} if status else {"title": title}
        text = incident_text(title, labels, summary)
        await asyncio.to_thread(self.upsert, INCIDENTS, [incident_id], [text], [meta])

    async def similar_incidents(self, incident_id: str, k: int = 5) -> list[Hit]:
        """Past incidents most like this one (never itself); [] when it was never indexed."""
        text = await asyncio.to_thread(self.get_text, INCIDENTS, incident_id)
        if text is None:
            return []
        return await asyncio.to_thread(self.query, INCIDENTS, text, k, incident_id)
