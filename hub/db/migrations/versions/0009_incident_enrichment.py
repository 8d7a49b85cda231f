"""LLM enrichment of incidents (`hub/enrich/llm/models.py`): the latest explanation of each incident
with its provenance.

Revision ID: 0009_incident_enrichment
Revises: 0008_log_store
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_incident_enrichment"
down_revision = "0008_log_store"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incident_enrichments",
        sa.Column("incident_id", sa.String(24), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("probable_cause", sa.Text, nullable=False),
        sa.Column("suggested_actions", sa.JSON, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("fallback", sa.Boolean, nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("prompt_sha256", sa.String(64), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("latency_ms", sa.Integer, nullable=False),
        sa.Column("tokens", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("incident_id", name="pk_incident_enrichments"),
    )


def downgrade() -> None:
    op.drop_table("incident_enrichments")
