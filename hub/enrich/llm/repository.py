"""Stored incident explanations: written by the enrichment job, read by the API with the incident.

Blocking (SQLAlchemy's pool, safe from several threads); callers on the event loop use `asyncio.to_thread`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hub.enrich.llm.models import incident_enrichments
from hub.enrich.llm.schema import Enrichment
from hub.enrich.llm.service import Provenance


@dataclass(frozen=True, slots=True)
class StoredEnrichment:
    """An incident's explanation as stored, with where it came from."""

    incident_id: str
    enrichment: Enrichment
    provenance: Provenance

    def to_json(self) -> dict[str, Any]:
        """The API's `enrichment` object (text as stored: redacted prompt in, model text out, never HTML)."""
        e, p = self.enrichment, self.provenance
        return {
            "summary": e.summary,
            "probable_cause": e.probable_cause,
            "suggested_actions": list(e.suggested_actions),
            "confidence": e.confidence,
            "fallback": e.fallback,
            "provenance": {
                "model": p.model,
                "prompt_sha256": p.prompt_sha256,
                "created_ms": p.ts_ms,
                "latency_ms": p.latency_ms,
                "tokens": p.tokens,
            },
        }


def save(engine: sa.Engine, incident_id: str, enrichment: Enrichment, prov: Provenance) -> None:
    """Stores (or replaces) the incident's explanation."""
    row = {
        "incident_id": incident_id,
        "summary": enrichment.summary,
        "probable_cause": enrichment.probable_cause,
        "suggested_actions": list(enrichment.suggested_actions),
        "confidence": enrichment.confidence,
        "fallback": enrichment.fallback,
        "model": prov.model,
        "prompt_sha256": prov.prompt_sha256,
        "created_ms": prov.ts_ms,
        "latency_ms": prov.latency_ms,
        "tokens": prov.tokens,
    }
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    ins = dialect.insert(incident_enrichments).values(row)
    update = {k: ins.excluded[k] for k in row if k != "incident_id"}
    with engine.begin() as db:
        db.execute(ins.on_conflict_do_update(index_elements=["incident_id"], set_=update))


def load(engine: sa.Engine, incident_id: str) -> StoredEnrichment | None:
    """The incident's explanation, or None before one arrived."""
    t = incident_enrichments
    with engine.connect() as db:
        r = db.execute(sa.select(t).where(t.c.incident_id == incident_id)).first()
    if r is None:
        return None
    enrichment = Enrichment.model_construct(  # validated when it was made; stored text is taken as is
        summary=r.summary,
        probable_cause=r.probable_cause,
        suggested_actions=tuple(r.suggested_actions),
        confidence=r.confidence,
        fallback=r.fallback,
    )
    prov = Provenance(r.model, r.prompt_sha256, r.created_ms, r.latency_ms, r.tokens, r.fallback)
    return StoredEnrichment(r.incident_id, enrichment, prov)
