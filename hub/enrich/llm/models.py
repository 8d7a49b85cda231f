"""The LLM enrichment's tables (on the hub's one MetaData): the latest explanation of each incident, and
the class (severity, category) of each log template.

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

# A log template's class (hub.enrich.llm.classify): the model's, or the keyword fallback's while the
# model gives none (asked again later). Keyed by the log store's template id; the template is the log
# store's own row, so its class lives here.
log_template_classes = sa.Table(
    "log_template_classes",
    METADATA,
    sa.Column("template_id", sa.String(32), primary_key=True),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # llm | keywords
    sa.Column("classified_ms", sa.BigInteger, nullable=False),
)
