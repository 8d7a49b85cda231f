"""The hub's confirmation verdict of an edge onset on its alert (`hub/alerts/models.py`, `hub.confirm`).

Revision ID: 0006_confirm_verdict
Revises: 0005_auth
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_confirm_verdict"
down_revision = "0005_auth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("verdict", sa.String(16), nullable=True))
        batch.add_column(sa.Column("verdict_features", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("verdict_features")
        batch.drop_column("verdict")
