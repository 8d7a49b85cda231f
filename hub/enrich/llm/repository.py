"""Stored incident explanations (written by the enrichment job, read by the API with the incident) and
log template classes (written by the classification job, read into prompts).

Blocking (SQLAlchemy's pool, safe from several threads); callers on the event loop use `asyncio.to_thread`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hub.enrich.llm.classify import TemplateClass
from hub.enrich.llm.models import incident_enrichments, log_template_classes
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


def _upsert(engine: sa.Engine, table: sa.Table, key: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    ins = dialect.insert(table).values(rows)
    update = {k: ins.excluded[k] for k in rows[0] if k != key}
    with engine.begin() as db:
        db.execute(ins.on_conflict_do_update(index_elements=[key], set_=update))


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
    _upsert(engine, incident_enrichments, "incident_id", [row])


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


def save_classes(engine: sa.Engine, classes: dict[str, TemplateClass], now_ms: int) -> None:
    """Stores (or replaces) the classes of these templates, by template id."""
    rows = [
        {"template_id": tid, "severity": c.severity, "category": c.category, "source": c.source,
         "classified_ms": now_ms}
        for tid, c in sorted(classes.items())  # one lock order for concurrent writers on PostgreSQL
    ]  # fmt: skip
    _upsert(engine, log_template_classes, "template_id", rows)


def classes(engine: sa.Engine, template_ids: list[str]) -> dict[str, TemplateClass]:
    """The stored classes of these templates (those classified), by template id."""
    if not template_ids:
        return {}
    t = log_template_classes
    with engine.connect() as db:
        found = db.execute(sa.select(t).where(t.c.template_id.in_(template_ids))).all()
    return {r.template_id: TemplateClass(r.severity, r.category, r.source) for r in found}
