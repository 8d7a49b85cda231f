"""The LLM enrichment's table (on the hub's one MetaData): the latest explanation of each incident.

One row per incident, replaced when the incident changes enough to be asked about again (a new prompt);
the provenance columns say which model answered which prompt, when, how fast and at what token cost.
Other packages read it through `hub.enrich.llm.repository`.
"""

from __future__ import annotations

import sqlalchemy as sa

from hub.db.metadata import METADATA

incident_enrichments = sa.Table(
    "incident_enrichments",
    METADATA,
    sa.Column("incident_id", sa.String(24), primary_key=True),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("probable_cause", sa.Text, nullable=False),
    sa.Column("suggested_actions", sa.JSON, nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    # The deterministic summary, stored when the model answered but never validly.
    sa.Column("fallback", sa.Boolean, nullable=False),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("prompt_sha256", sa.String(64), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column("tokens", sa.Integer, nullable=False),
)
