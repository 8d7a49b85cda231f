"""Drops the alerts indexes no query uses: fingerprint, incident_id and resolve_owed.

The engine finds alerts by fingerprint in memory, an incident lists its alerts by id, and the start-up
load's OR of conditions scans the table whatever is indexed; yet every created alert inserted a random
entry into each of them and every step rewrote their pages (about a quarter of the pages a busy step
wrote). The status index stays: listings filter on it.

Revision ID: 0014_alert_indexes_unused
Revises: 0013_rate_buckets
"""

from __future__ import annotations

from alembic import op

revision = "0014_alert_indexes_unused"
down_revision = "0013_rate_buckets"
branch_labels = None
depends_on = None

_DROPPED = ("fingerprint", "incident_id", "resolve_owed")


def upgrade() -> None:
    for column in _DROPPED:
        op.drop_index(f"ix_alerts_{column}", table_name="alerts")


def downgrade() -> None:
    for column in _DROPPED:
        op.create_index(f"ix_alerts_{column}", "alerts", [column])
