"""Log template classes (`hub/enrich/llm/models.py`): severity and category of each log template, by the
LLM or the keyword fallback.

Revision ID: 0010_template_classes
Revises: 0009_incident_enrichment
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_template_classes"
down_revision = "0009_incident_enrichment"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_template_classes",
        sa.Column("template_id", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("classified_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("template_id", name="pk_log_template_classes"),
    )


def downgrade() -> None:
    op.drop_table("log_template_classes")
